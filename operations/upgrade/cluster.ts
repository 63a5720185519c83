/**
 * A local server's major upgrade on disk, with the real `pg_upgrade` of the target build: the new
 * cluster is initialized beside the old one (`data-<to>`, the platform's settings), upgraded from
 * it with both stopped, and the two folders are then swapped (`data` ↔ `data-<from>`), so the old
 * cluster stays whole until the upgrade is confirmed and `rollback` can return to it. Every step
 * is safe to repeat after a kill: each looks at the folders as they are.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client, escapeIdentifier } from "pg";
import { LocalPostgres, type LocalPostgresOptions } from "../local/postgres";
import { freePort } from "../local/ports";

export type UpgradeMode = "clone" | "copy" | "link";

export class UpgradeError extends Error {}

/** The same server at another major, in data folder `dataDirName` (default `data`). */
export function sibling(server: LocalPostgres, version: string, dataDirName?: string): LocalPostgres {
  const opts: LocalPostgresOptions = { ...server.opts, version, dataDirName };
  return new LocalPostgres(opts);
}

/** The folder the old cluster moves to once the new one is in place. */
export const keptName = (from: string) => `data-${from}`;
/** The folder the new cluster is built in. */
export const nextName = (to: string) => `data-${to}`;

/** Stop whatever server runs on a data folder (a kill can leave pg_upgrade's own servers up). */
async function stopAny(server: LocalPostgres): Promise<void> {
  if (fs.existsSync(path.join(server.dataDir, "postmaster.pid"))) await server.stop().catch(() => undefined);
}

/**
 * `pg_upgrade` from `old` (in `data`) into a fresh `data-<to>`, made while `old` still runs; then
 * `old` is stopped (`stopped` is told), `--check` runs, then the upgrade in `mode`. A partial `data-<to>` from an earlier, killed attempt is removed first.
 * Returns the mode used (clone falls back to copy where the filesystem cannot clone).
 */
export async function runPgUpgrade(
  old: LocalPostgres,
  to: string,
  mode: UpgradeMode | undefined,
  say: (s: string) => void,
  stopped: () => void = () => undefined,
): Promise<UpgradeMode> {
  const next = sibling(old, to, nextName(to));
  await stopAny(next);
  fs.rmSync(next.dataDir, { recursive: true, force: true });
  // The new cluster is made while the old one still serves (initdb is not downtime). pg_upgrade
  // needs its data checksums as the old one's (18's initdb turns them on).
  const control = await old.tool("pg_controldata", [old.dataDir]);
  const checksums = !/Data page checksum version:\s+0\b/.test(control);
  await next.init(checksums ? ["--data-checksums"] : Number(next.opts.version) >= 18 ? ["--no-data-checksums"] : []);
  next.ensureStatsSettings();
  await stopAny(old);
  stopped();
  const port = await freePort();
  const newPort = await freePort();
  const args = (m: UpgradeMode, check: boolean) => [
    "--old-datadir",
    old.dataDir,
    "--new-datadir",
    next.dataDir,
    // The build's wrappers: each puts its own build's libraries first.
    "--old-bindir",
    old.bin,
    "--new-bindir",
    next.bin,
    "--username",
    "postgres",
    "--old-port",
    String(port),
    "--new-port",
    String(newPort),
    "--socketdir",
    old.socketDir,
    `--${m}`,
    ...(check ? ["--check"] : []),
  ];
  let used: UpgradeMode = mode ?? "clone";
  try {
    await next.tool("pg_upgrade", args(used, true), { cwd: old.dir, timeoutMs: 600_000 });
  } catch (e) {
    if (mode !== undefined || !/clon/i.test((e as Error).message))
      throw new UpgradeError(`pg_upgrade --check refused: ${(e as Error).message}`);
    say("upgrade: this filesystem cannot clone files; copying instead\n");
    used = "copy";
    await next.tool("pg_upgrade", args(used, true), { cwd: old.dir, timeoutMs: 600_000 });
  }
  await next.tool("pg_upgrade", args(used, false), { cwd: old.dir, timeoutMs: 3_600_000 });
  return used;
}

/**
 * Put the new cluster in place: `data` → `data-<from>`, then `data-<to>` → `data`. Each rename is
 * atomic, and a repeat after a kill between the two finishes the second.
 */
