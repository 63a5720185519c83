/**
 * Per-service observability on AWS under the SDK's mocks, input by input: each RDS server's
 * monitoring login secret, the metrics publisher (a second scheduled Fargate task on the runner
 * image, least privilege), the per-service alarms with their thresholds from config, the
 * publisher-stopped alarm, and the server's dashboard (RDS metrics of the primary and its
 * replicas, per-service metrics). Plus the config rules of `monitoring` and `services.*.alarms`.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { formatProblem, validateConfig } from "../../components/spec";
import { changed, devValues, input, prodValues, servers, services, type Values } from "../helpers/config";
import { check, summary } from "../helpers/policy";
import { type Resources, synthInput, T } from "../helpers/synth";

const TYPES = {
  task: "aws:ecs/taskDefinition:TaskDefinition",
  schedule: "aws:scheduler/schedule:Schedule",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  dashboard: "aws:cloudwatch/dashboard:Dashboard",
} as const;
const ACCOUNT = "000000000000";
const arn = (name: string, region = "eu-central-1") => `arn:aws:synth:${region}:${ACCOUNT}:${name}`;
const statements = (policy: unknown) => (JSON.parse(String(policy)) as { Statement: Array<Record<string, unknown>> }).Statement;

/** prod with a same-region reader and a cross-region replica on main, a service with its own thresholds, one with an unlimited login. */
const prodMonitored = () =>
  changed(prodValues(), (v) => {
    servers(v).main.replicas = [
      { name: "main-ro-1" },
      { name: "main-dr", region: "eu-west-1", network: { vpcId: "vpc-w", subnetIds: ["subnet-w1", "subnet-w2"] } },
    ];
    servers(v).main.alarms = { serviceConnectionsPercent: 70 };
    services(v).inventory.alarms = { p95Ms: 120 };
    services(v).studio.connectionLimit = -1;
    v.monitoring = { schedule: "rate(10 minutes)", windowSeconds: 90 };
  });

let prod: Resources;
beforeAll(async () => {
  prod = await synthInput(input(prodMonitored()), "prod");
});

const container = (name: string) =>
  (JSON.parse(String(prod.one(TYPES.task, name).props.containerDefinitions)) as Array<Record<string, unknown>>)[0];

describe("the monitoring login's secret", () => {
  it("holds the login of each RDS server in the RDS secret shape, under the server's key", async () => {
    for (const server of ["main", "studio"]) {
      expect(prod.one(T.secret, `${server}-monitor-secret`).props).toMatchObject({
        name: `db-platform/prod/servers/${server}/monitor`,
        kmsKeyId: `arn:aws:kms:eu-central-1:${ACCOUNT}:key/${server}-key`,
        recoveryWindowInDays: 30,
      });
      const version = prod.one(T.secretVersion, `${server}-monitor-secret-version`).props;
      expect(version.secretId).toBe(`${server}-monitor-secret-id`);
      // The login's JSON (host, port, username db_platform_monitor, password) is a secret: the mocks show no more.
      expect(version.secretString).toBe("[secret]");
    }
  });
});

