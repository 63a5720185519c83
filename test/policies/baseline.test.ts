/**
 * The AWS baseline and stack-wide rules, and how policy config applies: one change per case
 * from the synthesized prod stack (plus a replica), config defaults applied as in the CLI.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { PolicyConfigError, resolveConfig } from "../../policies/engine/evaluate";
import { check, find, happyPath, type Mutable, raw, summary } from "../helpers/policy";
import { T } from "../helpers/synth";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "../helpers/synth";

const PROD_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8"));
const DEV_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/dev.json"), "utf8"));

let base: Mutable[];
let replicaBase: Mutable[];
beforeAll(async () => {
  base = await happyPath("Pulumi.prod.yaml");
  replicaBase = await happyPath("examples/seed-001-ovu/Pulumi.staging.yaml");
});

function mutatedInstance(change: (props: Record<string, unknown>) => void, from = () => base, name = "main-instance"): Mutable[] {
  const rs = structuredClone(from());
  change(find(rs, T.rds, name).props);
  return rs;
}

const cases: Array<[string, (p: Record<string, unknown>) => void, string, string]> = [
  [
    "unencrypted storage",
    (p) => (p.storageEncrypted = false),
    "rds-storage-encrypted",
    'RDS instance "prod-main" must have storageEncrypted true and a customer-managed kmsKeyId',
  ],
  [
    "the AWS-managed key",
    (p) => delete p.kmsKeyId,
    "rds-storage-encrypted",
    'RDS instance "prod-main" must have storageEncrypted true and a customer-managed kmsKeyId',
  ],
  [
    "public",
    (p) => (p.publiclyAccessible = true),
    "rds-not-publicly-accessible",
    'RDS instance "prod-main" must not be publicly accessible',
  ],
  [
    "the default parameter group",
    (p) => (p.parameterGroupName = "default.postgres16"),
    "rds-force-ssl",
    'RDS instance "prod-main" must use a parameter group declared in the stack with rds.force_ssl=1 (found "default.postgres16")',
  ],
  [
    "no IAM auth",
    (p) => (p.iamDatabaseAuthenticationEnabled = false),
    "rds-iam-authentication",
    'RDS instance "prod-main" must have iamDatabaseAuthenticationEnabled true',
  ],
  [
    "Performance Insights without a CMK",
    (p) => delete p.performanceInsightsKmsKeyId,
    "rds-performance-insights-encrypted",
    'RDS instance "prod-main" must have Performance Insights enabled with a customer-managed performanceInsightsKmsKeyId',
  ],
  [
    "no log exports",
    (p) => (p.enabledCloudwatchLogsExports = ["upgrade"]),
    "rds-log-exports",
    'RDS instance "prod-main" must export the "postgresql" log (enabledCloudwatchLogsExports)',
  ],
  [
    "short retention",
    (p) => (p.backupRetentionPeriod = 7),
    "rds-backup-retention",
    'RDS instance "prod-main" must keep automated backups at least 14 days (backupRetentionPeriod is 7)',
  ],
  [
    "no deletion protection",
    (p) => (p.deletionProtection = false),
    "rds-production-protection",
    'RDS instance "prod-main" must have deletionProtection true in this environment',
  ],
  [
    "single AZ",
    (p) => (p.multiAz = false),
    "rds-production-protection",
    'RDS instance "prod-main" must have multiAz true in this environment',
  ],
  [
    "no final snapshot",
    (p) => (p.skipFinalSnapshot = true),
    "rds-production-protection",
    'RDS instance "prod-main" must have skipFinalSnapshot false in this environment',
  ],
  [
    "no minor upgrades",
    (p) => (p.autoMinorVersionUpgrade = false),
    "rds-auto-minor-upgrades",
    'RDS instance "prod-main" must have autoMinorVersionUpgrade true',
  ],
  [
    "no tag copy",
    (p) => (p.copyTagsToSnapshot = false),
    "rds-copy-tags-to-snapshot",
    'RDS instance "prod-main" must have copyTagsToSnapshot true',
  ],
  [
    "another environment's tag",
    (p) => (p.tags = { ...(p.tags as object), "db-platform:environment": "staging" }),
    "same-environment",
    'main-instance must carry tag db-platform:environment=prod (found "staging")',
  ],
  [
    "an identifier of another environment",
    (p) => (p.identifier = "staging-main"),
    "same-environment",
    'RDS identifier "staging-main" must start with "prod-"',
  ],
];

describe("RDS baseline (prod policy config)", () => {
  it("the prod stack passes", () => {
    expect(check(base, PROD_CONFIG)).toEqual([]);
  });

  it.each(cases)("%s", (_t, change, policy, message) => {
    expect(summary(check(mutatedInstance(change), PROD_CONFIG))).toContainEqual([policy, "mandatory", message]);
  });

  it("a parameter group that does not force TLS", () => {
    const rs = structuredClone(base);
    const params = find(rs, "aws:rds/parameterGroup:ParameterGroup", "main-params-postgres16").props.parameters as Array<{
      name: string;
      value: string;
    }>;
    params[0].value = "0";
    expect(summary(check(rs, PROD_CONFIG))).toEqual([
      [
        "rds-force-ssl",
        "mandatory",
        'RDS instance "prod-main" must force TLS: parameter group "prod-main-postgres16" must set rds.force_ssl=1',
      ],
    ]);
  });
});

describe("read replica branches", () => {
  it("a replica needs no backups, Multi-AZ or final snapshot of its own", () => {
    expect(check(replicaBase, { "rds-production-protection": { required: true }, "rds-backup-retention": { minimumDays: 7 } })).toEqual([
      expect.objectContaining({
        policy: "rds-production-protection",
        message: 'RDS instance "staging-ovu" must have deletionProtection true, multiAz true in this environment',
      }),
      expect.objectContaining({
        policy: "rds-production-protection",
        message: 'RDS instance "staging-ovu-ro-1" (read replica) must have deletionProtection true in this environment',
      }),
    ]);
  });

  it("a replica must still be encrypted and private", () => {
    const rs = mutatedInstance(
      (p) => (p.publiclyAccessible = true),
      () => replicaBase,
      "ovu-replica-ovu-ro-1",
    );
    expect(summary(check(rs))).toEqual([
      ["rds-not-publicly-accessible", "mandatory", 'RDS instance "staging-ovu-ro-1" (read replica) must not be publicly accessible'],
    ]);
  });

  it("a replica of an instance outside the stack", () => {
    const rs = mutatedInstance(
      (p) => (p.replicateSourceDb = "arn:aws:rds:eu-west-1:123456789012:db:prod-ovu"),
      () => replicaBase,
      "ovu-replica-ovu-ro-1",
    );
    expect(summary(check(rs))).toEqual([
      [
        "same-environment",
        "mandatory",
        'RDS replica "staging-ovu-ro-1" must replicate an instance of this stack (found "arn:aws:rds:eu-west-1:123456789012:db:prod-ovu")',
      ],
    ]);
  });
});

describe("replicas of the prod stack (same-region and cross-region)", () => {
  it("pass as declared", () => {
    expect(summary(check(base, PROD_CONFIG))).toEqual([]);
  });

  it("a cross-region replica encrypted with a key of the primary's region", () => {
    const rs = mutatedInstance(
      (p) => (p.kmsKeyId = "arn:aws:kms:eu-central-1:000000000000:key/main-key"),
      () => base,
      "main-replica-main-dr",
    );
    expect(summary(check(rs))).toEqual([
      [
        "rds-replica-key-in-own-region",
        "mandatory",
        'RDS instance "prod-main-dr" (read replica) is in eu-west-1 and must use a KMS key of eu-west-1 (kmsKeyId is in eu-central-1)',
      ],
    ]);
  });

  it("a cross-region replica whose Performance Insights key is in another region", () => {
    const rs = mutatedInstance(
      (p) => (p.performanceInsightsKmsKeyId = "arn:aws:kms:us-east-1:000000000000:key/other"),
      () => base,
      "main-replica-main-dr",
    );
    expect(summary(check(rs))[0]?.[2]).toBe(
      'RDS instance "prod-main-dr" (read replica) is in eu-west-1 and must use a KMS key of eu-west-1 (performanceInsightsKmsKeyId is in us-east-1)',
    );
  });

  it("a replica that claims backups of its own, or drops its protected primary's deletion protection", () => {
    const rs = mutatedInstance(
      (p) => {
        p.backupRetentionPeriod = 7;
        p.deletionProtection = false;
      },
      () => base,
      "main-replica-main-ro-1",
    );
    expect(summary(check(rs))).toEqual([
      [
        "rds-replica-consistent",
        "mandatory",
        'RDS instance "prod-main-ro-1" (read replica): it must set backupRetentionPeriod 0 (RDS for PostgreSQL replicas take no automated backups; they are the primary\'s); it must have deletionProtection true like its primary "prod-main"',
      ],
    ]);
  });

  it("a primary without automated backups cannot back its replicas", () => {
    const rs = mutatedInstance((p) => (p.backupRetentionPeriod = 0));
    expect(summary(check(rs)).filter(([policy]) => policy === "rds-replica-consistent")).toEqual([
      [
        "rds-replica-consistent",
        "mandatory",
        'RDS instance "prod-main-ro-1" (read replica): its primary "prod-main" must keep automated backups (backupRetentionPeriod >= 1)',
      ],
      [
        "rds-replica-consistent",
        "mandatory",
        'RDS instance "prod-main-dr" (read replica): its primary "prod-main" must keep automated backups (backupRetentionPeriod >= 1)',
      ],
    ]);
  });

  it("a public cross-region replica, or one from another environment", () => {
    const rs = mutatedInstance(
      (p) => {
        p.publiclyAccessible = true;
        p.replicateSourceDb = "arn:aws:rds:eu-central-1:000000000000:db:staging-main";
      },
      () => base,
      "main-replica-main-dr",
    );
    expect(summary(check(rs))).toEqual([
      [
        "same-environment",
        "mandatory",
        'RDS replica "prod-main-dr" must replicate an instance of this stack (found "arn:aws:rds:eu-central-1:000000000000:db:staging-main")',
      ],
      ["rds-not-publicly-accessible", "mandatory", 'RDS instance "prod-main-dr" (read replica) must not be publicly accessible'],
    ]);
  });
});

describe("backup buckets", () => {
  const bucketName = "db-platform-prod-backups";
  const key = "arn:aws:kms:eu-central-1:000000000000:key/backups";
  const compliant = (): Mutable[] => [
    raw("aws:s3/bucket:Bucket", "backups", null, { bucket: bucketName, tags: { "db-platform:environment": "prod" } }),
    raw("aws:s3/bucketVersioning:BucketVersioning", "v", null, { bucket: bucketName, versioningConfiguration: { status: "Enabled" } }),
    raw("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e", null, {
      bucket: bucketName,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: key } }],
    }),
    raw("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", null, {
      bucket: bucketName,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }),
    raw("aws:s3/bucketPolicy:BucketPolicy", "p", null, {
      bucket: bucketName,
      policy: JSON.stringify({
        Statement: [{ Effect: "Deny", Principal: "*", Action: "s3:*", Condition: { Bool: { "aws:SecureTransport": "false" } } }],
      }),
    }),
    raw("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "l", null, {
      bucket: bucketName,
      rules: [{ id: "archive", status: "Enabled" }],
    }),
    raw("aws:s3/bucketLogging:BucketLogging", "log", null, {
      bucket: bucketName,
      targetBucket: "db-platform-prod-backup-logs",
      targetPrefix: "prod/",
    }),
    raw("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "rep", null, {
      bucket: bucketName,
      rules: [
        {
          status: "Enabled",
          destination: { bucket: "arn:aws:s3:::db-platform-prod-backups-eu-west-1", encryptionConfiguration: { replicaKmsKeyId: key } },
        },
      ],
    }),
  ];

  it("a compliant bucket passes", () => {
    expect(check([...base, ...compliant()], PROD_CONFIG)).toEqual([]);
  });

  it.each([
    ["v", "backup-bucket-versioning", `bucket "${bucketName}" must have versioning enabled (aws.s3.BucketVersioning with status Enabled)`],
    ["e", "backup-bucket-sse-kms", `bucket "${bucketName}" must encrypt with SSE-KMS and a customer-managed key by default`],
    [
      "pab",
      "backup-bucket-public-access-block",
      `bucket "${bucketName}" must block public access (blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true)`,
    ],
    [
      "p",
      "backup-bucket-tls-only",
      `bucket "${bucketName}" must have a bucket policy that denies requests with aws:SecureTransport "false"`,
    ],
    ["l", "backup-bucket-lifecycle", `bucket "${bucketName}" must have a lifecycle configuration (archive, expiry, noncurrent versions)`],
    ["log", "bucket-access-logging", `bucket "${bucketName}" must log its requests to a log bucket (aws.s3.BucketLogging)`],
    [
      "rep",
      "backup-bucket-replication",
      `bucket "${bucketName}" must replicate to a bucket in another region (aws.s3.BucketReplicationConfig)`,
    ],
  ])("without %s", (name, policy, message) => {
    const rs = [...base, ...compliant().filter((r) => r.name !== name)];
    expect(summary(check(rs, PROD_CONFIG))).toEqual([[policy, "mandatory", message]]);
  });

  it("one public-access block left off", () => {
    const rs = compliant();
    rs[3].props.restrictPublicBuckets = false;
    expect(summary(check([...base, ...rs], PROD_CONFIG)).map((s) => s[0])).toEqual(["backup-bucket-public-access-block"]);
  });

  it("a bucket of another environment", () => {
    const rs = compliant();
    rs[0].props.bucket = "db-platform-staging-backups";
    for (const r of rs) r.props.bucket = "db-platform-staging-backups";
    expect(summary(check([...base, ...rs], PROD_CONFIG))).toEqual([
      ["same-environment", "mandatory", 'bucket "db-platform-staging-backups" must name its environment "prod"'],
    ]);
  });
});

describe("policy config", () => {
  it("applies schema defaults when the stack has no config (minimumDays 7, protection not required)", () => {
    const rs = mutatedInstance((p) => {
      p.backupRetentionPeriod = 5;
      p.multiAz = false;
    });
    expect(summary(check(rs))).toEqual([
      [
        "rds-backup-retention",
        "mandatory",
        'RDS instance "prod-main" must keep automated backups at least 7 days (backupRetentionPeriod is 5)',
      ],
    ]);
  });

  it("dev config makes the baseline advisory where it relaxes it", () => {
    // studio has no replicas: replicas make backups on their primary mandatory everywhere.
    const rs = mutatedInstance(
      (p) => (p.backupRetentionPeriod = 0),
      () => base,
      "studio-instance",
    );
    expect(summary(check(rs, DEV_CONFIG))).toEqual([
      [
        "rds-backup-retention",
        "advisory",
        'RDS instance "prod-studio" must keep automated backups at least 1 days (backupRetentionPeriod is 0)',
      ],
    ]);
  });

  it("refuses to lower an isolation rule, unknown policies and unknown properties", () => {
    expect(() => resolveConfig({ "no-cross-service-privileges": "advisory" })).toThrow(
      new PolicyConfigError('no-cross-service-privileges: isolation policies are mandatory in every stack (found "advisory")'),
    );
    expect(() => resolveConfig({ "no-such-rule": "advisory" })).toThrow("no-such-rule: unknown policy");
    expect(() => resolveConfig({ "rds-backup-retention": { minimumDayz: 3 } })).toThrow(
      "rds-backup-retention.minimumDayz: unknown property",
    );
    expect(() => resolveConfig({ all: "advisory" })).toThrow(PolicyConfigError);
  });

  it("the committed config files are valid", () => {
    for (const f of fs.readdirSync(path.join(ROOT, "policies/config"))) {
      expect(() => resolveConfig(JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config", f), "utf8"))), f).not.toThrow();
    }
  });
});
