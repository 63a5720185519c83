/**
 * One CloudWatch dashboard per RDS server (docs/stats.md, "On AWS"): the RDS metrics of the
 * primary and its replicas (CPU, connections, free storage, I/O latency, replica lag) next to the
 * per-service metrics the publisher task sends (connections, their share of each service's
 * limits, estimated p95 statement time, queries per second, slow calls, sessions idle in a
 * transaction), with the alarms' thresholds drawn in. Without the publisher (a stack without
 * `backups.storage: s3`) the dashboard says so and shows the RDS metrics only.
 */
import * as aws from "@pulumi/aws";
import { awsServerName, type MonitoringSpec, type RdsServerSpec, type ServiceSpec } from "../spec";
import { SERVICE_METRICS } from "../spec/defaults";
import { proxyEndpointName } from "../spec/naming";
import type { RdsServer } from "./rds";

type Metric = Array<string | Record<string, string>>;

interface Widget {
  readonly type: "metric" | "text";
  readonly width: number;
  readonly height: number;
  readonly properties: Record<string, unknown>;
}

export interface DashboardArgs {
  readonly environment: string;
  /** The services on the server. */
  readonly services: readonly ServiceSpec[];
  /** The publisher's schedule; undefined when the stack has none (no per-service metrics). */
  readonly monitoring?: MonitoringSpec;
}

export function dashboardName(environment: string, server: string): string {
  return `db-platform-${awsServerName(environment, server)}`;
}

export function serverDashboard(server: RdsServer, args: DashboardArgs): aws.cloudwatch.Dashboard {
  const { spec } = server;
  return new aws.cloudwatch.Dashboard(
    `${spec.name}-dashboard`,
    { dashboardName: dashboardName(args.environment, spec.name), dashboardBody: JSON.stringify(dashboardBody(spec, args)) },
    { parent: server },
  );
}

