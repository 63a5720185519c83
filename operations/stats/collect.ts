/**
 * One snapshot of a server's statistics, read as the platform's monitoring login
 * (db_platform_monitor: pg_monitor and CONNECT, docs/stats.md): statement statistics
 * (pg_stat_statements), sessions (pg_stat_activity), databases (pg_stat_database and sizes), the
 * tables and indexes of the given schemas in each database (pg_stat_user_tables/indexes and
 * sizes), and the standbys' lag (pg_stat_replication). Counters are cumulative; model.ts turns
 * them into per-service numbers over a window. Never a row of a table is read.
 */
import pLimit from "p-limit";
import type { Client } from "pg";

import type { Connect } from "../connect";
import type { PoolerReading } from "./pools";

export type { Connect };

export interface StatementRow {
  readonly role: string;
  readonly database: string;
  readonly queryid: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly stddevMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly rows: number;
  /** Normalized by pg_stat_statements; scrubbed again before any report (model.ts). */
  readonly query: string;
}

export interface SessionRow {
  readonly role: string;
  readonly database: string;
  readonly state: string;
}

export interface DatabaseRow {
  readonly name: string;
  readonly bytes: number;
  readonly xidAge: number;
}

export interface TableRow {
  readonly database: string;
  readonly schema: string;
  readonly name: string;
  readonly liveRows: number;
  readonly seqScan: number;
  readonly seqRowsRead: number;
  readonly idxScan: number;
  readonly idxRowsFetched: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly tableBytes: number;
  readonly indexBytes: number;
  readonly xidAge: number;
}

export interface IndexRow {
  readonly database: string;
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly scans: number;
  readonly bytes: number;
  /** Unique and primary-key indexes enforce something even when never scanned. */
  readonly enforces: boolean;
}

export interface ReplicaRow {
  readonly name: string;
  readonly lagBytes: number;
  readonly replayLagSeconds: number | null;
}

export interface Snapshot {
  readonly server: string;
  readonly takenAt: Date;
  readonly version: string;
  /** When the statement statistics were last reset: the start of the cumulative window. */
  readonly statementsSince: Date;
  /** pg_stat_statements is not loaded on the server: no statement numbers. */
  readonly statementsMissing?: string;
  readonly statements: readonly StatementRow[];
  readonly sessions: readonly SessionRow[];
  readonly connectionLimits: ReadonlyMap<string, number>;
  readonly databases: readonly DatabaseRow[];
  readonly tables: readonly TableRow[];
  readonly indexes: readonly IndexRow[];
  readonly replicas: readonly ReplicaRow[];
  /** Replicas whose own statements, sessions and scans are included (withReplica). */
  readonly replicasRead?: readonly string[];
  /** The consoles of the server's poolers (local servers with `pooler`), read right after it. */
  readonly poolers?: readonly PoolerReading[];
}

const num = (v: unknown) => Number(v ?? 0);

const STATEMENTS = `
SELECT s.userid::regrole::text AS role, d.datname AS database, s.queryid::text AS queryid, s.calls, s.total_exec_time,
       s.mean_exec_time, s.stddev_exec_time, s.min_exec_time, s.max_exec_time, s.rows, s.query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE s.toplevel AND s.calls > 0`;

// Columns named as the row fields; counters and sizes as float8, which node-postgres reads as numbers.
const TABLES = `
SELECT current_database() AS "database", t.schemaname AS "schema", t.relname AS "name", t.n_live_tup::float8 AS "liveRows",
       t.seq_scan::float8 AS "seqScan", t.seq_tup_read::float8 AS "seqRowsRead", coalesce(t.idx_scan, 0)::float8 AS "idxScan",
       coalesce(t.idx_tup_fetch, 0)::float8 AS "idxRowsFetched", t.n_tup_ins::float8 AS "inserted", t.n_tup_upd::float8 AS "updated",
       t.n_tup_del::float8 AS "deleted", pg_table_size(t.relid)::float8 AS "tableBytes", pg_indexes_size(t.relid)::float8 AS "indexBytes",
       age(c.relfrozenxid)::float8 AS "xidAge"
FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
WHERE t.schemaname = ANY($1::text[])`;

const INDEXES = `
SELECT current_database() AS "database", s.schemaname AS "schema", s.relname AS "table", s.indexrelname AS "name",
       s.idx_scan::float8 AS "scans", pg_relation_size(s.indexrelid)::float8 AS "bytes",
       i.indisunique OR i.indisprimary OR i.indisexclusion AS "enforces"
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = ANY($1::text[])`;