export function switchFolders(server: LocalPostgres, from: string, to: string): void {
  const dir = server.dir;
  const [data, kept, next] = ["data", keptName(from), nextName(to)].map((n) => path.join(dir, n));
  if (fs.existsSync(data) && fs.existsSync(next) && !fs.existsSync(kept)) fs.renameSync(data, kept);
  if (!fs.existsSync(data) && fs.existsSync(next)) fs.renameSync(next, data);
  if (!fs.existsSync(data) || !fs.existsSync(kept))
    throw new UpgradeError(`server ${server.opts.name}: ${dir} is not as an upgrade leaves it (data and ${keptName(from)})`);
}

/** Return the old cluster to `data`; the new one is removed (`rollback`). */
export function restoreFolders(server: LocalPostgres, from: string, to: string): void {
  const dir = server.dir;
  const [data, kept, next] = ["data", keptName(from), nextName(to)].map((n) => path.join(dir, n));
  if (fs.existsSync(kept)) {
    if (fs.existsSync(data)) fs.rmSync(data, { recursive: true, force: true });
    fs.renameSync(kept, data);
  }
  fs.rmSync(next, { recursive: true, force: true });
  // Link mode renames the old cluster's control file once it has linked; before the new cluster
  // has started, renaming it back makes the old cluster startable again.
  const control = path.join(data, "global", "pg_control");
  if (!fs.existsSync(control) && fs.existsSync(`${control}.old`)) fs.renameSync(`${control}.old`, control);
}

/**
 * In the database `c` is connected to: `ALTER EXTENSION … UPDATE` for each extension whose
 * installed version is not the new build's default; what was updated, as `db.ext old → new`.
 */
export async function updateExtensions(c: Client, database: string): Promise<string[]> {
  const { rows } = await c.query<{ extname: string; extversion: string; default_version: string }>(
    `SELECT e.extname, e.extversion, a.default_version FROM pg_extension e
       JOIN pg_available_extensions a ON a.name = e.extname
      WHERE e.extversion IS DISTINCT FROM a.default_version ORDER BY e.extname`,
  );
  for (const r of rows) await c.query(`ALTER EXTENSION ${escapeIdentifier(r.extname)} UPDATE`);
  return rows.map((r) => `${database}.${r.extname} ${r.extversion} → ${r.default_version}`);
}

/** After the switch: every database's extensions updated to the new build's versions, and statistics rebuilt. */
export async function afterUpgrade(server: LocalPostgres, say: (s: string) => void): Promise<string[]> {
  const updated: string[] = [];
  const admin = await server.superuserClient();
  let databases: string[];
  try {
    databases = (await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")).rows.map(
      (r) => r.datname,
    );
  } finally {
    await admin.end();
  }
  for (const db of databases) {
    const c: Client = await server.superuserClient(db);
    try {
      updated.push(...(await updateExtensions(c, db)));
    } finally {
      await c.end();
    }
  }
  const started = performance.now();
  await server.tool(
    "vacuumdb",
    ["--all", "--analyze-in-stages", "--host", server.socketDir, "--port", String(server.opts.port), "--username", "postgres"],
    {
      timeoutMs: 3_600_000,
    },
  );
  say(`upgrade: statistics rebuilt (vacuumdb --analyze-in-stages) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return updated;
}

/** Extensions installed in any database of the running server that the target build does not ship. */
export async function missingExtensions(server: LocalPostgres, to: string): Promise<string[]> {
  const target = sibling(server, to);
  const share = (await target.tool("pg_config", ["--sharedir"])).trim();
  const admin = await server.superuserClient();
  const missing: string[] = [];
  try {
    const dbs = (await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")).rows;
    for (const { datname } of dbs) {
      const c = await server.superuserClient(datname);
      try {
        for (const { extname } of (await c.query<{ extname: string }>("SELECT extname FROM pg_extension ORDER BY extname")).rows) {
          if (!fs.existsSync(path.join(share, "extension", `${extname}.control`))) missing.push(`${datname}: ${extname}`);
        }
      } finally {
        await c.end();
      }
    }
  } finally {
    await admin.end();
  }
  return missing;
}
