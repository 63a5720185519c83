/**
 * The AWS side of backups under the SDK's mocks: the bucket's protections, the runner image and
 * its Dockerfile, one scheduled Fargate task per RDS server with least-privilege roles (only its
 * services' read-only logins, only their prefixes), the alarms, and RDS automated backups
 * replicated to another region. Plus the policy pack on the result.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { changed, devValues, input, prodValues, servers } from "../helpers/config";
import { check, summary } from "../helpers/policy";
import { type Resources, ROOT, synthInput, T } from "../helpers/synth";

const B = {
  bucket: "aws:s3/bucket:Bucket",
  versioning: "aws:s3/bucketVersioning:BucketVersioning",
  encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  publicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  policy: "aws:s3/bucketPolicy:BucketPolicy",
  lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  objectLock: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
  repository: "aws:ecr/repository:Repository",
  image: "docker:index/image:Image",
  task: "aws:ecs/taskDefinition:TaskDefinition",
  schedule: "aws:scheduler/schedule:Schedule",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  replication: "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication",
} as const;

const ACCOUNT = "000000000000";
const BUCKET = `db-platform-prod-backups-${ACCOUNT}`;
const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
const secretArn = (service: string) => `arn:aws:synth:eu-central-1:${ACCOUNT}:inventory-readonly-secret`.replace("inventory", service);

let prod: Resources;

/** prodValues with backups, and main on 16 / studio on 15, so two runner images are built. */
const prodWithBackups = () =>
  changed(prodValues(), (v) => {
    v.backups = { storage: "s3", replicaRegion: "eu-west-1", rpoHours: 26 };
    servers(v).studio.version = "15";
  });

beforeAll(async () => {
  prod = await synthInput(input(prodWithBackups()), "prod");
});

const statements = (policy: unknown) => (JSON.parse(String(policy)) as { Statement: Array<Record<string, unknown>> }).Statement;

