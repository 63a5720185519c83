/**
 * One RDS server's backup runner (see backups.ts): the task's IAM roles, a security group that
 * reaches only its server and HTTPS, the Fargate task definition running the image's backup task
 * (bin/backup-task.js: `db-platform backup run --server <server>` without the CLI), and the
 * EventBridge Scheduler schedule that starts it. With it, the server's per-service metrics
 * publisher (statsPublisher.ts) runs in the same security group.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { BackupsSpec, MonitoringSpec, ServiceSpec } from "../spec";
import { awsServerName, loginEnvName } from "../spec";
import { BACKUP_METRICS } from "../spec/defaults";
import { statsPublisher } from "./statsPublisher";
import { scheduleTask, type TaskHost, type TaskNames, taskDefinition, taskRoles } from "./tasks";

export { policyDocument } from "./tasks";

export interface BackedUpService {
  readonly spec: ServiceSpec;
  /** ARN of the service's read-only login secret (Secrets Manager, RDS secret JSON). */
  readonly readonlySecretArn: pulumi.Output<string>;
}

/** What a server's runner uses of the Backups component, and the server with its services. */
export interface RunnerContext extends TaskHost {
  /** The Backups component's name: resource names start with `<name>-<server>`. */
  readonly name: string;
  readonly spec: BackupsSpec;
  readonly environment: string;
  readonly bucket: aws.s3.Bucket;
  readonly services: readonly BackedUpService[];
  /** The per-service metrics publisher: its schedule and the monitoring login's secret. */
  readonly monitoring: MonitoringSpec;
  readonly monitorSecretArn: pulumi.Output<string>;
}

export function runnerNames(name: string, environment: string, server: string): TaskNames {
  return { prefix: `${name}-${server}`, id: `${awsServerName(environment, server)}-backup` };
}

/** The runner of one server and its metrics publisher; returns nothing, their resources are children of `c.parent`. */
export function serverRunner(c: RunnerContext): void {
  const names = runnerNames(c.name, c.environment, c.server.spec.name);
  const prefixes = c.services.map((s) => `${c.environment}/${s.spec.name}/`);
  const roles = taskRoles(
    c,
    names,
    { sid: "ReadBackupLogins", arns: c.services.map((s) => s.readonlySecretArn) },
    pulumi.all([c.bucket.arn, c.key.arn]).apply(([bucket, key]) => [
      {
        Sid: "WriteAndReadOwnPrefixes",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        Resource: prefixes.map((p) => `${bucket}/${p}*`),
      },
      {
        Sid: "ListOwnPrefixes",
        Effect: "Allow",
        Action: "s3:ListBucket",
        Resource: bucket,
        Condition: { StringLike: { "s3:prefix": prefixes.map((p) => `${p}*`) } },
      },
      { Sid: "EncryptWithBucketKey", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: key },
      {
        Sid: "PublishBackupMetrics",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": BACKUP_METRICS.namespace } },
      },
    ]),
  );
  const securityGroup = runnerNetwork(c, names);
  const task = taskDefinition(c, names, roles, {
    name: "backup-runner",
    environment: pulumi.all([c.region, c.bucket.bucket]).apply(([region, bucket]) => [
      { name: "DB_PLATFORM_STACK", value: c.stack },
      { name: "DB_PLATFORM_SERVER", value: c.server.spec.name },
      { name: "AWS_REGION", value: region },
      { name: "DB_PLATFORM_BACKUP_BUCKET", value: bucket },
      { name: "DB_PLATFORM_METRICS_NAMESPACE", value: BACKUP_METRICS.namespace },
    ]),
    secrets: c.services.map((s) => ({ name: loginEnvName(s.spec.name), valueFrom: s.readonlySecretArn })),
    streamPrefix: c.server.spec.name,
    cpu: "1024",
    memory: "2048",
  });
  scheduleTask(c, names, roles, task, securityGroup, {
    runSid: "RunBackupTask",
    description: `db-platform: logical backups of the services on ${c.server.spec.name}`,
    expression: c.spec.schedule,
    retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
  });
  statsPublisher(c, securityGroup);
}

/** A security group that reaches the server's PostgreSQL and HTTPS, and the server's rule letting it in. */
function runnerNetwork(c: RunnerContext, { prefix, id }: TaskNames): aws.ec2.SecurityGroup {
  const { server, tags } = c;
  const parent = { parent: c.parent };
  const network = server.spec.network;
  const securityGroup = new aws.ec2.SecurityGroup(
    `${prefix}-runner-sg`,
    {
      name: id,
      description: `db-platform ${id}: the backup runner; reaches its server and HTTPS only`,
      vpcId: network.vpcId,
      egress: [],
      tags,
    },
    parent,
  );
  new aws.vpc.SecurityGroupEgressRule(
    `${prefix}-runner-egress-postgres`,
    {
      securityGroupId: securityGroup.id,
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: server.securityGroupId,
      description: "PostgreSQL to its server",
      tags,
    },
    parent,
  );
  new aws.vpc.SecurityGroupEgressRule(
    `${prefix}-runner-egress-https`,
    {
      securityGroupId: securityGroup.id,
      ipProtocol: "tcp",
      fromPort: 443,
      toPort: 443,
      cidrIpv4: "0.0.0.0/0",
      description: "HTTPS to S3, Secrets Manager, ECR, CloudWatch (VPC endpoints or NAT)",
      tags,
    },
    parent,
  );
  new aws.vpc.SecurityGroupIngressRule(
    `${prefix}-ingress-backup-runner`,
    {
      securityGroupId: server.securityGroupId,
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: securityGroup.id,
      description: "PostgreSQL from the backup runner",
      tags,
    },
    parent,
  );
  return securityGroup;
}