describe("the publisher task of each RDS server", () => {
  it("runs bin/stats-task.js on the server's runner image with its stack, server, window and same-region replicas", () => {
    expect(prod.one(TYPES.task, "backups-main-stats-task").props).toMatchObject({
      family: "prod-main-stats",
      requiresCompatibilities: ["FARGATE"],
      cpu: "256",
      memory: "512",
    });
    const main = container("backups-main-stats-task");
    expect(main.image).toBe(`${ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/db-platform/prod/backup-runner@sha256:synth`);
    expect(main.entryPoint).toEqual(["node", "bin/stats-task.js"]);
    const env = Object.fromEntries((main.environment as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
    expect(env).toEqual({
      DB_PLATFORM_STACK: "prod",
      DB_PLATFORM_SERVER: "main",
      AWS_REGION: "eu-central-1",
      DB_PLATFORM_METRICS_NAMESPACE: "DbPlatform/Services",
      DB_PLATFORM_STATS_WINDOW: "90",
      // The reader in the server's region; the DR replica in eu-west-1 is out of the task's network.
      DB_PLATFORM_REPLICA_HOSTS: JSON.stringify({ "main-ro-1": { host: "prod-main-ro-1.synth.rds.invalid", port: 5432 } }),
    });
    // The monitoring login only: no service login, never the master secret.
    expect(main.secrets).toEqual([{ name: "DB_PLATFORM_MONITOR_LOGIN", valueFrom: arn("main-monitor-secret") }]);
    expect(main).toMatchObject({ readonlyRootFilesystem: true, user: "node" });
    // studio has no replica.
    expect(container("backups-studio-stats-task").environment).toContainEqual({ name: "DB_PLATFORM_REPLICA_HOSTS", value: "{}" });
  });

  it("reads only the monitoring login's secret and may publish only to its namespace", () => {
    const exec = statements(prod.one(TYPES.rolePolicy, "backups-main-stats-execution-policy").props.policy);
    expect(exec.find((s) => s.Sid === "ReadMonitoringLogin")).toEqual({
      Sid: "ReadMonitoringLogin",
      Effect: "Allow",
      Action: "secretsmanager:GetSecretValue",
      Resource: [arn("main-monitor-secret")],
    });
    expect(statements(prod.one(TYPES.rolePolicy, "backups-main-stats-task-policy").props.policy)).toEqual([
      {
        Sid: "PublishServiceMetrics",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": "DbPlatform/Services" } },
      },
    ]);
    const scheduler = statements(prod.one(TYPES.rolePolicy, "backups-main-stats-scheduler-policy").props.policy);
    expect(scheduler[0]).toMatchObject({
      Sid: "RunStatsPublisher",
      Action: "ecs:RunTask",
      Resource: `arn:aws:ecs:eu-central-1:${ACCOUNT}:task-definition/prod-main-stats:*`,
    });
  });

  it("runs on monitoring.schedule in the runner's security group, without a public IP, never retried late", () => {
    expect(prod.one(TYPES.schedule, "backups-main-stats-schedule").props).toMatchObject({
      name: "prod-main-stats",
      scheduleExpression: "rate(10 minutes)",
      target: {
        ecsParameters: {
          taskDefinitionArn: `arn:aws:ecs:eu-central-1:${ACCOUNT}:task-definition/prod-main-stats`,
          networkConfiguration: { subnets: ["subnet-a", "subnet-b"], securityGroups: ["backups-main-runner-sg-id"], assignPublicIp: false },
        },
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
      },
    });
  });
});

describe("per-service alarms", () => {
  const alarm = (name: string) => prod.one(T.alarm, name).props;

  it("on connection saturation and p95 latency, thresholds from the service, else its server, else the defaults", () => {
    const common = { namespace: "DbPlatform/Services", period: 600, alarmActions: [arn("main-alarms")], okActions: [arn("main-alarms")] };
    expect(alarm("backups-main-stats-inventory-connection-saturation")).toMatchObject({
      ...common,
      name: "db-platform-prod-inventory-connection-saturation",
      metricName: "ConnectionSaturation",
      dimensions: { Environment: "prod", Server: "main", Service: "inventory" },
      statistic: "Maximum",
      comparisonOperator: "GreaterThanThreshold",
      threshold: 70, // main's serviceConnectionsPercent
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: "missing",
    });
    expect(alarm("backups-main-stats-inventory-p95-latency")).toMatchObject({
      ...common,
      name: "db-platform-prod-inventory-p95-latency",
      metricName: "LatencyP95",
      threshold: 120, // inventory's own
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: "notBreaching",
    });
    expect(alarm("backups-main-stats-payments-p95-latency").threshold).toBe(500); // main's default
    expect(alarm("backups-studio-stats-studio-p95-latency")).toMatchObject({ threshold: 500, alarmActions: [arn("studio-alarms")] });
  });

  it("has no saturation alarm for a service with an unlimited login (nothing to saturate)", () => {
    expect(prod.ofType(T.alarm).filter((a) => a.name.includes("studio-connection-saturation"))).toEqual([]);
  });

  it("alarms per server when the publisher stopped publishing (missing data breaches)", () => {
    expect(alarm("backups-main-stats-stopped")).toMatchObject({
      name: "prod-main-stats-publisher-stopped",
      metricName: "PublisherRuns",
      dimensions: { Environment: "prod", Server: "main" },
      statistic: "Sum",
      period: 600,
      evaluationPeriods: 3,
      comparisonOperator: "LessThanThreshold",
      threshold: 1,
      treatMissingData: "breaching",
    });
  });
});

interface Widget {
  type: string;
  x: number;
  y: number;
  width: number;
  properties: { title?: string; region?: string; markdown?: string; metrics?: unknown[][]; annotations?: unknown; period?: number };
}
const widgets = (r: Resources, server: string) =>
  (JSON.parse(String(r.one(TYPES.dashboard, `${server}-dashboard`).props.dashboardBody)) as { widgets: Widget[] }).widgets;
const titled = (list: Widget[], title: string) => list.find((w) => w.properties.title === title) as Widget;

describe("the dashboard of each RDS server", () => {
  it("is named per environment and server", () => {
    expect(prod.ofType(TYPES.dashboard).map((d) => [d.name, d.props.dashboardName])).toEqual([
      ["main-dashboard", "db-platform-prod-main"],
      ["studio-dashboard", "db-platform-prod-studio"],
    ]);
  });

  it("shows the RDS metrics of the primary and its replicas, the cross-region one from its region, with the alarms' thresholds", () => {
    const main = widgets(prod, "main");
    expect(titled(main, "CPU (%)").properties).toMatchObject({
      region: "eu-central-1",
      metrics: [
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "prod-main", { label: "main" }],
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "prod-main-ro-1", { label: "main-ro-1" }],
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "prod-main-dr", { label: "main-dr", region: "eu-west-1" }],
      ],
      annotations: { horizontal: [{ label: "alarm", value: 80 }] },
    });
    expect(titled(main, "Replica lag (s)").properties.metrics).toHaveLength(2);
    expect(titled(main, "Connections (server)").properties.annotations).toEqual({ horizontal: [{ label: "alarm", value: 200 }] });
    // studio has no replica: no lag widget.
    expect(titled(widgets(prod, "studio"), "Replica lag (s)")).toBeUndefined();
  });

  it("shows each service's connections, saturation, p95, rate, slow calls and idle transactions at the publisher's period", () => {
    const main = widgets(prod, "main");
    const perService = (title: string) => titled(main, title).properties;
    const saturation = perService("Connections, % of the service's login limits");
    expect(saturation.metrics).toEqual(
      ["inventory", "payments"].map((s) => [
        "DbPlatform/Services",
        "ConnectionSaturation",
        "Environment",
        "prod",
        "Server",
        "main",
        "Service",
        s,
        { label: s },
      ]),
    );
    expect(saturation).toMatchObject({ period: 600, annotations: { horizontal: [{ label: "alarm (server default)", value: 70 }] } });
    for (const title of [
      "Connections by service",
      "p95 statement time by service (ms, estimated)",
      "Queries per second by service",
      "Slow calls by service (statements with mean > 100 ms)",
      "Sessions idle in a transaction by service",
    ]) {
      expect(
        perService(title).metrics?.map((m) => m[7]),
        title,
      ).toEqual(["inventory", "payments"]);
    }
    // Laid out in rows of two, never overlapping, starting under the header.
    expect(main[0]).toMatchObject({ type: "text", x: 0, y: 0, width: 24 });
    const cells = main.slice(1).map((w) => `${w.x},${w.y}`);
    expect(new Set(cells).size).toBe(cells.length);
    expect(main.every((w) => w.x + w.width <= 24)).toBe(true);
  });

  it("without backups.storage s3 shows the RDS metrics only and says where per-service numbers come from; no publisher", async () => {
    const noBackups = await synthInput(
      input(
        changed(prodValues(), (v) => {
          v.environment = "staging";
          delete v.backups;
        }),
      ),
      "staging",
    );
    const main = widgets(noBackups, "main");
    expect(main[0].properties.markdown).toContain("No per-service metrics");
    expect(main.some((w) => JSON.stringify(w.properties.metrics ?? []).includes("DbPlatform/Services"))).toBe(false);
    expect(noBackups.ofType(TYPES.task)).toEqual([]);
    expect(noBackups.ofType(T.alarm).filter((a) => a.props.namespace === "DbPlatform/Services")).toEqual([]);
  });

  it("no dashboard, secret or publisher on a stack without RDS servers", async () => {
    const dev = await synthInput(input(devValues()), "dev");
    expect(dev.ofType(TYPES.dashboard)).toEqual([]);
    expect(dev.ofType(T.secret)).toEqual([]);
  });

  it("passes the policy pack", async () => {
    expect(summary(check(prod.all))).toEqual([]);
  });
});