describe("backup bucket", () => {
  it("is named per environment and account, Object Lock on in prod", () => {
    const bucket = prod.one(B.bucket, "backups-bucket");
    expect(bucket.props).toEqual({
      bucket: BUCKET,
      objectLockEnabled: true,
      forceDestroy: false,
      tags: { "db-platform:environment": "prod", "managed-by": "db-platform" },
    });
  });

  it("is versioned, encrypted with its own rotating key, closed to the public, TLS only", () => {
    expect(prod.one(B.versioning, "backups-bucket-versioning").props).toEqual({
      bucket: BUCKET,
      versioningConfiguration: { status: "Enabled" },
    });
    const key = prod.one(T.kmsKey, "backups-key");
    expect(key.props.enableKeyRotation).toBe(true);
    expect(prod.one(B.encryption, "backups-bucket-encryption").props).toEqual({
      bucket: BUCKET,
      rules: [
        {
          applyServerSideEncryptionByDefault: {
            sseAlgorithm: "aws:kms",
            kmsMasterKeyId: `arn:aws:kms:eu-central-1:${ACCOUNT}:key/backups-key`,
          },
          bucketKeyEnabled: true,
        },
      ],
    });
    expect(prod.one(B.publicAccessBlock, "backups-bucket-public-access-block").props).toEqual({
      bucket: BUCKET,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(statements(prod.one(B.policy, "backups-bucket-policy").props.policy)).toEqual([
      {
        Sid: "DenyPlainHttp",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [BUCKET_ARN, `${BUCKET_ARN}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Sid: "DenyUploadsWithoutKms",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:PutObject",
        Resource: `${BUCKET_ARN}/*`,
        Condition: { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption": "aws:kms" } },
      },
    ]);
  });

  it("archives, expires, drops old versions and abandoned multipart uploads; locks two weeks", () => {
    expect(prod.one(B.lifecycle, "backups-bucket-lifecycle").props.rules).toEqual([
      {
        id: "backups",
        status: "Enabled",
        filter: { prefix: "prod/" },
        transitions: [{ days: 30, storageClass: "GLACIER_IR" }],
        expiration: { days: 365 },
        noncurrentVersionExpiration: { noncurrentDays: 30 },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
      },
    ]);
    expect(prod.one(B.objectLock, "backups-bucket-object-lock").props).toEqual({
      bucket: BUCKET,
      rule: { defaultRetention: { mode: "COMPLIANCE", days: 14 } },
    });
  });

  it("has no Object Lock when objectLockDays is 0", async () => {
    const staging = await synthInput(
      input(changed(prodWithBackups(), (v) => ((v.backups as Record<string, unknown>).objectLockDays = 0))),
      "prod",
    );
    expect(staging.ofType(B.objectLock)).toEqual([]);
    expect(staging.one(B.bucket, "backups-bucket").props.objectLockEnabled).toBe(false);
  });

  it("passes the policy pack; without versioning it would not", () => {
    expect(summary(check(prod.all))).toEqual([]);
    const unversioned = prod.all.filter((r) => r.type !== B.versioning || r.props.bucket !== BUCKET);
    expect(summary(check(unversioned))).toEqual([
      [
        "backup-bucket-versioning",
        "mandatory",
        `bucket "${BUCKET}" must have versioning enabled (aws.s3.BucketVersioning with status Enabled)`,
      ],
    ]);
  });
});

describe("runner image", () => {
  it("is built per PostgreSQL major from the repo's Dockerfile and pushed to an encrypted, scanned ECR repository", () => {
    expect(prod.one(B.repository, "backups-runner-repository").props).toMatchObject({
      name: "db-platform/prod/backup-runner",
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: `arn:aws:kms:eu-central-1:${ACCOUNT}:key/backups-key` }],
    });
    const images = prod.ofType(B.image).map((i) => [i.name, i.props.imageName, i.props.build, i.props.buildOnPreview]);
    const repo = `${ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/db-platform/prod/backup-runner`;
    // Immutable tags: the major and a hash of what the image copies (test/components/awsBaseline.test.ts).
    const tag = (major: string) => expect.stringMatching(new RegExp(`^${repo}:pg${major}-[0-9a-f]{12}$`));
    expect(images).toEqual([
      [
        "backups-runner-pg15",
        tag("15"),
        { context: ".", dockerfile: "docker/backup-runner.Dockerfile", args: { PG_MAJOR: "15" }, platform: "linux/amd64" },
        false,
      ],
      [
        "backups-runner-pg16",
        tag("16"),
        { context: ".", dockerfile: "docker/backup-runner.Dockerfile", args: { PG_MAJOR: "16" }, platform: "linux/amd64" },
        false,
      ],
    ]);
  });

  it("the Dockerfile installs the client tools of PG_MAJOR, copies only files that exist and the context sends, runs the task as node", () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, "docker/backup-runner.Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^ARG PG_MAJOR$/m);
    expect(dockerfile).toContain('apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/backup-task\.js"\]$/m);
    const ignore = fs
      .readFileSync(path.join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("!"));
    const sent = ignore.map((l) => l.slice(1).replace(/\/$/, ""));
    const copied = [...dockerfile.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1].split(" "));
    expect(copied.length).toBeGreaterThan(5);
    for (const source of copied) {
      const matches = fs.readdirSync(ROOT).filter((f) => new RegExp(`^${source.replace(/\./g, "\\.").replace(/\*/g, ".*")}$`).test(f));
      expect(matches.length > 0 || fs.existsSync(path.join(ROOT, source)), `COPY ${source}: nothing in the repo`).toBe(true);
      expect(sent.includes(source) || sent.some((s) => source.startsWith(`${s}/`)), `COPY ${source}: excluded by .dockerignore`).toBe(true);
    }
    // What the entrypoints load (the backup task, the metrics publisher): every file sent and copied, none of the CLI.
    const loaded = [...importClosure("bin/backup-task.js"), ...importClosure("bin/stats-task.js")];
    expect(loaded).toContain("operations/backup/task.ts");
    expect(loaded).toContain("operations/backup/runner.ts");
    expect(loaded).toContain("operations/stats/task.ts");
    expect(loaded).toContain("operations/stats/collect.ts");
    for (const file of loaded) {
      expect(file.startsWith("cli/"), `${file}: the runner imports CLI code`).toBe(false);
      const inImage = (list: readonly string[]) => list.some((s) => file === s || file.startsWith(`${s}/`));
      expect(inImage(sent), `${file}: excluded by .dockerignore`).toBe(true);
      expect(inImage(copied), `${file}: not copied into the image`).toBe(true);
    }
  });
});

/** The repository files a module loads through relative imports, transitively (packages aside). */
function importClosure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    for (const m of text.matchAll(/(?:from|require\()\s*"(\.{1,2}\/[^"]+)"/g)) {
      const base = path.join(path.dirname(file), m[1]);
      const found = [base, `${base}.ts`, `${base}/index.ts`].find(
        (f) => fs.existsSync(path.join(ROOT, f)) && fs.statSync(path.join(ROOT, f)).isFile(),
      );
      if (!found) throw new Error(`${file}: cannot resolve ${m[1]}`);
      visit(found);
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** The container definition of one server's task. */
function container(server: string): Record<string, unknown> {
  const task = prod.one(B.task, `backups-${server}-task`);
  return (JSON.parse(String(task.props.containerDefinitions)) as Array<Record<string, unknown>>)[0];
}

describe("scheduled runner per RDS server", () => {
  it("is a Fargate task of the server's image that backs up that server's services only", () => {
    expect(prod.one(B.task, "backups-main-task").props).toMatchObject({
      family: "prod-main-backup",
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "1024",
      memory: "2048",
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
    });
    const main = container("main");
    expect(main.image).toBe(`${ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/db-platform/prod/backup-runner@sha256:synth`);
    expect(main.command).toBeUndefined(); // the image's entrypoint is the backup task
    expect(main.environment).toEqual([
      { name: "DB_PLATFORM_STACK", value: "prod" },
      { name: "DB_PLATFORM_SERVER", value: "main" },
      { name: "AWS_REGION", value: "eu-central-1" },
      { name: "DB_PLATFORM_BACKUP_BUCKET", value: BUCKET },
      { name: "DB_PLATFORM_METRICS_NAMESPACE", value: "DbPlatform/Backups" },
    ]);
    // Each service's own read-only login; never the master secret, never another server's service.
    expect(main.secrets).toEqual([
      { name: "DB_PLATFORM_LOGIN_INVENTORY", valueFrom: secretArn("inventory") },
      { name: "DB_PLATFORM_LOGIN_PAYMENTS", valueFrom: secretArn("payments") },
    ]);
    expect(container("studio").secrets).toEqual([{ name: "DB_PLATFORM_LOGIN_STUDIO", valueFrom: secretArn("studio") }]);
    expect(main).toMatchObject({ readonlyRootFilesystem: true, user: "node" });
  });

  it("execution role reads only those secrets; task role writes only below those services' prefixes", () => {
    const exec = statements(prod.one(B.rolePolicy, "backups-main-execution-policy").props.policy);
    expect(exec.find((s) => s.Sid === "ReadBackupLogins")).toEqual({
      Sid: "ReadBackupLogins",
      Effect: "Allow",
      Action: "secretsmanager:GetSecretValue",
      Resource: [secretArn("inventory"), secretArn("payments")],
    });
    expect(exec.every((s) => s.Action !== "*" && s.Action !== "s3:*")).toBe(true);
    expect(statements(prod.one(B.rolePolicy, "backups-main-task-policy").props.policy)).toEqual([
      {
        Sid: "WriteAndReadOwnPrefixes",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        Resource: [`${BUCKET_ARN}/prod/inventory/*`, `${BUCKET_ARN}/prod/payments/*`],
      },
      {
        Sid: "ListOwnPrefixes",
        Effect: "Allow",
        Action: "s3:ListBucket",
        Resource: BUCKET_ARN,
        Condition: { StringLike: { "s3:prefix": ["prod/inventory/*", "prod/payments/*"] } },
      },
      {
        Sid: "EncryptWithBucketKey",
        Effect: "Allow",
        Action: ["kms:GenerateDataKey", "kms:Decrypt"],
        Resource: `arn:aws:kms:eu-central-1:${ACCOUNT}:key/backups-key`,
      },
      {
        Sid: "PublishBackupMetrics",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": "DbPlatform/Backups" } },
      },
    ]);
  });

  it("runs on the schedule in the server's private subnets, without a public IP, reaching only its server and HTTPS", () => {
    expect(prod.one(B.schedule, "backups-main-schedule").props).toMatchObject({
      name: "prod-main-backup",
      scheduleExpression: "cron(0 3 * * ? *)",
      scheduleExpressionTimezone: "UTC",
      flexibleTimeWindow: { mode: "OFF" },
      target: {
        ecsParameters: {
          taskDefinitionArn: `arn:aws:ecs:eu-central-1:${ACCOUNT}:task-definition/prod-main-backup`,
          launchType: "FARGATE",
          networkConfiguration: { subnets: ["subnet-a", "subnet-b"], securityGroups: ["backups-main-runner-sg-id"], assignPublicIp: false },
        },
      },
    });
    expect(prod.one(T.securityGroup, "backups-main-runner-sg").props.egress).toEqual([]);
    const egress = prod.ofType(B.egress).filter((r) => r.name.startsWith("backups-main-"));
    expect(egress.map((r) => [r.props.fromPort, r.props.referencedSecurityGroupId ?? r.props.cidrIpv4]).sort()).toEqual([
      [443, "0.0.0.0/0"],
      [5432, "main-sg-id"],
    ]);
    expect(prod.one(T.ingress, "backups-main-ingress-backup-runner").props).toMatchObject({
      securityGroupId: "main-sg-id",
      fromPort: 5432,
      referencedSecurityGroupId: "backups-main-runner-sg-id",
    });
  });

  it("alarms per service when no backup completed within the RPO (missing data counts) or a run failed", () => {
    const age = prod.one(T.alarm, "backups-main-inventory-backup-age").props;
    expect(age).toMatchObject({
      namespace: "DbPlatform/Backups",
      metricName: "BackupsCompleted",
      dimensions: { Environment: "prod", Service: "inventory" },
      period: 3600,
      evaluationPeriods: 26,
      datapointsToAlarm: 26,
      comparisonOperator: "LessThanThreshold",
      threshold: 1,
      treatMissingData: "breaching",
    });
    expect(prod.one(T.alarm, "backups-studio-studio-backup-failed").props).toMatchObject({
      metricName: "BackupsFailed",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
    });
    const backupAlarms = prod.ofType(T.alarm).filter((a) => /^backups-.*-backup-(age|failed)$/.test(a.name));
    expect(backupAlarms).toHaveLength(6);
  });
});

describe("RDS automated backups", () => {
  it("are replicated to replicaRegion with a customer-managed key of that region", () => {
    const replications = prod.ofType(B.replication);
    expect(replications.map((r) => [r.name, r.props])).toEqual([
      [
        "backups-main-eu-west-1-automated-backups",
        {
          sourceDbInstanceArn: `arn:aws:rds:eu-central-1:${ACCOUNT}:db:prod-main`,
          kmsKeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/backups-main-eu-west-1-key`,
          retentionPeriod: 14,
        },
      ],
      [
        "backups-studio-eu-west-1-automated-backups",
        {
          sourceDbInstanceArn: `arn:aws:rds:eu-central-1:${ACCOUNT}:db:prod-studio`,
          kmsKeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/backups-studio-eu-west-1-key`,
          retentionPeriod: 14,
        },
      ],
    ]);
    expect(prod.one(T.kmsKey, "backups-main-eu-west-1-key").props.enableKeyRotation).toBe(true);
  });
});

describe("local storage", () => {
  it("creates no AWS backup resources on the dev stack", async () => {
    const dev = await synthInput(input(changed(devValues(), (v) => (v.backups = { storage: "local" }))), "dev");
    expect(dev.all.filter((r) => r.type.startsWith("aws:s3/") || r.type === B.task || r.type === B.schedule)).toEqual([]);
  });
});
