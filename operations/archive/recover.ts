/**
 * A scratch server recovered to a moment (docs/point-in-time.md): the archive's newest base
 * backup that ended before the moment, restored by barman-cloud-restore into a temporary
 * cluster (no TCP listener, a private socket folder, no archiving of its own), and the WAL
 * replayed by barman-cloud-wal-restore up to the moment, then promoted. Only the platform can
 * reach it: its HBA file admits the bootstrap superuser over that socket and nothing else.
 * Stopped and removed afterwards.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BackupCommandError } from "../backup/command";
import { freePort } from "../local/ports";
import { asServerUser, LocalPostgres } from "../local/postgres";
import type { LocalArchive } from "./archive";
import { ArchiveError, type BaseBackup, barman, confString, walCommands } from "./barman";

export interface Recovered {
  readonly server: LocalPostgres;
  readonly backup: BaseBackup;
  /** The last transaction replayed, as the recovery logged it (the recovery point). */
  readonly lastTransactionAt?: string;
  readonly seconds: number;
}

/** The base backup a recovery to `target` starts from: the newest that ended before it. */
export function baseBackupFor(backups: readonly BaseBackup[], target: Date, server: string): BaseBackup {
  if (backups.length === 0) {
    throw new ArchiveError(
      `server ${server} has no base backup in its archive yet: take one with db-platform backup base --server ${server}`,
    );
  }
  const usable = backups.filter((b) => Date.parse(b.endTime) <= target.getTime());
  if (usable.length === 0) {
    throw new ArchiveError(
      `${target.toISOString()} is before the oldest base backup of server ${server} ended (${backups[0].endTime}): the archive recovers to moments from then on`,
    );
  }
  return usable[usable.length - 1];
}

/** Refuse a moment the archive cannot hold: in the future, or not a time at all (usage errors: exit 2). */
export function checkTargetTime(value: string, now = new Date()): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(value.trim());
  if (!m) throw new BackupCommandError(`--to-time ${value}: expected an ISO 8601 time with its zone, such as 2026-12-04T14:02:00Z`);
  const [, y, mo, d, h, mi, sec = "00", fraction, zone] = m;
  if (!zone)
    throw new BackupCommandError(`--to-time ${value}: give the time zone (Z for UTC, or +01:00): a moment without one is ambiguous`);
  // Date would move 2026-02-30 to March 2: every field must be what it says.
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) {
    throw new BackupCommandError(`--to-time ${value}: not a time of the calendar`);
  }
  if (fraction && fraction.length > 3) {
    throw new BackupCommandError(`--to-time ${value}: give at most milliseconds (three decimals)`);
  }
  const offset = zone === "Z" ? "Z" : `${zone.slice(0, 3)}:${zone.slice(3).replace(":", "") || "00"}`;
  const t = new Date(`${y}-${mo}-${d}T${h}:${mi}:${sec}${fraction ? `.${fraction}` : ""}${offset}`);
  if (Number.isNaN(t.getTime())) throw new BackupCommandError(`--to-time ${value}: not a time of the calendar`);
  if (t.getTime() > now.getTime())
    throw new BackupCommandError(`--to-time ${value} is in the future (now ${now.toISOString()}): nothing to recover yet`);
  return t;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Recover the server's archive to `target` in a scratch cluster under `root`. The live server's
 * current WAL segment is archived first, so writes up to now are in the archive. A recovery that
 * ends before the target (a gap in the archive) or a scratch server that cannot start stops
 * with the server's own reason; the scratch is removed then.
 */
