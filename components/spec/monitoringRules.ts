/**
 * Monitoring rules: the per-service metrics publisher (`monitoring`) and the services' alarm
 * thresholds (`services.<name>.alarms`) checked against the stack's servers and backups, and
 * built with their defaults. On AWS the publisher runs on the backup runner's image and cluster,
 * so per-service metrics and alarms need `backups.storage: s3`; other servers are read directly
 * by `db-platform stats`.
 */
import { MONITORING_DEFAULTS } from "./defaults";
import type { MonitoringSpec, ServerSpec, ServiceSpec } from "./model";
import type { Problem } from "./problems";
import type { RawBackups, RawMonitoring, RawServer, RawService } from "./schema";

/** `rate(5 minutes)` → 300. */
export function rateSeconds(schedule: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours)\)$/.exec(schedule);
  if (!m) throw new Error(`not a rate expression: ${schedule}`);
  return Number(m[1]) * (m[2].startsWith("hour") ? 3600 : 60);
}

export function checkMonitoring(
  raw: RawMonitoring | undefined,
  ctx: {
    backups?: RawBackups;
    servers: ReadonlyMap<string, RawServer>;
    services: ReadonlyMap<string, RawService>;
  },
): Problem[] {
  const out: Problem[] = [];
  const rds = new Set([...ctx.servers].filter(([, s]) => s.hosting === "rds").map(([n]) => n));
  const published = ctx.backups?.storage === "s3";
  const needsS3 = "per-service metrics are published by a scheduled task on the backup runner's image and cluster: set backups.storage s3";
  if (raw !== undefined) {
    if (rds.size === 0) {
      out.push({
        path: ["monitoring"],
        message: "only applies to stacks with rds servers (db-platform stats reads other servers directly)",
      });
    } else if (!published) {
      out.push({ path: ["monitoring"], message: needsS3 });
    }
    const interval = rateSeconds(raw.schedule ?? MONITORING_DEFAULTS.schedule);
    const window = raw.windowSeconds ?? MONITORING_DEFAULTS.windowSeconds;
    // A Fargate task takes up to a minute to start; the next run must not overlap this one.
    if (interval < 60 || window + 120 > interval) {
      out.push({
        path: ["monitoring", "windowSeconds"],
        message: `${window} s does not fit the schedule's ${interval} s with two minutes to start the task and publish: use a longer schedule or a shorter window`,
      });
    }
  }
  for (const [name, service] of ctx.services) {
    if (service.alarms === undefined) continue;
    const server = ctx.servers.get(service.server);
    if (server && server.hosting !== "rds") {
      out.push({
        path: ["services", name, "alarms"],
        message: `only applies to services on rds servers (${service.server} is ${server.hosting}; db-platform stats reads it directly)`,
      });
    } else if (server && !published) {
      out.push({ path: ["services", name, "alarms"], message: needsS3 });
    }
  }
  return out;
}

export function buildMonitoring(raw: RawMonitoring | undefined): MonitoringSpec {
  const schedule = raw?.schedule ?? MONITORING_DEFAULTS.schedule;
  return { schedule, intervalSeconds: rateSeconds(schedule), windowSeconds: raw?.windowSeconds ?? MONITORING_DEFAULTS.windowSeconds };
}

/** A service on an rds server gets its alarm thresholds: its own, else its server's. */
export function withAlarms(service: ServiceSpec, raw: RawService, servers: readonly ServerSpec[]): ServiceSpec {
  const server = servers.find((s) => s.name === service.server);
  if (server?.hosting !== "rds") return service;
  return {
    ...service,
    alarms: {
      connectionsPercent: raw.alarms?.connectionsPercent ?? server.alarms.serviceConnectionsPercent,
      p95Ms: raw.alarms?.p95Ms ?? server.alarms.serviceP95Ms,
    },
  };
}
