/**
 * One RDS server's backup runner (see backups.ts): the task's IAM roles, a security group that
 * reaches only its server and HTTPS, the Fargate task definition running the image's backup task
 * (bin/backup-task.js: `db-platform backup run --server <server>` without the CLI), and the
 * EventBridge Scheduler schedule that starts it.
 */
import * as aws from "@pulumi/aws";
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RdsServer } from "../servers/rds";
import type { BackupsSpec, ServiceSpec } from "../spec";
import { awsServerName, loginEnvName } from "../spec";
import { BACKUP_METRICS } from "../spec/defaults";

export const policyDocument = (statements: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });

export interface BackedUpService {
  readonly spec: ServiceSpec;
  /** ARN of the service's read-only login secret (Secrets Manager, RDS secret JSON). */
  readonly readonlySecretArn: pulumi.Output<string>;
}

/** What a server's runner uses of the Backups component, and the server with its services. */
export interface RunnerContext {
  /** The Backups component's name: resource names start with `<name>-<server>`. */
  readonly name: string;
  readonly parent: pulumi.Resource;
  readonly spec: BackupsSpec;
  readonly environment: string;
  readonly stack: string;
  readonly bucket: aws.s3.Bucket;
  readonly key: aws.kms.Key;
  readonly repository: aws.ecr.Repository;
  readonly images: Readonly<Record<string, docker.Image>>;
  readonly cluster: aws.ecs.Cluster;
  readonly region: pulumi.Output<string>;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly schedulerRole: aws.iam.Role;
  readonly server: RdsServer;
  readonly services: readonly BackedUpService[];
  readonly tags: Record<string, string>;
}

interface Names {
  /** Resource name prefix. */
  readonly prefix: string;
  /** AWS name of the runner's resources. */
  readonly id: string;
}

interface TaskRoles {
  readonly executionRole: aws.iam.Role;
  readonly taskRole: aws.iam.Role;
}

export function runnerNames(name: string, environment: string, server: string): Names {
  return { prefix: `${name}-${server}`, id: `${awsServerName(environment, server)}-backup` };
}

/** The runner of one server; returns nothing, its resources are children of `c.parent`. */
export function serverRunner(c: RunnerContext): void {
  const names = runnerNames(c.name, c.environment, c.server.spec.name);
  const roles = taskRoles(c, names);
  const securityGroup = runnerNetwork(c, names);
  const taskDefinition = runnerTask(c, names, roles);
  runnerSchedule(c, names, roles, taskDefinition, securityGroup);
}