/** The dashboard's JSON body: widgets in rows of two, placed left to right. */
export function dashboardBody(spec: RdsServerSpec, args: DashboardArgs): { widgets: Array<Widget & { x: number; y: number }> } {
  const widgets = [header(spec, args), ...rdsWidgets(spec, args.environment), ...proxyWidgets(spec, args), ...serviceWidgets(spec, args)];
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return {
    widgets: widgets.map((w) => {
      if (x + w.width > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      const placed = { ...w, x, y };
      x += w.width;
      rowHeight = Math.max(rowHeight, w.height);
      return placed;
    }),
  };
}

function header(spec: RdsServerSpec, args: DashboardArgs): Widget {
  const id = awsServerName(args.environment, spec.name);
  const services = args.services.map((s) => s.name).join(", ") || "none";
  const perService = args.monitoring
    ? `Per-service metrics: published every ${args.monitoring.intervalSeconds / 60} min over a ${args.monitoring.windowSeconds} s window (${SERVICE_METRICS.namespace}); latency percentiles are estimates from pg_stat_statements.`
    : "No per-service metrics: the publisher runs on the backup runner (backups.storage s3). `db-platform stats --stack … --server-url …` reads them live.";
  return {
    type: "text",
    width: 24,
    height: 2,
    properties: { markdown: `## ${id} — PostgreSQL ${spec.version}, services: ${services}\n${perService}` },
  };
}

function metricWidget(title: string, region: string, metrics: Metric[], extra: Record<string, unknown> = {}): Widget {
  return {
    type: "metric",
    width: 12,
    height: 6,
    properties: { title, region, view: "timeSeries", stacked: false, metrics, ...extra },
  };
}

const threshold = (label: string, value: number) => ({ horizontal: [{ label, value }] });

function rdsWidgets(spec: RdsServerSpec, environment: string): Widget[] {
  const primary = awsServerName(environment, spec.name);
  const instances = [
    { id: primary, label: spec.name, region: spec.region },
    ...spec.replicas.map((r) => ({ id: awsServerName(environment, r.name), label: r.name, region: r.region })),
  ];
  const rds = (metric: string, list = instances): Metric[] =>
    list.map((i): Metric => [
      "AWS/RDS",
      metric,
      "DBInstanceIdentifier",
      i.id,
      i.region === spec.region ? { label: i.label } : { label: i.label, region: i.region },
    ]);
  const replicas = instances.slice(1);
  const widgets = [
    metricWidget("CPU (%)", spec.region, rds("CPUUtilization"), {
      stat: "Average",
      period: 300,
      annotations: threshold("alarm", spec.alarms.cpuPercent),
    }),
    metricWidget("Connections (server)", spec.region, rds("DatabaseConnections"), {
      stat: "Maximum",
      period: 300,
      annotations: threshold("alarm", spec.alarms.connections),
    }),
    metricWidget("Free storage (bytes)", spec.region, rds("FreeStorageSpace"), { stat: "Minimum", period: 300 }),
    metricWidget(
      "I/O latency (s)",
      spec.region,
      [...rds("ReadLatency", instances.slice(0, 1)), ...rds("WriteLatency", instances.slice(0, 1))],
      {
        stat: "Average",
        period: 300,
      },
    ),
  ];
  if (replicas.length > 0) {
    widgets.push(
      metricWidget("Replica lag (s)", spec.region, rds("ReplicaLag", replicas), {
        stat: "Maximum",
        period: 60,
        annotations: threshold("alarm", spec.alarms.replicaLagSeconds),
      }),
    );
  }
  return widgets;
}

/**
 * RDS Proxy, where pooled services use one: clients against server connections, and how long
 * each pooled service's clients waited for one, on the service's own endpoint (its alarm's
 * metric).
 */
function proxyWidgets(spec: RdsServerSpec, args: DashboardArgs): Widget[] {
  const pooled = args.services.filter((s) => s.pool);
  if (!spec.pooler || pooled.length === 0) return [];
  const proxy = awsServerName(args.environment, spec.name);
  const metric = (name: string, label: string): Metric => ["AWS/RDS", name, "ProxyName", proxy, { label }];
  return [
    metricWidget(
      "RDS Proxy: clients and server connections",
      spec.region,
      [
        metric("ClientConnections", "client connections"),
        metric("DatabaseConnections", "server connections"),
        metric("DatabaseConnectionsCurrentlyBorrowed", "borrowed"),
        metric("DatabaseConnectionsCurrentlySessionPinned", "pinned to a session"),
      ],
      { stat: "Maximum", period: 60 },
    ),
    metricWidget(
      "RDS Proxy: wait for a server connection per service (µs, p99)",
      spec.region,
      pooled.map((s) => [
        "AWS/RDS",
        "DatabaseConnectionsBorrowLatency",
        "ProxyName",
        proxy,
        "EndpointName",
        proxyEndpointName(proxy, s.name),
        { label: s.name },
      ]),
      {
        stat: "p99",
        period: 300,
        annotations: threshold("alarm", spec.pooler.waitAlarmMs * 1000),
      },
    ),
  ];
}

function serviceWidgets(spec: RdsServerSpec, args: DashboardArgs): Widget[] {
  if (!args.monitoring || args.services.length === 0) return [];
  const period = args.monitoring.intervalSeconds;
  const per = (metric: string): Metric[] =>
    args.services.map((s) => [
      SERVICE_METRICS.namespace,
      metric,
      "Environment",
      args.environment,
      "Server",
      spec.name,
      "Service",
      s.name,
      { label: s.name },
    ]);
  const w = (title: string, metric: string, extra: Record<string, unknown> = {}) =>
    metricWidget(title, spec.region, per(metric), { stat: "Maximum", period, ...extra });
  return [
    w("Connections by service", SERVICE_METRICS.connections),
    w("Connections, % of the service's login limits", SERVICE_METRICS.saturation, {
      annotations: threshold("alarm (server default)", spec.alarms.serviceConnectionsPercent),
      yAxis: { left: { min: 0, max: 100 } },
    }),
    w("p95 statement time by service (ms, estimated)", SERVICE_METRICS.p95Ms, {
      annotations: threshold("alarm (server default)", spec.alarms.serviceP95Ms),
    }),
    w("Queries per second by service", SERVICE_METRICS.queriesPerSecond, { stat: "Average" }),
    w("Slow calls by service (statements with mean > 100 ms)", SERVICE_METRICS.slowCalls, { stat: "Sum" }),
    w("Sessions idle in a transaction by service", SERVICE_METRICS.idleInTransaction),
  ];
}
