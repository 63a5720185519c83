/**
 * Logical backups on AWS, for `backups.storage: s3` (docs/backups.md):
 *
 * - the backup bucket (bucket.ts): versioned, SSE-KMS with its own rotating key, all four
 *   public-access blocks, a bucket policy that refuses plain HTTP, a lifecycle (Glacier Instant
 *   Retrieval after `archiveAfterDays`, expiry after `expireAfterDays`, older versions after
 *   `noncurrentExpireAfterDays`, abandoned multipart uploads after a day) and, when
 *   `objectLockDays` > 0, Object Lock in COMPLIANCE mode; one prefix per environment and service;
 *   its server access logs in a log bucket of its own (accessLogs.ts) and, with `replicaRegion`,
 *   its replica in that region (replica.ts);
 * - the runner image (docker/backup-runner.Dockerfile, one per PostgreSQL major in use, client
 *   tools of that major) built with @pulumi/docker and pushed to an ECR repository with immutable
 *   tags (runnerImage.ts) under the backups' key; its log group and schedules under that key;
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
import { accessLogBucketName, backupBucketName } from "../spec/naming";
import { BACKUP_METRICS } from "../spec/defaults";
import { accessLogKeyGrant, accessLogs } from "./accessLogs";
import { backupBucket, serviceRole } from "./bucket";
import { replicateBackups } from "./replica";
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
  /** With `replicaRegion`: the bucket the backups are replicated to there (replica.ts). */
  readonly replica?: aws.s3.Bucket;
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
    ({
      bucket: this.bucket,
      accessLogs: this.accessLogs,
      replica: this.replica,
    } = this.createBuckets(name, id, spec, environment, identity.accountId, region, tags));
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
    const schedulerRole = serviceRole(
      `${name}-scheduler-role`,
      `${id}-scheduler`,
      "scheduler.amazonaws.com",
      identity.accountId,
      tags,
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

  /** The backup bucket, its access logs and, with `replicaRegion`, its replica there. */
  private createBuckets(
    name: string,
    id: string,
    spec: BackupsSpec,
    environment: string,
    accountId: pulumi.Output<string>,
    region: pulumi.Output<string>,
    tags: Record<string, string>,
  ): { bucket: aws.s3.Bucket; accessLogs: aws.s3.Bucket; replica?: aws.s3.Bucket } {
    const parent = { parent: this };
    const primary = backupBucket(`${name}-bucket`, {
      bucketName: spec.bucket ?? accountId.apply((account) => backupBucketName(environment, account)),
      spec,
      environment,
      key: this.key,
      tags,
      opts: parent,
    });
    const bucket = primary.bucket;
    const logs = accessLogs(name, {
      spec,
      environment,
      accountId: accountId,
      bucketName: accountId.apply((account) => accessLogBucketName(environment, account)),
      source: bucket,
      key: this.key,
      tags,
      opts: parent,
    });
    let replica: aws.s3.Bucket | undefined;
    if (spec.replicaRegion) {
      replica = replicateBackups(name, {
        id,
        spec,
        region: spec.replicaRegion,
        environment,
        accountId: accountId,
        sourceRegion: region,
        source: primary,
        sourceKey: this.key,
        tags,
        parent: this,
      });
    }
    return { bucket, accessLogs: logs, replica };
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