export async function recoverToTime(archive: LocalArchive, target: Date, root: string, timeoutMs = 30 * 60_000): Promise<Recovered> {
  const started = performance.now();
  const live = archive.opts.server;
  const name = live.opts.name;
  const running = await live.isRunning();
  if (running) await archive.flush();
  const timeline = running ? await archive.timeline() : undefined;
  const backup = baseBackupFor(await archive.baseBackups(), target, name);
  const l = await archive.location();
  const scratch = new LocalPostgres({
    name: `recovery.${name}.${Date.now().toString(36)}`,
    version: live.dataVersion() ?? live.opts.version,
    host: "127.0.0.1",
    port: await freePort(),
    adminUser: live.opts.adminUser,
    adminPassword: "",
    root,
    projectDir: archive.opts.projectDir,
  });
  try {
    fs.mkdirSync(scratch.dir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(scratch.socketDir, { mode: 0o700 });
    ownByServerUser(scratch.dir, scratch.socketDir);
    await barman(archive.opts.projectDir, l, "barman-cloud-restore", [l.url, l.serverName, backup.id, scratch.dataDir]);
    const { restore } = walCommands(l, archive.opts.projectDir);
    const quoted = confString;
    // postgresql.auto.conf is read last: these win over everything the backup carried.
    fs.appendFileSync(
      path.join(scratch.dataDir, "postgresql.auto.conf"),
      [
        "# db-platform: a scratch recovery (docs/point-in-time.md)",
        // No TCP at all: the copy holds every login's password as of the moment; only the private socket serves.
        "listen_addresses = ''",
        `port = ${scratch.opts.port}`,
        `unix_socket_directories = ${quoted(scratch.socketDir)}`,
        `cluster_name = ${quoted(scratch.opts.name)}`,
        "archive_mode = off",
        "hot_standby = on",
        `restore_command = ${quoted(restore)}`,
        // A numeric offset: the setting takes no zone abbreviation such as Z.
        `recovery_target_time = ${quoted(target.toISOString().replace("T", " ").replace("Z", "+00"))}`,
        "recovery_target_action = 'promote'",
        ...(timeline ? [`recovery_target_timeline = '${timeline}'`] : []),
        "",
      ].join("\n"),
    );
    // Only the bootstrap superuser, over that socket: the backup's own HBA rules do not come along.
    fs.writeFileSync(path.join(scratch.dataDir, "pg_hba.conf"), "# db-platform: a scratch recovery\nlocal all postgres trust\n", {
      mode: 0o600,
    });
    fs.writeFileSync(path.join(scratch.dataDir, "recovery.signal"), "");
    fs.rmSync(path.join(scratch.dataDir, "standby.signal"), { force: true });
    ownByServerUser(...["postgresql.auto.conf", "recovery.signal", "pg_hba.conf"].map((f) => path.join(scratch.dataDir, f)));
    await scratch
      .tool("pg_ctl", ["start", "-D", scratch.dataDir, "-l", scratch.logFile, "-w", "-t", String(Math.round(timeoutMs / 1000))], {
        timeoutMs,
      })
      .catch(() => {
        throw new ArchiveError(
          `the scratch server for ${target.toISOString()} did not start: ${recoveryReason(scratch) || "no reason logged"}`,
        );
      });
    await untilPromoted(scratch, target, Date.now() + timeoutMs);
    return { server: scratch, backup, lastTransactionAt: lastTransaction(scratch), seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    await scratch.destroy().catch(() => undefined);
    throw e;
  }
}

/** As root the servers run as `postgres` (asServerUser): what it must own. */
function ownByServerUser(...paths: string[]): void {
  if (asServerUser().length === 0) return;
  const line = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  const [, , uid, gid] = (line ?? "").split(":");
  for (const p of paths) fs.chownSync(p, Number(uid), Number(gid));
}

async function untilPromoted(scratch: LocalPostgres, target: Date, deadline: number): Promise<void> {
  for (;;) {
    if (!(await scratch.isRunning())) {
      throw new ArchiveError(`the recovery to ${target.toISOString()} stopped: ${recoveryReason(scratch) || "the scratch server exited"}`);
    }
    try {
      const c = await scratch.superuserClient();
      try {
        const { rows } = await c.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
        if (!rows[0].r) return;
      } finally {
        await c.end();
      }
    } catch {
      // starting, or ending recovery
    }
    if (Date.now() > deadline)
      throw new ArchiveError(`the recovery to ${target.toISOString()} did not finish in time; see ${scratch.logFile}`);
    await sleep(250);
  }
}

/** The scratch server's FATAL lines, in its own words ("recovery ended before configured recovery target was reached"). */
function recoveryReason(scratch: LocalPostgres): string {
  let text: string;
  try {
    text = fs.readFileSync(scratch.logFile, "utf8");
  } catch {
    return "";
  }
  const fatal = text.split("\n").filter((l) => /\b(FATAL|PANIC):/.test(l));
  if (fatal.some((l) => l.includes("recovery ended before configured recovery target was reached"))) {
    const reached = /redo done at ([0-9A-F/]+)/.exec(text)?.[1];
    return `the archive has no WAL up to that moment (a gap in it, or writes that were never archived): recovery ended before reaching it${reached ? `, at ${reached}` : ""}`;
  }
  // A settings problem is logged before its FATAL line ("invalid value for parameter …", "syntax error in file …").
  const settings = text
    .split("\n")
    .filter((l) => /(invalid value for parameter|syntax error in file|unrecognized configuration parameter)/.test(l));
  const reasons = [...settings.slice(-2), ...fatal].slice(-3).map((l) => l.replace(/^.*?(FATAL|PANIC):\s*/, ""));
  if (reasons.length > 0) return reasons.join("; ");
  // Before its logging starts (no data folder it can use) the server writes plain lines: the last ones say why.
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-3)
    .join(" ");
}

/** "last completed transaction was at log time …", which PostgreSQL logs when recovery stops. */
function lastTransaction(scratch: LocalPostgres): string | undefined {
  try {
    const text = fs.readFileSync(scratch.logFile, "utf8");
    const m = /last completed transaction was at log time (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::?(\d{2}))?/.exec(
      text,
    );
    if (!m) return undefined;
    const t = new Date(`${m[1]}T${m[2]}${m[3]}:${m[4] ?? "00"}`);
    return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
  } catch {
    return undefined;
  }
}