function problemsOf(values: Values): string[] {
  const result = validateConfig(input(values));
  return result.ok ? [] : result.problems.map(formatProblem);
}

describe("config: monitoring and services.*.alarms", () => {
  it("accepts the monitored prod stack", () => {
    expect(problemsOf(prodMonitored())).toEqual([]);
  });

  const cases: Array<[string, (v: Values) => void, string]> = [
    [
      "monitoring on a stack without rds servers",
      (v) => {
        Object.assign(v, devValues());
        delete v.network;
        delete v.backups;
        v.monitoring = {};
      },
      "monitoring: only applies to stacks with rds servers (db-platform stats reads other servers directly)",
    ],
    [
      "monitoring without backups.storage s3",
      (v) => {
        v.environment = "staging";
        delete v.backups;
      },
      "monitoring: per-service metrics are published by a scheduled task on the backup runner's image and cluster: set backups.storage s3",
    ],
    [
      "a window that does not fit the schedule",
      (v) => (v.monitoring = { schedule: "rate(2 minutes)", windowSeconds: 60 }),
      "monitoring.windowSeconds: 60 s does not fit the schedule's 120 s with two minutes to start the task and publish: use a longer schedule or a shorter window",
    ],
    [
      "a schedule that is not a rate",
      (v) => (v.monitoring = { schedule: "cron(0 * * * ? *)" }),
      "monitoring.schedule: must be a rate such as rate(5 minutes)",
    ],
    [
      "a threshold out of range",
      (v) => (services(v).inventory.alarms = { connectionsPercent: 150 }),
      "services.inventory.alarms.connectionsPercent: Too big: expected number to be <=100",
    ],
    [
      "an unknown alarm key, with suggestion",
      (v) => (services(v).inventory.alarms = { p95ms: 100 }),
      'services.inventory.alarms.p95ms: unknown key (did you mean "p95Ms"?)',
    ],
  ];
  it.each(cases)("%s", (_, mutate, expected) => {
    expect(problemsOf(changed(prodMonitored(), mutate))).toContain(expected);
  });

  it("alarms on a service of a local server", () => {
    const v = changed(devValues(), (d) => (services(d).inventory.alarms = { p95Ms: 100 }));
    expect(problemsOf(v)).toEqual([
      "services.inventory.alarms: only applies to services on rds servers (local is local; db-platform stats reads it directly)",
    ]);
  });
});
