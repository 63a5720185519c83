/**
 * One RDS server's per-service metrics publisher (docs/stats.md, "On AWS"): a small Fargate task
 * on the backup runner's image, started by its own schedule (`monitoring.schedule`), that runs
 * bin/stats-task.js — two snapshots of the server `monitoring.windowSeconds` apart as the
 * monitoring login, the same numbers as `db-platform stats --since` — and publishes each
 * service's connections, saturation, rate and latency to CloudWatch. It reads the monitoring
 * login's secret and nothing else, may publish only to its namespace, and runs in the backup
 * runner's security group (its server and HTTPS). Alarms: per service on connection saturation
 * and p95 latency (thresholds from config), per server when the publisher stops publishing.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { awsServerName, type ServiceSpec } from "../spec";
import { SERVICE_METRICS } from "../spec/defaults";
import type { RunnerContext } from "./runner";
import { scheduleTask, type TaskNames, taskDefinition, taskRoles } from "./tasks";

export function publisherNames(name: string, environment: string, server: string): TaskNames {
  return { prefix: `${name}-${server}-stats`, id: `${awsServerName(environment, server)}-stats` };
}

/** The sum of a service's logins' connection limits; undefined when one is unlimited (no saturation to measure). */
export function connectionCapacity(service: ServiceSpec): number | undefined {
  const limits = service.logins.map((l) => l.connectionLimit);
  return limits.some((l) => l < 0) ? undefined : limits.reduce((n, l) => n + l, 0);
}

export function statsPublisher(c: RunnerContext, securityGroup: aws.ec2.SecurityGroup): void {
  const server = c.server.spec.name;
  const names = publisherNames(c.name, c.environment, server);
  const roles = taskRoles(
    c,
    names,
    { sid: "ReadMonitoringLogin", arns: [c.monitorSecretArn] },
    pulumi.output([
      {
        Sid: "PublishServiceMetrics",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": SERVICE_METRICS.namespace } },
      },
    ]),
  );
  // Replicas in the server's region share its security group, so the task reaches them too.
  const replicas = c.server.spec.replicas
    .filter((r) => !r.crossRegion)
    .map((r) => ({ name: r.name, ...c.server.replicaEndpoints[r.name] }));
  const task = taskDefinition(c, names, roles, {
    name: "stats-publisher",
    entryPoint: ["node", "bin/stats-task.js"],
    environment: pulumi.all([c.region, pulumi.all(replicas.map((r) => pulumi.all([r.host, r.port])))]).apply(([region, endpoints]) => [
      { name: "DB_PLATFORM_STACK", value: c.stack },
      { name: "DB_PLATFORM_SERVER", value: server },
      { name: "AWS_REGION", value: region },
      { name: "DB_PLATFORM_METRICS_NAMESPACE", value: SERVICE_METRICS.namespace },
      { name: "DB_PLATFORM_STATS_WINDOW", value: String(c.monitoring.windowSeconds) },
      {
        name: "DB_PLATFORM_REPLICA_HOSTS",
        value: JSON.stringify(Object.fromEntries(endpoints.map(([host, port], i) => [replicas[i].name, { host, port }]))),
      },
    ]),
    secrets: [{ name: "DB_PLATFORM_MONITOR_LOGIN", valueFrom: c.monitorSecretArn }],
    streamPrefix: `${server}-stats`,
    cpu: "256",
    memory: "512",
  });
  scheduleTask(c, names, roles, task, securityGroup, {
    runSid: "RunStatsPublisher",
    description: `db-platform: per-service metrics of ${server} to CloudWatch ${SERVICE_METRICS.namespace}`,
    expression: c.monitoring.schedule,
    // A missed run is a gap in the metrics, not worth a late one.
    retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
  });
  publisherAlarms(c, names);
}

/** Per service: connections over their share of the logins' limits, p95 over its threshold; per server: no run published. */
function publisherAlarms(c: RunnerContext, { prefix, id }: TaskNames): void {
  const server = c.server.spec.name;
  const period = c.monitoring.intervalSeconds;
  const actions = [c.server.alarmTopic.arn];
  const common = { namespace: SERVICE_METRICS.namespace, period, alarmActions: actions, okActions: actions, tags: c.tags };
  const alarm = (resource: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, keyof typeof common>) =>
    new aws.cloudwatch.MetricAlarm(resource, { ...common, ...args }, { parent: c.parent });
  alarm(`${prefix}-stopped`, {
    name: `${id}-publisher-stopped`,
    alarmDescription: `${server}: no per-service metrics published for ${3 * period} s (see the publisher task's logs)`,
    metricName: SERVICE_METRICS.published,
    dimensions: { Environment: c.environment, Server: server },
    statistic: "Sum",
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    comparisonOperator: "LessThanThreshold",
    threshold: 1,
    treatMissingData: "breaching",
  });
  for (const { spec } of c.services) {
    const thresholds = spec.alarms;
    if (!thresholds) continue;
    const dimensions = { Environment: c.environment, Server: server, Service: spec.name };
    const capacity = connectionCapacity(spec);
    if (capacity !== undefined) {
      alarm(`${prefix}-${spec.name}-connection-saturation`, {
        name: `db-platform-${c.environment}-${spec.name}-connection-saturation`,
        alarmDescription: `${spec.name}: connections above ${thresholds.connectionsPercent}% of its logins' limits (${capacity}) in two runs in a row`,
        metricName: SERVICE_METRICS.saturation,
        dimensions,
        statistic: "Maximum",
        evaluationPeriods: 2,
        datapointsToAlarm: 2,
        comparisonOperator: "GreaterThanThreshold",
        threshold: thresholds.connectionsPercent,
        // A publisher that stopped has its own alarm.
        treatMissingData: "missing",
      });
    }
    alarm(`${prefix}-${spec.name}-p95-latency`, {
      name: `db-platform-${c.environment}-${spec.name}-p95-latency`,
      alarmDescription: `${spec.name}: estimated p95 statement time above ${thresholds.p95Ms} ms in two of three runs`,
      metricName: SERVICE_METRICS.p95Ms,
      dimensions,
      statistic: "Maximum",
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      comparisonOperator: "GreaterThanThreshold",
      threshold: thresholds.p95Ms,
      // A service that ran no statement in a window has no latency.
      treatMissingData: "notBreaching",
    });
  }
}
