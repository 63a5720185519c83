/**
 * What the per-service metrics publisher tells CloudWatch after each run (docs/stats.md, "On
 * AWS"): per service of the server, over the run's sampled window, its connections and their
 * share of its logins' limits, queries per second, mean and estimated p95/p99 statement time,
 * slow calls and transaction ID age (dimensions Environment, Server, Service); per server, one
 * `PublisherRuns` data point, so that a publisher that stopped running raises an alarm. Latency is
 * sent only for a service that ran statements in the window: an idle service has no latency,
 * and its alarm treats the missing data as fine.
 */
import { SERVICE_METRICS as M } from "../../components/spec/defaults";
import type { MetricDatum } from "../cloudwatch";
import type { StatsReport } from "./model";

export function serviceMetricData(report: StatsReport, environment: string): MetricDatum[] {
  const data: MetricDatum[] = [];
  for (const window of report.servers) {
    const at = new Date(window.to);
    const datum = (dimensions: Record<string, string>, MetricName: string, Value: number, Unit: MetricDatum["Unit"]): MetricDatum => ({
      MetricName,
      Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      Value,
      Unit,
      Timestamp: at,
    });
    data.push(datum({ Environment: environment, Server: window.server }, M.published, 1, "Count"));
    for (const s of report.services.filter((x) => x.server === window.server)) {
      const dims = { Environment: environment, Server: s.server, Service: s.service };
      const { connections: c, queries: q } = s;
      data.push(
        datum(dims, M.connections, c.total, "Count"),
        datum(dims, M.idleInTransaction, c.idleInTransaction, "Count"),
        datum(dims, M.queriesPerSecond, q.perSecond, "Count/Second"),
        datum(dims, M.slowCalls, q.slowCalls, "Count"),
        datum(dims, M.xidAge, s.xidAge, "Count"),
      );
      if (c.limit !== null && c.limit > 0) data.push(datum(dims, M.saturation, (100 * c.total) / c.limit, "Percent"));
      if (q.calls > 0) {
        data.push(
          datum(dims, M.meanMs, q.meanMs, "Milliseconds"),
          datum(dims, M.p95Ms, q.p95Ms, "Milliseconds"),
          datum(dims, M.p99Ms, q.p99Ms, "Milliseconds"),
        );
      }
    }
  }
  return data;
}
