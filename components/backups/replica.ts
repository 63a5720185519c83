/**
 * The backups across regions (`backups.replicaRegion`, docs/backups.md): S3 replication of the
 * environment's prefix of the backup bucket (every service's dumps and manifests) to a bucket of
 * the same make in the replica region — versioned, Object Lock as the source, SSE-KMS with a
 * customer-managed key of that region, private, TLS only, its own access logs there. Deletions
 * are not replicated (no delete markers): a dump deleted or expired at the source stays in the
 * replica until the replica's own lifecycle expires it. The replication role reads only the
 * source's versions, writes only into the replica, and uses each key only through S3 in its
 * region.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { customerManagedKey } from "../servers/aws";
import type { BackupsSpec } from "../spec";
import { accessLogBucketName, replicaBucketName } from "../spec/naming";
import { accessLogKeyGrant, accessLogs } from "./accessLogs";
import { backupBucket, serviceRole } from "./bucket";
import { policyDocument } from "./tasks";

export interface ReplicaArgs {
  /** `db-platform-<env>-backups`: the role's and the key's names. */
  readonly id: string;
  readonly spec: BackupsSpec;
  readonly region: string;
  readonly environment: string;
  readonly accountId: pulumi.Output<string>;
  readonly sourceRegion: pulumi.Output<string>;
  readonly source: { readonly bucket: aws.s3.Bucket; readonly versioning: aws.s3.BucketVersioning };
  readonly sourceKey: aws.kms.Key;
  readonly tags: Record<string, string>;
  readonly parent: pulumi.Resource;
}

/** The replica bucket in `region`, and the source bucket's replication into it; returns the replica. */
export function replicateBackups(name: string, a: ReplicaArgs): aws.s3.Bucket {
  const { region, environment, tags } = a;
  const provider = new aws.Provider(`${name}-replica-aws`, { region: region as aws.Region }, { parent: a.parent });
  const there = { parent: a.parent, provider };
  const key = customerManagedKey(
    `${name}-replica`,
    `${a.id}-${region}`,
    `db-platform ${a.id}: backups replicated to ${region} and their access logs`,
    a.accountId,
    tags,
    there,
    [accessLogKeyGrant(a.accountId)],
  );
  const replica = backupBucket(`${name}-replica-bucket`, {
    bucketName: a.source.bucket.bucket.apply((source) => replicaBucketName(source, region)),
    spec: a.spec,
    environment,
    key,
    tags,
    opts: there,
  });
  accessLogs(`${name}-replica`, {
    spec: a.spec,
    environment,
    accountId: a.accountId,
    bucketName: a.accountId.apply((account) => accessLogBucketName(environment, account, region)),
    source: replica.bucket,
    key,
    tags,
    opts: there,
  });

  const here = { parent: a.parent };
  const role = serviceRole(`${name}-replication-role`, `${a.id}-replication`, "s3.amazonaws.com", a.accountId, tags, here);
  new aws.iam.RolePolicy(
    `${name}-replication-policy`,
    {
      role: role.id,
      policy: pulumi
        .all([a.source.bucket.arn, replica.bucket.arn, a.sourceKey.arn, key.arn, a.sourceRegion])
        .apply(([source, target, sourceKey, targetKey, sourceRegion]) =>
          policyDocument([
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
            { Sid: "WriteReplica", Effect: "Allow", Action: ["s3:ReplicateObject", "s3:ReplicateTags"], Resource: `${target}/*` },
            {
              Sid: "DecryptSourceThroughS3",
              Effect: "Allow",
              Action: "kms:Decrypt",
              Resource: sourceKey,
              Condition: { StringEquals: { "kms:ViaService": `s3.${sourceRegion}.amazonaws.com` } },
            },
            {
              Sid: "EncryptReplicaThroughS3",
              Effect: "Allow",
              Action: ["kms:Encrypt", "kms:GenerateDataKey"],
              Resource: targetKey,
              Condition: { StringEquals: { "kms:ViaService": `s3.${region}.amazonaws.com` } },
            },
          ]),
        ),
    },
    here,
  );
  new aws.s3.BucketReplicationConfig(
    `${name}-bucket-replication`,
    {
      bucket: a.source.bucket.bucket,
      role: role.arn,
      rules: [
        {
          id: "backups-to-replica-region",
          status: "Enabled",
          priority: 1,
          filter: { prefix: `${environment}/` },
          deleteMarkerReplication: { status: "Disabled" },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: "Enabled" } },
          destination: {
            bucket: replica.bucket.arn,
            storageClass: "STANDARD",
            encryptionConfiguration: { replicaKmsKeyId: key.arn },
            // Replication Time Control: 99.99 % of objects within 15 minutes, and the metrics to see it.
            replicationTime: { status: "Enabled", time: { minutes: 15 } },
            metrics: { status: "Enabled", eventThreshold: { minutes: 15 } },
          },
        },
      ],
    },
    { ...here, dependsOn: [a.source.versioning, replica.versioning] },
  );
  return replica.bucket;
}
