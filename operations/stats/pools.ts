/**
 * Per-service pool figures in `db-platform stats` (docs/pooling.md): each local pooler's console,
 * read as the monitoring login (SHOW POOLS, SHOW STATS). Pools are per database and login, so
 * clients and server connections are the service's own; PgBouncer counts transactions and queries
 * per database, so services pooled in one shared database (schema isolation) share those counts,
 * and the report names the services they are shared with.
 */
import type { LocalServerSpec, ServiceSpec } from "../../components/spec";
import { POOLED_KINDS } from "../../components/spec/poolRules";
import { localRoot } from "../local/local";
import type { ConsoleReading } from "../local/pooler";
import { localPoolers } from "../local/pools";

/** One pooler's console at the time of a snapshot, or why it could not be read. */
export interface PoolerReading {
  readonly instance: string;
  readonly reading?: ConsoleReading;
  readonly error?: string;
}

export interface PoolStats {
  readonly mode: string;
  readonly size: number;
  /** The poolers read (the primary's, and a standby's for read-only logins). */
  readonly poolers: readonly string[];
  readonly clientsActive: number;
  readonly clientsWaiting: number;
  readonly serverActive: number;
  readonly serverIdle: number;
  /** How long the longest-waiting client has waited, now. */
  readonly maxWaitSeconds: number;
  /** Transactions and queries in the window (sampled), or since the pooler started. */
  readonly transactions: number;
  readonly queries: number;
  /** Over the window (sampled), or PgBouncer's own averages over its last 60 s. */
  readonly transactionsPerSecond: number;
  readonly queriesPerSecond: number;
  /** Milliseconds clients waited for a server connection, in all, over the same span as `transactions`. */
  readonly waitMs: number;
  /** Pooled services whose transactions and queries are counted with this one's (same database). */
  readonly sharedWith: readonly string[];
  /** Poolers that could not be read, with why. */
  readonly unread: readonly string[];
}

/** Read the console of every pooler of a local server (primary first). */
export async function readPoolers(server: LocalServerSpec, stack: string, projectDir: string): Promise<PoolerReading[]> {
  const out: PoolerReading[] = [];
  for (const [instance, pooler] of localPoolers(server, localRoot(projectDir, stack), projectDir)) {
    if (!(await pooler.isRunning())) {
      out.push({ instance, error: `pooler beside ${instance} is not running (db-platform local start --stack ${stack})` });
      continue;
    }
    try {
      out.push({ instance, reading: await pooler.readConsole() });
    } catch (e) {
      out.push({ instance, error: (e as Error).message });
    }
  }
  return out;
}

/** A service's pool figures from its server's pooler readings (and earlier ones, for a window of `seconds`). */
export function poolStatsOf(
  service: ServiceSpec,
  pooled: readonly ServiceSpec[],
  after: readonly PoolerReading[],
  before: readonly PoolerReading[] | undefined,
  seconds: number,
): PoolStats | undefined {
  if (!service.pool) return undefined;
  const logins = new Set(service.logins.filter((l) => POOLED_KINDS.has(l.kind)).map((l) => l.name));
  const read = after.filter((p) => p.reading);
  const pools = read.flatMap((p) => p.reading?.pools ?? []).filter((p) => p.database === service.database && logins.has(p.login));
  const sum = (f: (p: (typeof pools)[number]) => number) => pools.reduce((n, p) => n + f(p), 0);
  const statsOf = (rs: readonly PoolerReading[] | undefined, instance: string) =>
    rs?.find((p) => p.instance === instance)?.reading?.stats.find((s) => s.database === service.database);
  let transactions = 0;
  let queries = 0;
  let waitMicros = 0;
  let tps = 0;
  let qps = 0;
  for (const p of read) {
    const now = statsOf(after, p.instance);
    if (!now) continue;
    const was = before ? statsOf(before, p.instance) : undefined;
    // A pooler restarted in between counts from zero: its whole count is new.
    const base = was && was.transactions <= now.transactions ? was : undefined;
    transactions += now.transactions - (base?.transactions ?? 0);
    queries += now.queries - (base?.queries ?? 0);
    waitMicros += now.waitMicros - (base?.waitMicros ?? 0);
    tps += now.transactionsPerSecond;
    qps += now.queriesPerSecond;
  }
  const sampled = before !== undefined && seconds > 0;
  return {
    mode: service.pool.mode,
    size: service.pool.size,
    poolers: read.map((p) => p.instance),
    clientsActive: sum((p) => p.clientsActive),
    clientsWaiting: sum((p) => p.clientsWaiting),
    serverActive: sum((p) => p.serverActive),
    serverIdle: sum((p) => p.serverIdle),
    maxWaitSeconds: Math.max(0, ...pools.map((p) => p.maxWaitSeconds)),
    transactions,
    queries,
    transactionsPerSecond: sampled ? transactions / seconds : tps,
    queriesPerSecond: sampled ? queries / seconds : qps,
    waitMs: waitMicros / 1000,
    sharedWith: pooled.filter((s) => s !== service && s.database === service.database && s.pool).map((s) => s.name),
    unread: after.filter((p) => p.error).map((p) => p.error as string),
  };
}
