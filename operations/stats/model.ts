/**
 * Per-service statistics from server snapshots (collect.ts). Attribution: statements and
 * sessions by the role that ran them (every role of a service is `<service>_…`, whatever its
 * isolation), tables and indexes by the service's database and schemas — so services sharing a
 * database by schema are told apart. One snapshot gives the numbers since the statistics were
 * last reset; two give them over the time between (`--since 30s`).
 *
 * Latency percentiles are estimates: pg_stat_statements keeps per statement the calls, mean,
 * standard deviation, minimum and maximum, not every duration; the service's p50/p95/p99 are
 * those of the mixture of its statements' distributions (each a normal truncated to its
 * [min, max]), weighted by calls. Statement texts are normalized by PostgreSQL and scrubbed again
 * here: no literal value reaches a report.
 */
import { loginRoleNames, type ServerSpec, type ServiceSpec, type Spec } from "../../components/spec";
import { type IndexRow, relationKey, type Snapshot, type StatementRow, type TableRow } from "./collect";
import { type PoolStats, poolStatsOf } from "./pools";
import type { ArchiveReading } from "../archive/status";

/** A statement slower than this on average counts as slow (seed 001: "slow queries over 100 ms"). */
export const SLOW_MS = 100;

export interface StatementSummary {
  readonly query: string;
  readonly calls: number;
  readonly meanMs: number;
  readonly maxMs: number;
  readonly totalMs: number;
}

export interface ServiceStats {
  readonly service: string;
  readonly server: string;
  readonly database: string;
  readonly schemas: readonly string[];
  /** 1 = the busiest service of the stack (most time spent by the server). */
  readonly rank: number;
  readonly connections: {
    readonly active: number;
    readonly idle: number;
    readonly idleInTransaction: number;
    readonly other: number;
    readonly total: number;
    /** Sum of the service's login connection limits; null when one is unlimited. */
    readonly limit: number | null;
  };
  readonly queries: {
    readonly calls: number;
    readonly perSecond: number;
    readonly totalMs: number;
    readonly meanMs: number;
    readonly p50Ms: number;
    readonly p95Ms: number;
    readonly p99Ms: number;
    /** Calls of statements whose mean is over SLOW_MS. */
    readonly slowCalls: number;
    /** Rows returned or affected, as pg_stat_statements counts them. */
    readonly rows: number;
    /** This service's share of the time the server spent on all services' statements (0–1). */
    readonly share: number;
  };
  readonly slowest: readonly StatementSummary[];
  readonly storage: {
    readonly tables: number;
    readonly liveRows: number;
    readonly rowsRead: number;
    readonly rowsWritten: number;
    readonly tableBytes: number;
    readonly indexBytes: number;
    readonly largest: ReadonlyArray<{ readonly table: string; readonly bytes: number; readonly liveRows: number }>;
  };
  readonly unusedIndexes: ReadonlyArray<{ readonly index: string; readonly table: string; readonly bytes: number }>;
  readonly missingIndexes: ReadonlyArray<{
    readonly table: string;
    readonly seqScans: number;
    readonly rowsPerSeqScan: number;
    readonly liveRows: number;
  }>;
  /** Oldest unfrozen transaction ID age among its tables (its database's, under database isolation). */
  readonly xidAge: number;
  /** The reader replica its read-only logins use, and how far behind it is. */
  readonly replica?: { readonly name: string; readonly lagBytes: number; readonly lagSeconds: number | null };
  /** Its pools on the server's poolers (services with `pool`), from their consoles. */
  readonly pool?: PoolStats;
}

export interface ServerWindow {
  readonly server: string;
  readonly version: string;
  readonly from: string;
  readonly to: string;
  readonly seconds: number;
  /** `since reset`: cumulative numbers; `sampled`: the difference of two snapshots. */
  readonly kind: "since reset" | "sampled";
  readonly statementsMissing?: string;
  /** Replicas whose statements, sessions and scans are included (read-only logins work there). */
  readonly replicasRead: readonly string[];
  /** Statements run by roles of no service (the platform's admin, the monitoring login, people). */
  readonly unattributed: { readonly calls: number; readonly totalMs: number };
}