/** The execution role (pull the image, read the services' read-only logins, write logs) and the task role (its services' prefixes only). */
function taskRoles(c: RunnerContext, { prefix, id }: Names): TaskRoles {
  const { server, services, environment, tags } = c;
  const parent = { parent: c.parent };
  const taskAssume = policyDocument([{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }]);

  const executionRole = new aws.iam.Role(
    `${prefix}-execution-role`,
    { name: `${id}-execution`, assumeRolePolicy: taskAssume, tags },
    parent,
  );
  new aws.iam.RolePolicy(
    `${prefix}-execution-policy`,
    {
      role: executionRole.id,
      policy: pulumi
        .all([c.repository.arn, c.logGroup.arn, server.kmsKeyArn, c.key.arn, ...services.map((s) => s.readonlySecretArn)])
        .apply(([repository, logGroup, serverKey, backupKey, ...secrets]) =>
          policyDocument([
            {
              Sid: "PullRunnerImage",
              Effect: "Allow",
              Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
              Resource: repository,
            },
            { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
            { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${logGroup}:*` },
            { Sid: "ReadBackupLogins", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: secrets },
            { Sid: "DecryptLoginsAndImage", Effect: "Allow", Action: "kms:Decrypt", Resource: [serverKey, backupKey] },
          ]),
        ),
    },
    parent,
  );

  const taskRole = new aws.iam.Role(`${prefix}-task-role`, { name: `${id}-task`, assumeRolePolicy: taskAssume, tags }, parent);
  const prefixes = services.map((s) => `${environment}/${s.spec.name}/`);
  new aws.iam.RolePolicy(
    `${prefix}-task-policy`,
    {
      role: taskRole.id,
      policy: pulumi.all([c.bucket.arn, c.key.arn]).apply(([bucket, key]) =>
        policyDocument([
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
      ),
    },
    parent,
  );
  return { executionRole, taskRole };
}

/** A security group that reaches the server's PostgreSQL and HTTPS, and the server's rule letting it in. */
function runnerNetwork(c: RunnerContext, { prefix, id }: Names): aws.ec2.SecurityGroup {
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

/** The Fargate task definition: the runner image of the server's major, its logins as secrets, a read-only root. */
function runnerTask(c: RunnerContext, { prefix, id }: Names, { executionRole, taskRole }: TaskRoles): aws.ecs.TaskDefinition {
  const { server, services, tags } = c;
  const parent = { parent: c.parent };
  const image = c.images[server.spec.version];
  const containerDefinitions = pulumi
    .all([image.repoDigest, c.logGroup.name, c.region, c.bucket.bucket, ...services.map((s) => s.readonlySecretArn)])
    .apply(([digest, logGroup, region, bucket, ...secrets]) =>
      JSON.stringify([
        {
          name: "backup-runner",
          image: digest,
          essential: true,
          environment: [
            { name: "DB_PLATFORM_STACK", value: c.stack },
            { name: "DB_PLATFORM_SERVER", value: server.spec.name },
            { name: "AWS_REGION", value: region },
            { name: "DB_PLATFORM_BACKUP_BUCKET", value: bucket },
            { name: "DB_PLATFORM_METRICS_NAMESPACE", value: BACKUP_METRICS.namespace },
          ],
          secrets: services.map((s, i) => ({ name: loginEnvName(s.spec.name), valueFrom: secrets[i] })),
          // Nothing is written but /tmp (tsx's compile cache), a task-local scratch volume.
          readonlyRootFilesystem: true,
          mountPoints: [{ sourceVolume: "tmp", containerPath: "/tmp", readOnly: false }],
          user: "node",
          logConfiguration: {
            logDriver: "awslogs",
            options: { "awslogs-group": logGroup, "awslogs-region": region, "awslogs-stream-prefix": server.spec.name },
          },
        },
      ]),
    );
  const taskDefinition = new aws.ecs.TaskDefinition(
    `${prefix}-task`,
    {
      family: id,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "1024",
      memory: "2048",
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
      executionRoleArn: executionRole.arn,
      taskRoleArn: taskRole.arn,
      containerDefinitions,
      volumes: [{ name: "tmp" }],
      tags,
    },
    parent,
  );
  return taskDefinition;
}

/** The schedule that runs the task, and the scheduler's right to run exactly that task. */
function runnerSchedule(
  c: RunnerContext,
  { prefix, id }: Names,
  { executionRole, taskRole }: TaskRoles,
  taskDefinition: aws.ecs.TaskDefinition,
  securityGroup: aws.ec2.SecurityGroup,
): void {
  const { server, spec } = c;
  const parent = { parent: c.parent };
  const network = server.spec.network;
  new aws.iam.RolePolicy(
    `${prefix}-scheduler-policy`,
    {
      role: c.schedulerRole.id,
      policy: pulumi
        .all([taskDefinition.arnWithoutRevision, c.cluster.arn, executionRole.arn, taskRole.arn])
        .apply(([task, cluster, exec, role]) =>
          policyDocument([
            {
              Sid: "RunBackupTask",
              Effect: "Allow",
              Action: "ecs:RunTask",
              Resource: `${task}:*`,
              Condition: { ArnEquals: { "ecs:cluster": cluster } },
            },
            {
              Sid: "PassTaskRoles",
              Effect: "Allow",
              Action: "iam:PassRole",
              Resource: [exec, role],
              Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
            },
          ]),
        ),
    },
    parent,
  );
  new aws.scheduler.Schedule(
    `${prefix}-schedule`,
    {
      name: id,
      description: `db-platform: logical backups of the services on ${server.spec.name}`,
      scheduleExpression: spec.schedule,
      scheduleExpressionTimezone: "UTC",
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: c.cluster.arn,
        roleArn: c.schedulerRole.arn,
        ecsParameters: {
          taskDefinitionArn: taskDefinition.arnWithoutRevision,
          launchType: "FARGATE",
          taskCount: 1,
          networkConfiguration: { subnets: [...network.subnetIds], securityGroups: [securityGroup.id], assignPublicIp: false },
        },
        retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
      },
    },
    parent,
  );
}