async function statements(c: Client): Promise<{ rows: StatementRow[]; since?: Date; missing?: string }> {
  try {
    const { rows } = await c.query(STATEMENTS);
    const info = await c.query<{ stats_reset: Date }>("SELECT stats_reset FROM pg_stat_statements_info");
    return {
      since: info.rows[0]?.stats_reset,
      rows: rows.map((r) => ({
        role: String(r.role),
        database: String(r.database),
        queryid: String(r.queryid),
        calls: num(r.calls),
        totalMs: num(r.total_exec_time),
        meanMs: num(r.mean_exec_time),
        stddevMs: num(r.stddev_exec_time),
        minMs: num(r.min_exec_time),
        maxMs: num(r.max_exec_time),
        rows: num(r.rows),
        query: String(r.query ?? ""),
      })),
    };
  } catch (e) {
    // Not created, or not in shared_preload_libraries (42P01 / 55000): say so, report the rest.
    return { rows: [], missing: (e as Error).message };
  }
}

/** Read one server: the catalog-wide views from `postgres`, the tables of `schemas` from each database in `databases`. */
export async function collectSnapshot(
  server: string,
  connect: Connect,
  databases: ReadonlyMap<string, readonly string[]>,
  concurrency = 8,
): Promise<Snapshot> {
  const c = await connect("postgres");
  let base;
  try {
    const meta = await c.query<{ now: Date; version: string; started: Date }>(
      "SELECT now(), current_setting('server_version') AS version, pg_postmaster_start_time() AS started",
    );
    const st = await statements(c);
    const sessions = await c.query(
      "SELECT usename, datname, state FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    const limits = await c.query<{ rolname: string; rolconnlimit: number }>("SELECT rolname, rolconnlimit FROM pg_roles");
    const dbs = await c.query(
      "SELECT datname, pg_database_size(oid) AS bytes, age(datfrozenxid) AS xid_age FROM pg_database WHERE datallowconn AND NOT datistemplate",
    );
    const replicas = await c.query(
      `SELECT application_name,
              CASE WHEN pg_is_in_recovery() THEN 0 ELSE coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) END AS lag_bytes,
              extract(epoch FROM replay_lag) AS replay_lag FROM pg_stat_replication`,
    );
    base = {
      server,
      takenAt: meta.rows[0].now,
      version: meta.rows[0].version,
      statementsSince: st.since ?? meta.rows[0].started,
      statementsMissing: st.missing,
      statements: st.rows,
      sessions: sessions.rows.map((r) => ({ role: String(r.usename), database: String(r.datname), state: String(r.state ?? "unknown") })),
      connectionLimits: new Map(limits.rows.map((r) => [r.rolname, r.rolconnlimit])),
      databases: dbs.rows.map((r) => ({ name: String(r.datname), bytes: num(r.bytes), xidAge: num(r.xid_age) })),
      replicas: replicas.rows.map((r) => ({
        name: String(r.application_name),
        lagBytes: num(r.lag_bytes),
        replayLagSeconds: r.replay_lag === null ? null : num(r.replay_lag),
      })),
    };
  } finally {
    await c.end().catch(() => undefined);
  }

  const limit = pLimit(Math.max(1, concurrency));
  const perDatabase = await Promise.all(
    [...databases].map(([database, schemas]) =>
      limit(async () => {
        const db = await connect(database);
        try {
          const tables = await db.query<TableRow>(TABLES, [[...schemas]]);
          const indexes = await db.query<IndexRow>(INDEXES, [[...schemas]]);
          return { tables: tables.rows, indexes: indexes.rows };
        } finally {
          await db.end().catch(() => undefined);
        }
      }),
    ),
  );
  return {
    ...base,
    tables: perDatabase.flatMap((d) => d.tables),
    indexes: perDatabase.flatMap((d) => d.indexes),
  };
}

/** A table or index across snapshots of one server: database, schema, name. */
export const relationKey = (r: { database: string; schema: string; name: string }) => `${r.database}|${r.schema}|${r.name}`;

/**
 * Add a replica's own work to its primary's snapshot: read-only logins connect to the reader, so
 * their statements, sessions and scans happen there. Statements stay apart (their ids are
 * prefixed with the replica's name), sessions add up, table and index scan counters add up (an
 * index used only on the replica is not unused); sizes, writes and transaction ages are the
 * primary's.
 */
export function withReplica(primary: Snapshot, replica: Snapshot, name: string): Snapshot {
  const rt = new Map(replica.tables.map((t) => [relationKey(t), t]));
  const ri = new Map(replica.indexes.map((i) => [relationKey(i), i]));
  return {
    ...primary,
    statements: [...primary.statements, ...replica.statements.map((st) => ({ ...st, queryid: `${name}:${st.queryid}` }))],
    sessions: [...primary.sessions, ...replica.sessions],
    tables: primary.tables.map((t) => {
      const r = rt.get(relationKey(t));
      if (!r) return t;
      return {
        ...t,
        seqScan: t.seqScan + r.seqScan,
        seqRowsRead: t.seqRowsRead + r.seqRowsRead,
        idxScan: t.idxScan + r.idxScan,
        idxRowsFetched: t.idxRowsFetched + r.idxRowsFetched,
      };
    }),
    indexes: primary.indexes.map((i) => ({ ...i, scans: i.scans + (ri.get(relationKey(i))?.scans ?? 0) })),
    replicasRead: [...(primary.replicasRead ?? []), name],
  };
}