export interface StatsReport {
  readonly stack: string;
  readonly generatedAt: string;
  readonly servers: readonly ServerWindow[];
  readonly services: readonly ServiceStats[];
  readonly durationMs: number;
  /** Local servers' continuous archives (docs/point-in-time.md). */
  readonly archives?: readonly ArchiveReading[];
}

/**
 * Replace every literal of a statement text by `?`: strings (also E'', B'', X'', U&''),
 * dollar-quoted bodies, numbers, and comments (which pg_stat_statements keeps verbatim).
 * Quoted identifiers and `$1` placeholders stay.
 */
export function scrubLiterals(sql: string): string {
  const token =
    /"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|(?:[EeBbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|$)|\$([A-Za-z_]\w*)?\$[\s\S]*?(?:\$\1\$|$)|(?<![\w$.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/g;
  return sql.replace(token, (m) => {
    if (m.startsWith('"')) return m;
    if (m.startsWith("--") || m.startsWith("/*")) return "";
    return "?";
  });
}

// Standard normal CDF (Abramowitz–Stegun 7.1.26 erf, error < 1.5e-7).
function phi(z: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(z)) / Math.SQRT2);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

interface Dist {
  readonly weight: number;
  readonly mean: number;
  readonly sd: number;
  readonly min: number;
  readonly max: number;
}

function cdf(d: Dist, x: number): number {
  if (x < d.min) return 0;
  if (x >= d.max) return 1;
  if (d.sd <= 0) return x >= d.mean ? 1 : 0;
  const lo = phi((d.min - d.mean) / d.sd);
  const hi = phi((d.max - d.mean) / d.sd);
  if (hi - lo < 1e-12) return x >= d.mean ? 1 : 0;
  return Math.min(1, Math.max(0, (phi((x - d.mean) / d.sd) - lo) / (hi - lo)));
}

/** The q-quantile of a calls-weighted mixture of truncated normals. */
export function mixtureQuantile(dists: readonly Dist[], q: number): number {
  const total = dists.reduce((n, d) => n + d.weight, 0);
  if (total === 0) return 0;
  let lo = Math.min(...dists.map((d) => d.min));
  let hi = Math.max(...dists.map((d) => d.max));
  for (let i = 0; i < 60 && hi - lo > 1e-6; i++) {
    const mid = (lo + hi) / 2;
    const p = dists.reduce((n, d) => n + d.weight * cdf(d, mid), 0) / total;
    if (p < q) lo = mid;
    else hi = mid;
  }
  return hi;
}

const key = (s: StatementRow) => `${s.role}|${s.database}|${s.queryid}`;
const sumsq = (s: StatementRow) => s.calls * (s.stddevMs ** 2 + s.meanMs ** 2);

/** What ran between two snapshots: statements by counter difference (mean and deviation from sums of squares). */
function statementsBetween(before: Snapshot, after: Snapshot): StatementRow[] {
  const old = new Map(before.statements.map((s) => [key(s), s]));
  const out: StatementRow[] = [];
  for (const s of after.statements) {
    const b = old.get(key(s));
    // Evicted or reset in between: its whole count is new.
    if (!b || b.calls > s.calls) {
      out.push(s);
      continue;
    }
    const calls = s.calls - b.calls;
    if (calls === 0) continue;
    const totalMs = s.totalMs - b.totalMs;
    const meanMs = totalMs / calls;
    const variance = Math.max(0, (sumsq(s) - sumsq(b)) / calls - meanMs ** 2);
    out.push({ ...s, calls, totalMs, meanMs, stddevMs: Math.sqrt(variance), rows: s.rows - b.rows });
  }
  return out;
}

