/**
 * Server access logging of the backup bucket (docs/backups.md): S3 delivers a record of every
 * request to a log bucket of its own, itself versioned, encrypted with the backups' key
 * (`logging.s3.amazonaws.com` may generate data keys for this account's deliveries only), all
 * public access blocked, TLS only, written by the logging service for the backup bucket only, and
 * expired after `backups.logRetentionDays`. The log bucket does not log itself.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { BackupsSpec } from "../spec";
import type { KeyGrant } from "../servers/aws";
import { denyPlainHttp } from "./bucket";
import { policyDocument } from "./tasks";

/** The key statement the logging service needs to write SSE-KMS objects into the log bucket. */
export function accessLogKeyGrant(accountId: pulumi.Output<string>): KeyGrant {
  return {
    sid: "S3ServerAccessLogsToEncryptedBucket",
    service: "logging.s3.amazonaws.com",
    actions: ["kms:GenerateDataKey"],
    condition: { StringEquals: { "aws:SourceAccount": accountId } },
  };
}

export interface AccessLogsArgs {
  readonly spec: BackupsSpec;
  readonly environment: string;
  readonly accountId: pulumi.Output<string>;
  /** The log bucket's name (in the source bucket's region: S3 delivers within a region). */
  readonly bucketName: pulumi.Input<string>;
  /** The bucket whose requests are logged. */
  readonly source: aws.s3.Bucket;
  readonly key: aws.kms.Key;
  readonly tags: Record<string, string>;
  /** Parent, and the provider of the source bucket's region. */
  readonly opts: pulumi.CustomResourceOptions;
}

/** The log bucket and the source bucket's logging into it; returns the log bucket. */
export function accessLogs(name: string, a: AccessLogsArgs): aws.s3.Bucket {
  const opts = a.opts;
  const bucket = new aws.s3.Bucket(`${name}-access-logs`, { bucket: a.bucketName, forceDestroy: false, tags: a.tags }, opts);
  const b = { bucket: bucket.bucket };
  new aws.s3.BucketVersioning(`${name}-access-logs-versioning`, { ...b, versioningConfiguration: { status: "Enabled" } }, opts);
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-access-logs-encryption`,
    {
      ...b,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: a.key.arn }, bucketKeyEnabled: true }],
    },
    opts,
  );
  new aws.s3.BucketPublicAccessBlock(
    `${name}-access-logs-public-access-block`,
    { ...b, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    opts,
  );
  // Bucket-owner-enforced: deliveries are authorized by the bucket policy, never by ACLs.
  new aws.s3.BucketOwnershipControls(`${name}-access-logs-ownership`, { ...b, rule: { objectOwnership: "BucketOwnerEnforced" } }, opts);
  const prefix = `${a.environment}/`;
  new aws.s3.BucketPolicy(
    `${name}-access-logs-policy`,
    {
      ...b,
      policy: pulumi.all([bucket.arn, a.source.arn, a.accountId]).apply(([arn, source, account]) =>
        policyDocument([
          denyPlainHttp(arn),
          {
            Sid: "S3ServerAccessLogsOfTheBackupBucket",
            Effect: "Allow",
            Principal: { Service: "logging.s3.amazonaws.com" },
            Action: "s3:PutObject",
            Resource: `${arn}/${prefix}*`,
            Condition: { ArnLike: { "aws:SourceArn": source }, StringEquals: { "aws:SourceAccount": account } },
          },
        ]),
      ),
    },
    opts,
  );
  new aws.s3.BucketLifecycleConfiguration(
    `${name}-access-logs-lifecycle`,
    {
      ...b,
      rules: [
        {
          id: "access-logs",
          status: "Enabled",
          filter: { prefix },
          expiration: { days: a.spec.logRetentionDays },
          noncurrentVersionExpiration: { noncurrentDays: 30 },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        },
      ],
    },
    opts,
  );
  new aws.s3.BucketLogging(
    `${name}-bucket-logging`,
    {
      bucket: a.source.bucket,
      targetBucket: bucket.bucket,
      targetPrefix: prefix,
      // Partitioned by event date: `<prefix><account>/<region>/<bucket>/<yyyy>/<mm>/<dd>/…`.
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: "EventTime" } },
    },
    opts,
  );
  return bucket;
}
