/**
 * The AWS baseline an independent IaC scanner checks (issue #30), on what prod declares under the
 * SDK's mocks, input by input: the runner's ECR repository immutable and under the backups' key
 * (image tags a hash of what the image copies), its log group under that key and kept a year,
 * every schedule under that key, and the backup bucket's server access logs in a log bucket of
 * its own, private, TLS-only and encrypted. The pack's rules pass prod and refuse each
 * regression (mandatory in prod, advisory elsewhere); validation refuses a short retention.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runnerImageTag } from "../../components/backups/runnerImage";
import { formatProblem, validateConfig } from "../../components/spec";
import { changed, input, prodValues, servers } from "../helpers/config";
import { check, type Mutable, summary } from "../helpers/policy";
import { type Resources, ROOT, synthInput } from "../helpers/synth";

const ACCOUNT = "000000000000";
const KEY = `arn:aws:kms:eu-central-1:${ACCOUNT}:key/backups-key`;
const BUCKET = `db-platform-prod-backups-${ACCOUNT}`;
const LOGS = `db-platform-prod-backup-logs-${ACCOUNT}`;
const PROD_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8"));
const DEV_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/dev.json"), "utf8"));

const withBackups = (backups: Record<string, unknown> = {}) =>
  changed(prodValues(), (v) => {
    v.backups = { storage: "s3", replicaRegion: "eu-west-1", ...backups };
    servers(v).studio.version = "15";
  });

let prod: Resources;
beforeAll(async () => {
  prod = await synthInput(input(withBackups()), "prod");
});

const statements = (policy: unknown) => (JSON.parse(String(policy)) as { Statement: Array<Record<string, unknown>> }).Statement;
const ofBucket = (type: string, bucket: string) => prod.ofType(type).filter((r) => r.props.bucket === bucket);

describe("runner image repository", () => {
  it("has immutable tags and encrypts with the backups' key; images are tagged by major and content", () => {
    expect(prod.one("aws:ecr/repository:Repository", "backups-runner-repository").props).toMatchObject({
      imageTagMutability: "IMMUTABLE",
      encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: KEY }],
    });
    const tags = prod.ofType("docker:index/image:Image").map((i) => String(i.props.imageName).split(":").pop());
    expect(tags).toEqual([
      runnerImageTag("15", "docker/backup-runner.Dockerfile", ROOT),
      runnerImageTag("16", "docker/backup-runner.Dockerfile", ROOT),
    ]);
  });

  describe("the tag", () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "runner-tag-"));
      fs.mkdirSync(path.join(dir, "docker"));
      fs.mkdirSync(path.join(dir, "lib/deep"), { recursive: true });
      fs.writeFileSync(path.join(dir, ".dockerignore"), "*\n!lib/\n!Pulumi.*.yaml\n");
      fs.writeFileSync(path.join(dir, "docker/r.Dockerfile"), "FROM scratch\n");
      fs.writeFileSync(path.join(dir, "lib/deep/a.js"), "a");
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), "p");
      fs.writeFileSync(path.join(dir, "README.md"), "not copied");
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tag = (major = "16") => runnerImageTag(major, "docker/r.Dockerfile", dir);

    it("changes with a copied file, the Dockerfile or the major, and not with a file the context leaves out", () => {
      const first = tag();
      expect(first).toMatch(/^pg16-[0-9a-f]{12}$/);
      expect(tag()).toBe(first);
      fs.writeFileSync(path.join(dir, "README.md"), "still not copied");
      expect(tag()).toBe(first);
      expect(tag("17")).toMatch(/^pg17-/);
      expect(tag("17").slice(5)).not.toBe(first.slice(5));
      for (const file of ["lib/deep/a.js", "Pulumi.prod.yaml", "docker/r.Dockerfile"]) {
        const before = tag();
        fs.appendFileSync(path.join(dir, file), "\n# changed");
        expect(tag(), file).not.toBe(before);
      }
    });
  });
});

describe("runner logs and schedules", () => {
  it("keeps the runner's logs a year in prod, encrypted with the backups' key, which CloudWatch Logs may use for that log group only", () => {
    expect(prod.one("aws:cloudwatch/logGroup:LogGroup", "backups-logs").props).toMatchObject({
      name: "/db-platform/prod/backups",
      retentionInDays: 365,
      kmsKeyId: KEY,
    });
    const key = statements(prod.one("aws:kms/key:Key", "backups-key").props.policy);
    expect(key.find((s) => s.Sid === "CloudWatchLogsOfTheRunner")).toEqual({
      Sid: "CloudWatchLogsOfTheRunner",
      Effect: "Allow",
      Principal: { Service: "logs.eu-central-1.amazonaws.com" },
      Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
      Resource: "*",
      Condition: {
        ArnEquals: { "kms:EncryptionContext:aws:logs:arn": `arn:aws:logs:eu-central-1:${ACCOUNT}:log-group:/db-platform/prod/backups` },
      },
    });
  });

  it("encrypts every schedule (backups and metrics, per server) with the backups' key, and lets the scheduler's role decrypt with it", () => {
    const schedules = prod.ofType("aws:scheduler/schedule:Schedule");
    expect(schedules.map((s) => s.name).sort()).toEqual([
      "backups-main-schedule",
      "backups-main-stats-schedule",
      "backups-studio-schedule",
      "backups-studio-stats-schedule",
    ]);
    for (const s of schedules) expect(s.props.kmsKeyArn, s.name).toBe(KEY);
    expect(statements(prod.one("aws:iam/rolePolicy:RolePolicy", "backups-scheduler-key").props.policy)).toEqual([
      { Sid: "DecryptSchedules", Effect: "Allow", Action: "kms:Decrypt", Resource: KEY },
    ]);
  });
});

describe("access logs of the backup bucket", () => {
  it("go to a log bucket of their own, partitioned by event date below the environment's prefix", () => {
    expect(prod.one("aws:s3/bucketLogging:BucketLogging", "backups-bucket-logging").props).toEqual({
      bucket: BUCKET,
      targetBucket: LOGS,
      targetPrefix: "prod/",
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
    });
    expect(prod.one("aws:s3/bucket:Bucket", "backups-access-logs").props).toMatchObject({ bucket: LOGS, forceDestroy: false });
  });

  it("which is versioned, encrypted with the backups' key, closed to the public, owner-enforced and expires logs after a year", () => {
    expect(ofBucket("aws:s3/bucketVersioning:BucketVersioning", LOGS)[0].props.versioningConfiguration).toEqual({ status: "Enabled" });
    expect(ofBucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", LOGS)[0].props.rules).toEqual(
      [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: KEY }, bucketKeyEnabled: true }],
    );
    expect(ofBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", LOGS)[0].props).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(ofBucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls", LOGS)[0].props.rule).toEqual({
      objectOwnership: "BucketOwnerEnforced",
    });
    expect(ofBucket("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", LOGS)[0].props.rules).toEqual([
      {
        id: "access-logs",
        status: "Enabled",
        filter: { prefix: "prod/" },
        expiration: { days: 365 },
        noncurrentVersionExpiration: { noncurrentDays: 30 },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
      },
    ]);
  });

  it("admits S3's logging service for the backup bucket of this account only, over TLS only; the key lets it write for this account only", () => {
    const arn = `arn:aws:s3:::${LOGS}`;
    expect(statements(ofBucket("aws:s3/bucketPolicy:BucketPolicy", LOGS)[0].props.policy)).toEqual([
      {
        Sid: "DenyPlainHttp",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [arn, `${arn}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Sid: "S3ServerAccessLogsOfTheBackupBucket",
        Effect: "Allow",
        Principal: { Service: "logging.s3.amazonaws.com" },
        Action: "s3:PutObject",
        Resource: `${arn}/prod/*`,
        Condition: { ArnLike: { "aws:SourceArn": `arn:aws:s3:::${BUCKET}` }, StringEquals: { "aws:SourceAccount": ACCOUNT } },
      },
    ]);
    const key = statements(prod.one("aws:kms/key:Key", "backups-key").props.policy);
    expect(key.find((s) => s.Sid === "S3ServerAccessLogsToEncryptedBucket")).toEqual({
      Sid: "S3ServerAccessLogsToEncryptedBucket",
      Effect: "Allow",
      Principal: { Service: "logging.s3.amazonaws.com" },
      Action: ["kms:GenerateDataKey"],
      Resource: "*",
      Condition: { StringEquals: { "aws:SourceAccount": ACCOUNT } },
    });
  });
});

describe("the pack's baseline rules", () => {
  const mutated = (type: string, name: string, change: (p: Record<string, unknown>) => void): Mutable[] => {
    const rs = structuredClone(prod.all) as Mutable[];
    change(rs.find((r) => r.type === type && r.name === name)!.props);
    return rs;
  };

  it("pass prod as declared, with every rule of prod's policy config", () => {
    expect(summary(check(prod.all, PROD_CONFIG))).toEqual([]);
  });

  it.each<[string, string, string, (p: Record<string, unknown>) => void, string, string]>([
    [
      "mutable tags",
      "aws:ecr/repository:Repository",
      "backups-runner-repository",
      (p) => (p.imageTagMutability = "MUTABLE"),
      "ecr-immutable-cmk",
      'ECR repository "db-platform/prod/backup-runner" must have imageTagMutability IMMUTABLE (is MUTABLE)',
    ],
    [
      "AWS's key on the repository",
      "aws:ecr/repository:Repository",
      "backups-runner-repository",
      (p) => (p.encryptionConfigurations = [{ encryptionType: "AES256" }]),
      "ecr-immutable-cmk",
      'ECR repository "db-platform/prod/backup-runner" must have encryptionType KMS with a customer-managed kmsKey',
    ],
    [
      "an unencrypted log group kept 90 days",
      "aws:cloudwatch/logGroup:LogGroup",
      "backups-logs",
      (p) => {
        delete p.kmsKeyId;
        p.retentionInDays = 90;
      },
      "log-group-cmk-retention",
      'log group "/db-platform/prod/backups" must be encrypted with a customer-managed key (kmsKeyId) and keep logs at least 365 days (retentionInDays is 90)',
    ],
    [
      "a schedule under AWS's key",
      "aws:scheduler/schedule:Schedule",
      "backups-main-schedule",
      (p) => delete p.kmsKeyArn,
      "schedule-cmk",
      'schedule "prod-main-backup" must be encrypted with a customer-managed key (kmsKeyArn)',
    ],
  ])("refuse %s: mandatory in prod, advisory in dev", (_what, type, name, change, policy, message) => {
    const rs = mutated(type, name, change);
    expect(summary(check(rs, PROD_CONFIG))).toEqual([[policy, "mandatory", message]]);
    expect(summary(check(rs, DEV_CONFIG))).toEqual([[policy, "advisory", message]]);
  });

  it("refuse the backup bucket without access logging, or logging to itself (the log bucket, no longer a target, must then log too)", () => {
    const unlogged = `bucket "${LOGS}" must log its requests to a log bucket (aws.s3.BucketLogging)`;
    const none = prod.all.filter((r) => r.name !== "backups-bucket-logging");
    // Only this rule: the log bucket, no longer a logging target, is also no longer exempt from replication.
    const bySubject = (vs: string[][]) => vs.filter((v) => v[0] === "bucket-access-logging").sort((a, b) => a[2].localeCompare(b[2]));
    expect(bySubject(summary(check(none, PROD_CONFIG)))).toEqual([
      ["bucket-access-logging", "mandatory", unlogged],
      ["bucket-access-logging", "mandatory", `bucket "${BUCKET}" must log its requests to a log bucket (aws.s3.BucketLogging)`],
    ]);
    const self = mutated("aws:s3/bucketLogging:BucketLogging", "backups-bucket-logging", (p) => (p.targetBucket = BUCKET));
    expect(bySubject(summary(check(self, PROD_CONFIG)))).toEqual([
      ["bucket-access-logging", "mandatory", unlogged],
      ["bucket-access-logging", "mandatory", `bucket "${BUCKET}" must log to a bucket of its own, not to itself`],
    ]);
  });
});

describe("backups.logRetentionDays", () => {
  const problems = (backups: Record<string, unknown>, values = withBackups(backups)) => {
    const r = validateConfig(input(values, { awsRegion: "eu-central-1" }));
    return r.ok ? [] : r.problems.map(formatProblem);
  };
  it("defaults to 365 in prod and 90 elsewhere; a year at least in prod; a CloudWatch retention value; s3 only", async () => {
    const r = validateConfig(input(withBackups(), { awsRegion: "eu-central-1" }));
    expect(r.ok && r.spec.backups?.logRetentionDays).toBe(365);
    expect(problems({ logRetentionDays: 180 })).toEqual([
      "backups.logRetentionDays: must be at least 365 in strict environments: the runner's logs and the bucket's access logs are kept a year",
    ]);
    expect(problems({ logRetentionDays: 100 })[0]).toMatch(
      /^backups\.logRetentionDays: must be one of CloudWatch Logs' retention values: 1, 3, 5/,
    );
    expect(problems({ logRetentionDays: 731 })).toEqual([]);
    const staging = changed(withBackups(), (v) => (v.environment = "staging"));
    const s = validateConfig(input(staging, { awsRegion: "eu-central-1" }));
    expect(s.ok && s.spec.backups?.logRetentionDays).toBe(90);
  });
});