function tablesBetween(before: Snapshot, after: Snapshot): TableRow[] {
  const old = new Map(before.tables.map((t) => [relationKey(t), t]));
  return after.tables.map((t) => {
    const b = old.get(relationKey(t));
    if (!b || b.seqScan > t.seqScan) return t;
    return {
      ...t,
      seqScan: t.seqScan - b.seqScan,
      seqRowsRead: t.seqRowsRead - b.seqRowsRead,
      idxScan: t.idxScan - b.idxScan,
      idxRowsFetched: t.idxRowsFetched - b.idxRowsFetched,
      inserted: t.inserted - b.inserted,
      updated: t.updated - b.updated,
      deleted: t.deleted - b.deleted,
    };
  });
}

/** A service's share of one server's snapshot(s). */
function serviceOf(
  service: ServiceSpec,
  server: ServerSpec,
  snap: Snapshot,
  statements: readonly StatementRow[],
  tables: readonly TableRow[],
  seconds: number,
  pool: PoolStats | undefined,
): Omit<ServiceStats, "rank" | "queries"> & { queries: Omit<ServiceStats["queries"], "share"> } {
  const roles = new Set([service.owner.name, ...service.logins.flatMap(loginRoleNames)]);
  const mine = statements.filter((s) => roles.has(s.role));
  const calls = mine.reduce((n, s) => n + s.calls, 0);
  const totalMs = mine.reduce((n, s) => n + s.totalMs, 0);
  const dists = mine.map((s) => ({ weight: s.calls, mean: s.meanMs, sd: s.stddevMs, min: s.minMs, max: s.maxMs }));
  const sessions = snap.sessions.filter((s) => roles.has(s.role));
  const count = (...states: string[]) => sessions.filter((s) => states.includes(s.state)).length;
  const limits = service.logins.map((l) => snap.connectionLimits.get(l.name) ?? -1);
  const inService = (t: { database: string; schema: string }) => t.database === service.database && service.schemas.includes(t.schema);
  const myTables = tables.filter(inService);
  const myIndexes = snap.indexes.filter(inService);
  const reader = "reader" in server ? server.reader : undefined;
  const lag = reader ? snap.replicas.find((r) => r.name === reader) : undefined;
  const ownDatabase = service.isolation === "database" ? snap.databases.find((d) => d.name === service.database) : undefined;
  const q = (p: number) => mixtureQuantile(dists, p);
  return {
    service: service.name,
    server: server.name,
    database: service.database,
    schemas: service.schemas,
    connections: {
      active: count("active"),
      idle: count("idle"),
      idleInTransaction: count("idle in transaction", "idle in transaction (aborted)"),
      other: count("fastpath function call", "disabled", "unknown"),
      total: sessions.length,
      limit: limits.some((l) => l < 0) ? null : limits.reduce((n, l) => n + l, 0),
    },
    queries: {
      calls,
      perSecond: seconds > 0 ? calls / seconds : 0,
      totalMs,
      meanMs: calls > 0 ? totalMs / calls : 0,
      p50Ms: q(0.5),
      p95Ms: q(0.95),
      p99Ms: q(0.99),
      slowCalls: mine.filter((s) => s.meanMs > SLOW_MS).reduce((n, s) => n + s.calls, 0),
      rows: mine.reduce((n, s) => n + s.rows, 0),
    },
    slowest: [...mine]
      .sort((a, b) => b.meanMs - a.meanMs)
      .slice(0, 5)
      .map((s) => ({ query: scrubLiterals(s.query), calls: s.calls, meanMs: s.meanMs, maxMs: s.maxMs, totalMs: s.totalMs })),
    storage: {
      tables: myTables.length,
      liveRows: myTables.reduce((n, t) => n + t.liveRows, 0),
      rowsRead: myTables.reduce((n, t) => n + t.seqRowsRead + t.idxRowsFetched, 0),
      rowsWritten: myTables.reduce((n, t) => n + t.inserted + t.updated + t.deleted, 0),
      tableBytes: myTables.reduce((n, t) => n + t.tableBytes, 0),
      indexBytes: myTables.reduce((n, t) => n + t.indexBytes, 0),
      largest: [...myTables]
        .sort((a, b) => b.tableBytes + b.indexBytes - (a.tableBytes + a.indexBytes))
        .slice(0, 5)
        .map((t) => ({ table: `${t.schema}.${t.name}`, bytes: t.tableBytes + t.indexBytes, liveRows: t.liveRows })),
    },
    unusedIndexes: myIndexes
      .filter((i: IndexRow) => i.scans === 0 && !i.enforces)
      .map((i) => ({ index: `${i.schema}.${i.name}`, table: `${i.schema}.${i.table}`, bytes: i.bytes })),
    missingIndexes: myTables
      .filter((t) => t.liveRows >= 10_000 && t.seqScan >= 10 && t.seqScan > t.idxScan && t.seqRowsRead / t.seqScan >= 1_000)
      .map((t) => ({
        table: `${t.schema}.${t.name}`,
        seqScans: t.seqScan,
        rowsPerSeqScan: Math.round(t.seqRowsRead / t.seqScan),
        liveRows: t.liveRows,
      })),
    xidAge: Math.max(ownDatabase?.xidAge ?? 0, ...myTables.map((t) => t.xidAge)),
    replica: lag && reader ? { name: reader, lagBytes: lag.lagBytes, lagSeconds: lag.replayLagSeconds } : undefined,
    pool,
  };
}

