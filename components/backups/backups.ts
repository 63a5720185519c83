/**
 * Logical backups on AWS, for `backups.storage: s3` (docs/backups.md):
 *
 * - the backup bucket: versioned, SSE-KMS with its own rotating key, all four public-access
 *   blocks, a bucket policy that refuses plain HTTP, a lifecycle (Glacier Instant Retrieval after
 *   `archiveAfterDays`, expiry after `expireAfterDays`, older versions after
 *   `noncurrentExpireAfterDays`, abandoned multipart uploads after a day) and, when
 *   `objectLockDays` > 0, Object Lock in COMPLIANCE mode; one prefix per environment and service;
 * - the runner image (docker/backup-runner.Dockerfile, one per PostgreSQL major in use, client
 *   tools of that major) built with @pulumi/docker and pushed to an encrypted ECR repository;
 * - per RDS server, an ECS Fargate task in the server's private subnets, started by an EventBridge
 *   Scheduler schedule, that runs `db-platform backup run --server <server>`. Each service is dumped
 *   with its own read-only login: the task receives exactly those logins' secrets, and may write
 *   only below those services' prefixes;
 * - per service, CloudWatch alarms: no completed backup within the RPO, or a failed run;
 * - per RDS server, the per-service metrics publisher: a second scheduled task on the same image
 *   (statsPublisher.ts), with alarms on each service's connection saturation and p95 latency;
 * - per RDS server, with `replicaRegion`, RDS automated backups replicated to that region,
 *   encrypted with a customer-managed key there.
 */
import * as aws from "@pulumi/aws";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RdsServer } from "../servers/rds";
import { alarmTopic, customerManagedKey } from "../servers/aws";
import { serverTags } from "../servers/server";
import type { BackupsSpec, MonitoringSpec } from "../spec";
import { awsServerName } from "../spec";
import { BACKUP_METRICS } from "../spec/defaults";
import { accessLogKeyGrant, accessLogs } from "./accessLogs";
import { type BackedUpService, runnerNames, serverRunner } from "./runner";
import { runnerImageTag } from "./runnerImage";
import { policyDocument } from "./tasks";

export type { BackedUpService } from "./runner";

export const RUNNER_DOCKERFILE = "docker/backup-runner.Dockerfile";

export interface BackupsArgs {
  readonly spec: BackupsSpec;
  readonly environment: string;
  readonly stack: string;
  /** The stack's RDS servers, each with the services placed on it and its monitoring login's secret. */
  readonly servers: ReadonlyArray<{
    readonly server: RdsServer;
    readonly services: readonly BackedUpService[];
    readonly monitorSecretArn: pulumi.Output<string>;
  }>;
  /** The per-service metrics publisher each server gets (statsPublisher.ts). */
  readonly monitoring: MonitoringSpec;
  readonly tags?: Readonly<Record<string, string>>;
  readonly alarmEmail?: string;
}

