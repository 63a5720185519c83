/**
 * Building blocks of a server's scheduled Fargate tasks on the runner image (the backup runner,
 * runner.ts, and the per-service metrics publisher, statsPublisher.ts): an execution role that
 * pulls the image, writes the logs and reads exactly the given login secrets; a task role with
 * the given statements; a task definition with a read-only root; an EventBridge Scheduler
 * schedule allowed to run exactly that task. Resource names start with the given prefix.
 */
import * as aws from "@pulumi/aws";
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { RdsServer } from "../servers/rds";

export const policyDocument = (statements: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });

/** What a server's tasks use of the Backups component. */
export interface TaskHost {
  readonly parent: pulumi.Resource;
  readonly stack: string;
  readonly key: aws.kms.Key;
  readonly repository: aws.ecr.Repository;
  readonly images: Readonly<Record<string, docker.Image>>;
  readonly cluster: aws.ecs.Cluster;
  readonly region: pulumi.Output<string>;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly schedulerRole: aws.iam.Role;
  readonly server: RdsServer;
  readonly tags: Record<string, string>;
}

/** One task's names: resources `<prefix>-…`, AWS names `<id>-…`. */
export interface TaskNames {
  readonly prefix: string;
  readonly id: string;
}

export interface TaskRoles {
  readonly executionRole: aws.iam.Role;
  readonly taskRole: aws.iam.Role;
}

const taskAssume = policyDocument([{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }]);

/** The execution role: pull the image, write logs, read exactly `secrets` (statement `secretsSid`), decrypt them and the image. */
export function taskRoles(
  c: TaskHost,
  { prefix, id }: TaskNames,
  secrets: { readonly sid: string; readonly arns: ReadonlyArray<pulumi.Output<string>> },
  taskStatements: pulumi.Output<unknown[]>,
): TaskRoles {
  const parent = { parent: c.parent };
  const executionRole = new aws.iam.Role(
    `${prefix}-execution-role`,
    { name: `${id}-execution`, assumeRolePolicy: taskAssume, tags: c.tags },
    parent,
  );
  new aws.iam.RolePolicy(
    `${prefix}-execution-policy`,
    {
      role: executionRole.id,
      policy: pulumi
        .all([c.repository.arn, c.logGroup.arn, c.server.kmsKeyArn, c.key.arn, ...secrets.arns])
        .apply(([repository, logGroup, serverKey, backupKey, ...arns]) =>
          policyDocument([
            {
              Sid: "PullRunnerImage",
              Effect: "Allow",
              Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
              Resource: repository,
            },
            { Sid: "EcrLogin", Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" },
            { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${logGroup}:*` },
            { Sid: secrets.sid, Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: arns },
            { Sid: "DecryptLoginsAndImage", Effect: "Allow", Action: "kms:Decrypt", Resource: [serverKey, backupKey] },
          ]),
        ),
    },
    parent,
  );
  const taskRole = new aws.iam.Role(`${prefix}-task-role`, { name: `${id}-task`, assumeRolePolicy: taskAssume, tags: c.tags }, parent);
  new aws.iam.RolePolicy(`${prefix}-task-policy`, { role: taskRole.id, policy: taskStatements.apply((s) => policyDocument(s)) }, parent);
  return { executionRole, taskRole };
}

export interface ContainerSpec {
  readonly name: string;
  /** Overrides the image's entrypoint (the backup task). */
  readonly entryPoint?: readonly string[];
  readonly environment: pulumi.Output<ReadonlyArray<{ name: string; value: string }>>;
  readonly secrets: ReadonlyArray<{ readonly name: string; readonly valueFrom: pulumi.Output<string> }>;
  readonly streamPrefix: string;
  readonly cpu: string;
  readonly memory: string;
}

/** The Fargate task definition: the runner image of the server's major, as `node`, a read-only root. */
export function taskDefinition(c: TaskHost, { prefix, id }: TaskNames, roles: TaskRoles, spec: ContainerSpec): aws.ecs.TaskDefinition {
  const image = c.images[c.server.spec.version];
  const containerDefinitions = pulumi
    .all([pulumi.all([image.repoDigest, c.logGroup.name, c.region]), spec.environment, pulumi.all(spec.secrets.map((s) => s.valueFrom))])
    .apply(([[digest, logGroup, region], environment, secretArns]) =>
      JSON.stringify([
        {
          name: spec.name,
          image: digest,
          essential: true,
          ...(spec.entryPoint ? { entryPoint: spec.entryPoint } : {}),
          environment,
          secrets: spec.secrets.map((s, i) => ({ name: s.name, valueFrom: secretArns[i] })),
          // Nothing is written but /tmp (tsx's compile cache), a task-local scratch volume.
          readonlyRootFilesystem: true,
          mountPoints: [{ sourceVolume: "tmp", containerPath: "/tmp", readOnly: false }],
          user: "node",
          logConfiguration: {
            logDriver: "awslogs",
            options: { "awslogs-group": logGroup, "awslogs-region": region, "awslogs-stream-prefix": spec.streamPrefix },
          },
        },
      ]),
    );
  return new aws.ecs.TaskDefinition(
    `${prefix}-task`,
    {
      family: id,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: spec.cpu,
      memory: spec.memory,
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
      executionRoleArn: roles.executionRole.arn,
      taskRoleArn: roles.taskRole.arn,
      containerDefinitions,
      volumes: [{ name: "tmp" }],
      tags: c.tags,
    },
    { parent: c.parent },
  );
}

export interface ScheduleSpec {
  /** Sid of the scheduler's statement that may run the task. */
  readonly runSid: string;
  readonly description: string;
  readonly expression: string;
  readonly retryPolicy: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number };
}

/** The schedule that runs the task in the server's private subnets, and the scheduler's right to run exactly that task. */
export function scheduleTask(
  c: TaskHost,
  { prefix, id }: TaskNames,
  roles: TaskRoles,
  task: aws.ecs.TaskDefinition,
  securityGroup: aws.ec2.SecurityGroup,
  spec: ScheduleSpec,
): void {
  const parent = { parent: c.parent };
  const network = c.server.spec.network;
  new aws.iam.RolePolicy(
    `${prefix}-scheduler-policy`,
    {
      role: c.schedulerRole.id,
      policy: pulumi
        .all([task.arnWithoutRevision, c.cluster.arn, roles.executionRole.arn, roles.taskRole.arn])
        .apply(([taskArn, cluster, exec, role]) =>
          policyDocument([
            {
              Sid: spec.runSid,
              Effect: "Allow",
              Action: "ecs:RunTask",
              Resource: `${taskArn}:*`,
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
      description: spec.description,
      scheduleExpression: spec.expression,
      scheduleExpressionTimezone: "UTC",
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      // The schedule's target and input at rest under the backups' key, not AWS's.
      kmsKeyArn: c.key.arn,
      target: {
        arn: c.cluster.arn,
        roleArn: c.schedulerRole.arn,
        ecsParameters: {
          taskDefinitionArn: task.arnWithoutRevision,
          launchType: "FARGATE",
          taskCount: 1,
          networkConfiguration: { subnets: [...network.subnetIds], securityGroups: [securityGroup.id], assignPublicIp: false },
        },
        retryPolicy: spec.retryPolicy,
      },
    },
    parent,
  );
}
