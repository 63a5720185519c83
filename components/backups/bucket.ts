/**
 * A bucket that holds backups (docs/backups.md): versioned, SSE-KMS with the given
 * customer-managed key (bucket key on), all four public-access blocks, bucket-owner-enforced,
 * a policy that refuses plain HTTP and uploads not encrypted with KMS, the lifecycle of
 * `backups` (Glacier Instant Retrieval, expiry, older versions, abandoned uploads) and, when
 * `objectLockDays` > 0, Object Lock in COMPLIANCE mode (and `protect`). The backup bucket and its
 * replica in `backups.replicaRegion` are both this.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { BackupsSpec } from "../spec";
import { policyDocument } from "./tasks";

export interface BackupBucketArgs {
  readonly bucketName: pulumi.Input<string>;
  readonly spec: BackupsSpec;
  readonly environment: string;
  readonly key: aws.kms.Key;
  readonly tags: Record<string, string>;
  /** Parent, and the provider of the bucket's region. */
  readonly opts: pulumi.CustomResourceOptions;
}

/** The bucket policy statement that refuses every request without TLS, to the bucket and its objects. */
export function denyPlainHttp(arn: string): Record<string, unknown> {
  return {
    Sid: "DenyPlainHttp",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [arn, `${arn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

/** An IAM role only `service` may assume, on behalf of this account only. */
export function serviceRole(
  resource: string,
  roleName: string,
  service: string,
  accountId: pulumi.Output<string>,
  tags: Record<string, string>,
  opts: pulumi.CustomResourceOptions,
): aws.iam.Role {
  return new aws.iam.Role(
    resource,
    {
      name: roleName,
      assumeRolePolicy: accountId.apply((account) =>
        policyDocument([
          {
            Effect: "Allow",
            Principal: { Service: service },
            Action: "sts:AssumeRole",
            Condition: { StringEquals: { "aws:SourceAccount": account } },
          },
        ]),
      ),
      tags,
    },
    opts,
  );
}

/** The bucket (resources `<prefix>`, `<prefix>-versioning`, …) and its versioning, which replication waits for. */
export function backupBucket(prefix: string, a: BackupBucketArgs): { bucket: aws.s3.Bucket; versioning: aws.s3.BucketVersioning } {
  const { spec, opts } = a;
  const bucket = new aws.s3.Bucket(
    prefix,
    { bucket: a.bucketName, objectLockEnabled: spec.objectLockDays > 0, forceDestroy: false, tags: a.tags },
    { ...opts, protect: spec.objectLockDays > 0 },
  );
  const b = { bucket: bucket.bucket };
  const versioning = new aws.s3.BucketVersioning(`${prefix}-versioning`, { ...b, versioningConfiguration: { status: "Enabled" } }, opts);
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${prefix}-encryption`,
    {
      ...b,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: a.key.arn }, bucketKeyEnabled: true }],
    },
    opts,
  );
  new aws.s3.BucketPublicAccessBlock(
    `${prefix}-public-access-block`,
    { ...b, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    opts,
  );
  new aws.s3.BucketOwnershipControls(`${prefix}-ownership`, { ...b, rule: { objectOwnership: "BucketOwnerEnforced" } }, opts);
  new aws.s3.BucketPolicy(
    `${prefix}-policy`,
    {
      ...b,
      policy: bucket.arn.apply((arn) =>
        policyDocument([
          denyPlainHttp(arn),
          {
            Sid: "DenyUploadsWithoutKms",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:PutObject",
            Resource: `${arn}/*`,
            Condition: { StringNotEqualsIfExists: { "s3:x-amz-server-side-encryption": "aws:kms" } },
          },
        ]),
      ),
    },
    opts,
  );
  new aws.s3.BucketLifecycleConfiguration(
    `${prefix}-lifecycle`,
    {
      ...b,
      rules: [
        {
          id: "backups",
          status: "Enabled",
          filter: { prefix: `${a.environment}/` },
          transitions: [{ days: spec.archiveAfterDays, storageClass: "GLACIER_IR" }],
          expiration: { days: spec.expireAfterDays },
          noncurrentVersionExpiration: { noncurrentDays: spec.noncurrentExpireAfterDays },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        },
      ],
    },
    opts,
  );
  if (spec.objectLockDays > 0) {
    new aws.s3.BucketObjectLockConfiguration(
      `${prefix}-object-lock`,
      { ...b, rule: { defaultRetention: { mode: "COMPLIANCE", days: spec.objectLockDays } } },
      opts,
    );
  }
  return { bucket, versioning };
}
