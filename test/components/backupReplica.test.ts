/**
 * Backups across regions (issue #31, item 3) under the SDK's mocks, input by input: with
 * `backups.replicaRegion`, the backup bucket replicates its environment's prefix to a bucket of
 * the same make in that region (versioned, Object Lock, SSE-KMS with a key of that region,
 * private, TLS only, its own access logs there), without delete markers, through a role that
 * reads only the source and writes only the replica. The pack passes it and, in prod, refuses a
 * backup bucket that does not replicate.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { formatProblem, validateConfig } from "../../components/spec";
import { changed, input, prodValues } from "../helpers/config";
import { check, summary } from "../helpers/policy";
import { type Resources, ROOT, synthInput } from "../helpers/synth";

const ACCOUNT = "000000000000";
const SOURCE = `db-platform-prod-backups-${ACCOUNT}`;
const REPLICA = `${SOURCE}-eu-west-1`;
const DR_KEY = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/backups-replica-key`;
const SOURCE_KEY = `arn:aws:kms:eu-central-1:${ACCOUNT}:key/backups-key`;
const PROD_CONFIG = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8"));

let prod: Resources;
beforeAll(async () => {
  prod = await synthInput(input(changed(prodValues(), (v) => (v.backups = { storage: "s3", replicaRegion: "eu-west-1" }))), "prod");
});

const ofBucket = (type: string, bucket: string) => prod.ofType(type).filter((r) => r.props.bucket === bucket);
const statements = (policy: unknown) => (JSON.parse(String(policy)) as { Statement: Array<Record<string, unknown>> }).Statement;

describe("the replica bucket in backups.replicaRegion", () => {
  it("is made like the backup bucket, in eu-west-1, under a rotating key of that region", () => {
    const bucket = prod.one("aws:s3/bucket:Bucket", "backups-replica-bucket");
    expect(bucket.props).toMatchObject({ bucket: REPLICA, objectLockEnabled: true, forceDestroy: false });
    expect(bucket.protect).toBe(true);
    expect(prod.one("aws:kms/key:Key", "backups-replica-key").props).toMatchObject({ enableKeyRotation: true, deletionWindowInDays: 30 });
    // Every resource of the replica goes through the eu-west-1 provider.
    const provider = prod.one("pulumi:providers:aws", "backups-replica-aws");
    expect(provider.props.region).toBe("eu-west-1");
    const there = prod.all.filter((r) => r.name.startsWith("backups-replica-") && r.type !== "pulumi:providers:aws");
    expect(there.length).toBeGreaterThan(10);
    for (const r of there) expect(r.provider, r.name).toContain("backups-replica-aws");
    expect(ofBucket("aws:s3/bucketVersioning:BucketVersioning", REPLICA)[0].props.versioningConfiguration).toEqual({ status: "Enabled" });
    expect(ofBucket("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", REPLICA)[0].props.rule).toEqual({
      defaultRetention: { mode: "COMPLIANCE", days: 14 },
    });
    expect(
      ofBucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", REPLICA)[0].props.rules,
    ).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: DR_KEY }, bucketKeyEnabled: true }]);
    expect(ofBucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", REPLICA)[0].props).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(ofBucket("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", REPLICA)[0].props.rules).toEqual(
      ofBucket("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", SOURCE)[0].props.rules,
    );
    expect(prod.one("aws:s3/bucketLogging:BucketLogging", "backups-replica-bucket-logging").props).toMatchObject({
      bucket: REPLICA,
      targetBucket: `db-platform-prod-backup-logs-${ACCOUNT}-eu-west-1`,
    });
  });

  it("receives the environment's prefix, under its own region's key, within 15 minutes, and never a deletion", () => {
    const replication = prod.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "backups-bucket-replication");
    expect(replication.props).toEqual({
      bucket: SOURCE,
      role: `arn:aws:synth:eu-central-1:${ACCOUNT}:backups-replication-role`,
      rules: [
        {
          id: "backups-to-replica-region",
          status: "Enabled",
          priority: 1,
          filter: { prefix: "prod/" },
          deleteMarkerReplication: { status: "Disabled" },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: "Enabled" } },
          destination: {
            bucket: `arn:aws:s3:::${REPLICA}`,
            storageClass: "STANDARD",
            encryptionConfiguration: { replicaKmsKeyId: DR_KEY },
            replicationTime: { status: "Enabled", time: { minutes: 15 } },
            metrics: { status: "Enabled", eventThreshold: { minutes: 15 } },
          },
        },
      ],
    });
  });

  it("replicates through a role that reads only the source's versions, writes only the replica, and uses each key through S3 of its region", () => {
    const role = prod.one("aws:iam/role:Role", "backups-replication-role").props;
    expect(role.name).toBe("db-platform-prod-backups-replication");
    expect(statements(role.assumeRolePolicy)).toEqual([
      {
        Effect: "Allow",
        Principal: { Service: "s3.amazonaws.com" },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "aws:SourceAccount": ACCOUNT } },
      },
    ]);
    const source = `arn:aws:s3:::${SOURCE}`;
    expect(statements(prod.one("aws:iam/rolePolicy:RolePolicy", "backups-replication-policy").props.policy)).toEqual([
      {
        Sid: "ReadReplicationConfiguration",
        Effect: "Allow",
        Action: ["s3:GetReplicationConfiguration", "s3:ListBucket"],
        Resource: source,
      },
      {
        Sid: "ReadSourceVersions",
        Effect: "Allow",
        Action: [
          "s3:GetObjectVersionForReplication",
          "s3:GetObjectVersionAcl",
          "s3:GetObjectVersionTagging",
          "s3:GetObjectRetention",
          "s3:GetObjectLegalHold",
        ],
        Resource: `${source}/*`,
      },
      { Sid: "WriteReplica", Effect: "Allow", Action: ["s3:ReplicateObject", "s3:ReplicateTags"], Resource: `arn:aws:s3:::${REPLICA}/*` },
      {
        Sid: "DecryptSourceThroughS3",
        Effect: "Allow",
        Action: "kms:Decrypt",
        Resource: SOURCE_KEY,
        Condition: { StringEquals: { "kms:ViaService": "s3.eu-central-1.amazonaws.com" } },
      },
      {
        Sid: "EncryptReplicaThroughS3",
        Effect: "Allow",
        Action: ["kms:Encrypt", "kms:GenerateDataKey"],
        Resource: DR_KEY,
        Condition: { StringEquals: { "kms:ViaService": "s3.eu-west-1.amazonaws.com" } },
      },
    ]);
  });

  it("passes the pack; in prod the pack refuses a backup bucket that does not replicate, or replicates under AWS's key", () => {
    expect(summary(check(prod.all, PROD_CONFIG))).toEqual([]);
    const unreplicated = prod.all.filter((r) => r.type !== "aws:s3/bucketReplicationConfig:BucketReplicationConfig");
    // The replica, no longer a destination, must then replicate too.
    expect(summary(check(unreplicated, PROD_CONFIG)).map((v) => v[2])).toEqual([
      `bucket "${SOURCE}" must replicate to a bucket in another region (aws.s3.BucketReplicationConfig)`,
      `bucket "${REPLICA}" must replicate to a bucket in another region (aws.s3.BucketReplicationConfig)`,
    ]);
    const awsKey = structuredClone(prod.all).map((r) => {
      if (r.type !== "aws:s3/bucketReplicationConfig:BucketReplicationConfig") return r;
      const rules = r.props.rules as Array<{ destination: Record<string, unknown> }>;
      return {
        ...r,
        props: {
          ...r.props,
          rules: rules.map((rule) => ({ ...rule, destination: { ...rule.destination, encryptionConfiguration: undefined } })),
        },
      };
    });
    expect(summary(check(awsKey, PROD_CONFIG))).toEqual([
      [
        "backup-bucket-replication",
        "mandatory",
        `bucket "${SOURCE}" must encrypt its replicas with a customer-managed key (destination.encryptionConfiguration.replicaKmsKeyId)`,
      ],
    ]);
  });

  it("is not made without replicaRegion", async () => {
    const staging = await synthInput(
      input(
        changed(prodValues(), (v) => {
          v.environment = "staging";
          v.backups = { storage: "s3" };
        }),
      ),
      "staging",
    );
    expect(staging.ofType("aws:s3/bucketReplicationConfig:BucketReplicationConfig")).toEqual([]);
    expect(
      staging
        .ofType("aws:s3/bucket:Bucket")
        .map((b) => String(b.props.bucket))
        .sort(),
    ).toEqual([`db-platform-staging-backup-logs-${ACCOUNT}`, `db-platform-staging-backups-${ACCOUNT}`]);
  });

  it("is refused, with its path, where S3 would refuse a bucket name in the replica region", () => {
    const problems = (backups: Record<string, unknown>) => {
      const r = validateConfig(
        input(
          changed(prodValues(), (v) => (v.backups = { storage: "s3", replicaRegion: "ap-southeast-3", ...backups })),
          { awsRegion: "eu-central-1" },
        ),
      );
      return r.ok ? [] : r.problems.map(formatProblem);
    };
    expect(problems({})).toEqual([]);
    const bucket = `acme-${"x".repeat(45)}`;
    expect(problems({ bucket })).toEqual([
      `backups.bucket: a bucket in ap-southeast-3 would be named ${bucket}-ap-southeast-3 (65 characters with the 12-digit account id): S3 allows 63; choose a shorter backups.bucket`,
    ]);
  });
});