/**
 * Per-service statistics of a stack's servers, ranked by the time the server spent on each
 * service's statements (then calls, then connections). `before` (optional) is an earlier
 * snapshot of each server: the numbers are then those of the time between.
 */
export function buildStats(
  stack: string,
  spec: Spec,
  after: ReadonlyMap<string, Snapshot>,
  before?: ReadonlyMap<string, Snapshot>,
  only?: string,
): Omit<StatsReport, "durationMs"> {
  const windows: ServerWindow[] = [];
  const rows: Array<ReturnType<typeof serviceOf>> = [];
  for (const [name, snap] of after) {
    const server = spec.servers.find((s) => s.name === name) as ServerSpec;
    const prior = before?.get(name);
    const statements = prior ? statementsBetween(prior, snap) : [...snap.statements];
    const tables = prior ? tablesBetween(prior, snap) : [...snap.tables];
    const from = prior ? prior.takenAt : snap.statementsSince;
    const seconds = Math.max(0.001, (snap.takenAt.getTime() - from.getTime()) / 1000);
    const services = spec.services.filter((s) => s.server === name);
    const serviceRoles = new Set(services.flatMap((s) => [s.owner.name, ...s.logins.flatMap(loginRoleNames)]));
    const other = statements.filter((s) => !serviceRoles.has(s.role));
    windows.push({
      server: name,
      version: snap.version,
      from: from.toISOString(),
      to: snap.takenAt.toISOString(),
      seconds,
      kind: prior ? "sampled" : "since reset",
      statementsMissing: snap.statementsMissing,
      replicasRead: snap.replicasRead ?? [],
      unattributed: { calls: other.reduce((n, s) => n + s.calls, 0), totalMs: other.reduce((n, s) => n + s.totalMs, 0) },
    });
    for (const s of services) {
      const pool = snap.poolers ? poolStatsOf(s, services, snap.poolers, prior?.poolers, seconds) : undefined;
      rows.push(serviceOf(s, server, snap, statements, tables, seconds, pool));
    }
  }
  const allMs = rows.reduce((n, r) => n + r.queries.totalMs, 0);
  const ranked = [...rows].sort(
    (a, b) => b.queries.totalMs - a.queries.totalMs || b.queries.calls - a.queries.calls || b.connections.total - a.connections.total,
  );
  const services = ranked
    .map((r, i) => ({ ...r, rank: i + 1, queries: { ...r.queries, share: allMs > 0 ? r.queries.totalMs / allMs : 0 } }))
    .filter((r) => !only || r.service === only);
  return { stack, generatedAt: new Date().toISOString(), servers: windows, services };
}