export class Backups extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  /** The backup bucket's server access logs (accessLogs.ts). */
  readonly accessLogs: aws.s3.Bucket;
  readonly key: aws.kms.Key;
  readonly repository: aws.ecr.Repository;
  readonly images: Record<string, docker.Image> = {};
  readonly cluster: aws.ecs.Cluster;
  readonly alarmTopic: aws.sns.Topic;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:backups:Backups", name, {}, opts);
    const { spec, environment } = args;
    const parent = { parent: this };
    const id = `db-platform-${environment}-backups`;
    const tags = { ...(args.tags ?? {}), "db-platform:environment": environment, "managed-by": "db-platform" };
    const identity = aws.getCallerIdentityOutput({}, parent);
    const region = aws.getRegionOutput({}, parent).region;

    const logGroupName = `/db-platform/${environment}/backups`;
    this.key = Backups.createKey(name, id, logGroupName, identity.accountId, region, tags, parent);
    this.bucket = this.createBucket(name, spec, identity.accountId, environment, tags);
    this.accessLogs = accessLogs(name, {
      spec,
      environment,
      accountId: identity.accountId,
      source: this.bucket,
      key: this.key,
      tags,
      parent: this,
    });
    this.alarmTopic = alarmTopic(name, id, this.key, tags, args.alarmEmail, parent);

    this.repository = new aws.ecr.Repository(
      `${name}-runner-repository`,
      {
        name: `db-platform/${environment}/backup-runner`,
        // A tag names one image for good: task definitions never run an image swapped under them.
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: this.key.arn }],
        forceDelete: false,
        tags,
      },
      parent,
    );
    new aws.ecr.LifecyclePolicy(
      `${name}-runner-repository-lifecycle`,
      {
        repository: this.repository.name,
        policy: JSON.stringify({
          rules: [
            {
              rulePriority: 1,
              description: "keep the 10 newest images",
              selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 10 },
              action: { type: "expire" },
            },
          ],
        }),
      },
      parent,
    );
    const token = aws.ecr.getAuthorizationTokenOutput({ registryId: this.repository.registryId }, parent);
    for (const major of [...new Set(args.servers.map((s) => s.server.spec.version))].sort()) {
      this.images[major] = new docker.Image(
        `${name}-runner-pg${major}`,
        {
          imageName: pulumi.interpolate`${this.repository.repositoryUrl}:${runnerImageTag(major, RUNNER_DOCKERFILE)}`,
          build: { context: ".", dockerfile: RUNNER_DOCKERFILE, args: { PG_MAJOR: major }, platform: "linux/amd64" },
          registry: { server: this.repository.repositoryUrl, username: token.userName, password: pulumi.secret(token.password) },
          buildOnPreview: false,
          skipPush: false,
        },
        parent,
      );
    }

    this.cluster = new aws.ecs.Cluster(
      `${name}-cluster`,
      { name: id, settings: [{ name: "containerInsights", value: "enabled" }], tags },
      parent,
    );
    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: logGroupName, retentionInDays: spec.logRetentionDays, kmsKeyId: this.key.arn, tags },
      parent,
    );
    const schedulerRole = new aws.iam.Role(
      `${name}-scheduler-role`,
      {
        name: `${id}-scheduler`,
        assumeRolePolicy: identity.accountId.apply((account) =>
          policyDocument([
            {
              Effect: "Allow",
              Principal: { Service: "scheduler.amazonaws.com" },
              Action: "sts:AssumeRole",
              Condition: { StringEquals: { "aws:SourceAccount": account } },
            },
          ]),
        ),
        tags,
      },
      parent,
    );
    // The schedules are encrypted with the backups' key: running one decrypts its target with the role.
    new aws.iam.RolePolicy(
      `${name}-scheduler-key`,
      {
        role: schedulerRole.id,
        policy: this.key.arn.apply((key) =>
          policyDocument([{ Sid: "DecryptSchedules", Effect: "Allow", Action: "kms:Decrypt", Resource: key }]),
        ),
      },
      parent,
    );

    for (const { server, services, monitorSecretArn } of args.servers) {
      const serverTagged = { ...tags, ...serverTags(environment, server.spec.name, args.tags ?? {}) };
      serverRunner({
        ...args,
        name,
        parent: this,
        bucket: this.bucket,
        key: this.key,
        repository: this.repository,
        images: this.images,
        cluster: this.cluster,
        region,
        logGroup,
        schedulerRole,
        server,
        services,
        monitorSecretArn,
        tags: serverTagged,
      });
      const { prefix } = runnerNames(name, environment, server.spec.name);
      for (const s of services) this.createServiceAlarms(prefix, s.spec.name, spec, environment, serverTagged);
      if (spec.replicaRegion) this.replicateAutomatedBackups(name, server, spec.replicaRegion, identity.accountId, tags);
    }

    this.registerOutputs({ bucket: this.bucket.bucket, repository: this.repository.repositoryUrl, cluster: this.cluster.arn });
  }

  /** The backups' customer-managed key: CloudWatch Logs may use it for the runner's log group only, S3's logging service for deliveries. */
  private static createKey(
    name: string,
    id: string,
    logGroupName: string,
    accountId: pulumi.Output<string>,
    region: pulumi.Output<string>,
    tags: Record<string, string>,
    parent: pulumi.CustomResourceOptions,
  ): aws.kms.Key {
    return customerManagedKey(
      name,
      id,
      `db-platform ${id}: backup bucket and its access logs, runner images and logs, schedules, alarms`,
      accountId,
      tags,
      parent,
      [
        {
          sid: "CloudWatchLogsOfTheRunner",
          service: pulumi.interpolate`logs.${region}.amazonaws.com`,
          actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
          condition: {
            ArnEquals: {
              "kms:EncryptionContext:aws:logs:arn": pulumi.interpolate`arn:aws:logs:${region}:${accountId}:log-group:${logGroupName}`,
            },
          },
        },
        accessLogKeyGrant(accountId),
      ],
    );
  }

  private createBucket(
    name: string,
    spec: BackupsSpec,
    accountId: pulumi.Output<string>,
    environment: string,
    tags: Record<string, string>,
  ): aws.s3.Bucket {
    const parent = { parent: this };
    const bucket = new aws.s3.Bucket(
      `${name}-bucket`,
      {
        bucket: spec.bucket ?? pulumi.interpolate`db-platform-${environment}-backups-${accountId}`,
        objectLockEnabled: spec.objectLockDays > 0,
        forceDestroy: false,
        tags,
      },
      { ...parent, protect: spec.objectLockDays > 0 },
    );
    const b = { bucket: bucket.bucket };
    new aws.s3.BucketVersioning(`${name}-bucket-versioning`, { ...b, versioningConfiguration: { status: "Enabled" } }, parent);
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-bucket-encryption`,
      {
        ...b,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: this.key.arn }, bucketKeyEnabled: true }],
      },
      parent,
    );
    new aws.s3.BucketPublicAccessBlock(
      `${name}-bucket-public-access-block`,
      { ...b, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      parent,
    );
    new aws.s3.BucketOwnershipControls(`${name}-bucket-ownership`, { ...b, rule: { objectOwnership: "BucketOwnerEnforced" } }, parent);
    new aws.s3.BucketPolicy(
      `${name}-bucket-policy`,
      {
        ...b,
        policy: bucket.arn.apply((arn) =>
          policyDocument([
            {
              Sid: "DenyPlainHttp",
              Effect: "Deny",
              Principal: "*",
              Action: "s3:*",
              Resource: [arn, `${arn}/*`],
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
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
      parent,
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-bucket-lifecycle`,
      {
        ...b,
        rules: [
          {
            id: "backups",
            status: "Enabled",
            filter: { prefix: `${environment}/` },
            transitions: [{ days: spec.archiveAfterDays, storageClass: "GLACIER_IR" }],
            expiration: { days: spec.expireAfterDays },
            noncurrentVersionExpiration: { noncurrentDays: spec.noncurrentExpireAfterDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      parent,
    );
    if (spec.objectLockDays > 0) {
      new aws.s3.BucketObjectLockConfiguration(
        `${name}-bucket-object-lock`,
        { ...b, rule: { defaultRetention: { mode: "COMPLIANCE", days: spec.objectLockDays } } },
        parent,
      );
    }
    return bucket;
  }

  /** No completed backup within the RPO (missing data counts), or any failed run. */
  private createServiceAlarms(prefix: string, service: string, spec: BackupsSpec, environment: string, tags: Record<string, string>): void {
    const parent = { parent: this };
    const dimensions = { Environment: environment, Service: service };
    const actions = [this.alarmTopic.arn];
    new aws.cloudwatch.MetricAlarm(
      `${prefix}-${service}-backup-age`,
      {
        name: `db-platform-${environment}-${service}-backup-older-than-rpo`,
        alarmDescription: `${service}: no completed backup in the last ${spec.rpoHours} h (RPO)`,
        namespace: BACKUP_METRICS.namespace,
        metricName: BACKUP_METRICS.completed,
        dimensions,
        statistic: "Sum",
        period: 3600,
        evaluationPeriods: spec.rpoHours,
        datapointsToAlarm: spec.rpoHours,
        comparisonOperator: "LessThanThreshold",
        threshold: 1,
        treatMissingData: "breaching",
        alarmActions: actions,
        okActions: actions,
        tags,
      },
      parent,
    );
    new aws.cloudwatch.MetricAlarm(
      `${prefix}-${service}-backup-failed`,
      {
        name: `db-platform-${environment}-${service}-backup-failed`,
        alarmDescription: `${service}: a backup run failed (no manifest written; see the runner's logs)`,
        namespace: BACKUP_METRICS.namespace,
        metricName: BACKUP_METRICS.failed,
        dimensions,
        statistic: "Sum",
        period: 300,
        evaluationPeriods: 1,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
        treatMissingData: "notBreaching",
        alarmActions: actions,
        tags,
      },
      parent,
    );
  }

  /** RDS automated backups (snapshots and transaction logs) copied to another region, under a key there. */
  private replicateAutomatedBackups(
    name: string,
    server: RdsServer,
    region: string,
    accountId: pulumi.Output<string>,
    tags: Record<string, string>,
  ): void {
    const prefix = `${name}-${server.spec.name}-${region}`;
    const provider = new aws.Provider(`${prefix}-aws`, { region: region as aws.Region }, { parent: this });
    const opts = { parent: this, provider };
    const id = `${awsServerName(tags["db-platform:environment"], server.spec.name)}-backups-${region}`;
    const key = customerManagedKey(prefix, id, `db-platform ${id}: replicated RDS automated backups`, accountId, tags, opts);
    new aws.rds.InstanceAutomatedBackupsReplication(
      `${prefix}-automated-backups`,
      { sourceDbInstanceArn: server.instance.arn, kmsKeyId: key.arn, retentionPeriod: server.spec.backupRetentionDays },
      opts,
    );
  }
}
