/**
 * A local server's continuous archive (docs/point-in-time.md): barman-cloud archives every WAL
 * segment (archive_command, at most `archive_timeout` seconds after a write) and takes base
 * backups into the stack's S3 server, gzip-compressed and encrypted at rest (SSE-S3), kept for
 * the recovery window. The server's settings live in `db-platform-archive.conf` in its data
 * folder (included from postgresql.conf); the S3 credentials beside the data, never in it.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ArchiveSpec } from "../../components/spec";
import { asServerUser, type LocalPostgres } from "../local/postgres";
import type { LocalS3 } from "../local/s3";
import {
  ArchiveError,
  type ArchiveLocation,
  type BaseBackup,
  barman,
  confString,
  listBaseBackups,
  walCommands,
  writeCredentials,
} from "./barman";

export { ArchiveError };

export const ARCHIVE_CONF = "db-platform-archive.conf";

export interface LocalArchiveOptions {
  readonly server: LocalPostgres;
  readonly s3: LocalS3;
  readonly bucket: string;
  readonly environment: string;
  readonly spec: ArchiveSpec;
  readonly projectDir: string;
}

/** What pg_stat_archiver and the archive say about a server's archiving. */
export interface ArchiveHealth {
  readonly server: string;
  readonly archiveMode: string;
  /** archive_mode or archive_command changed and waits for a restart of the server. */
  readonly pendingRestart: boolean;
  readonly archived: number;
  readonly failed: number;
  readonly lastArchivedWal?: string;
  readonly lastArchivedAt?: string;
  readonly lastFailedWal?: string;
  readonly lastFailedAt?: string;
  /** Seconds since the last segment was archived (undefined when none ever was). */
  readonly secondsSinceArchived?: number;
  readonly timeoutSeconds: number;
  /** Archiving fails now: the last failure is newer than the last success. */
  readonly failing: boolean;
}

/**
 * `backups.archive.enabled: false` on a server that archived: its settings file says off, so the
 * next restart stops archiving (true when it changed; the status line says a restart is pending).
 */
export function disableArchiving(server: LocalPostgres): boolean {
  const file = path.join(server.dataDir, ARCHIVE_CONF);
  const text = "# written by db-platform: archiving turned off (backups.archive.enabled: false)\narchive_mode = off\n";
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") === text) return false;
  fs.writeFileSync(file, text, { mode: 0o600 });
  if (asServerUser().length > 0) execFileSync("chown", ["postgres:postgres", file]);
  return true;
}

export class LocalArchive {
  constructor(readonly opts: LocalArchiveOptions) {}

  get credentialsDir(): string {
    return path.join(this.opts.server.dir, "archive");
  }

  /** `s3://<bucket>/<environment>/_archive`: beside the services' dumps, replicated with them on AWS. */
  get url(): string {
    return `s3://${this.opts.bucket}/${this.opts.environment}/_archive`;
  }

  /** The cluster's system identifier (pg_controldata), which names its archive. */
  async systemId(): Promise<string> {
    const text = await this.opts.server.tool("pg_controldata", ["-D", this.opts.server.dataDir]);
    const m = /Database system identifier:\s+(\d+)/.exec(text);
    if (!m) throw new Error(`pg_controldata of ${this.opts.server.opts.name} names no system identifier`);
    return m[1];
  }

  async location(): Promise<ArchiveLocation> {
    return {
      url: this.url,
      serverName: `${this.opts.server.opts.name}-${await this.systemId()}`,
      endpoint: this.opts.s3.endpoint,
      credentialsDir: this.credentialsDir,
    };
  }

  /**
   * Write the credential files and the archive settings, and make postgresql.conf include them.
   * Before the server starts (archive_mode takes a restart); true when the settings changed.
   */
  async configure(): Promise<boolean> {
    writeCredentials(this.credentialsDir, this.opts.s3.credentials());
    const commands = walCommands(await this.location(), this.opts.projectDir);
    const text = [
      "# written by db-platform: continuous archiving with barman-cloud (docs/point-in-time.md)",
      "archive_mode = on",
      `archive_command = ${confString(commands.archive)}`,
      `archive_timeout = ${this.opts.spec.timeoutSeconds}`,
      "",
    ].join("\n");
    const dataDir = this.opts.server.dataDir;
    const conf = path.join(dataDir, "postgresql.conf");
    const include = `include_if_exists = '${ARCHIVE_CONF}'`;
    if (!fs.readFileSync(conf, "utf8").includes(include)) fs.appendFileSync(conf, `${include}\n`);
    const file = path.join(dataDir, ARCHIVE_CONF);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) return false;
    fs.writeFileSync(file, text, { mode: 0o600 });
    if (asServerUser().length > 0) execFileSync("chown", ["postgres:postgres", file]);
    return true;
  }

  /** The archive's complete base backups, oldest first. */
  async baseBackups(): Promise<BaseBackup[]> {
    return listBaseBackups(this.opts.projectDir, await this.location());
  }

  /** Where the newest base backup's end is noted for this cluster, so a start need not list the archive. */
  private async notedFile(): Promise<string> {
    return path.join(this.credentialsDir, `newest-base-backup-${await this.systemId()}`);
  }

  /**
   * A base backup is due: none yet, or the newest ended more than baseBackupHours ago. The note
   * of the last one taken here answers without asking S3 while it is fresh (every `up` starts the
   * servers); otherwise the archive's own list decides.
   */
  async due(now = Date.now()): Promise<boolean> {
    const window = this.opts.spec.baseBackupHours * 3_600_000;
    try {
      const noted = Date.parse(fs.readFileSync(await this.notedFile(), "utf8").trim());
      if (now - noted <= window) return false;
    } catch {
      // no note: ask the archive
    }
    const newest = (await this.baseBackups()).at(-1);
    return !newest || now - Date.parse(newest.endTime) > window;
  }

  /**
   * Take a base backup now (an immediate checkpoint, streamed and compressed by barman-cloud as
   * the bootstrap superuser over the private socket), then delete what the recovery window no
   * longer needs (older base backups and their WAL). Returns the new backup and the seconds taken.
   */
  async baseBackup(): Promise<{ backup: BaseBackup; seconds: number; deleted: number }> {
    // A base backup is of use only with its WAL archived: refused while archiving is off, waits
    // for a restart, or fails (barman would report it DONE all the same).
    const h = await this.health();
    if (h.archiveMode !== "on" || h.failing) {
      throw new ArchiveError(
        `no base backup of server ${this.opts.server.opts.name}: ${h.archiveMode !== "on" ? (h.pendingRestart ? "archiving waits for a restart of the server (db-platform local stop, then start)" : `archiving is off (archive_mode ${h.archiveMode})`) : `archiving fails since ${h.lastFailedAt} (${h.lastFailedWal}); see ${this.opts.server.logFile}`}`,
      );
    }
    const started = performance.now();
    const l = await this.location();
    const before = new Set((await this.baseBackups()).map((b) => b.id));
    const { server } = this.opts;
    await barman(this.opts.projectDir, l, "barman-cloud-backup", [
      "--gzip",
      "-e",
      "AES256",
      "--immediate-checkpoint",
      "-h",
      server.socketDir,
      "-p",
      String(server.opts.port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      l.url,
      l.serverName,
    ]);
    // Its last segment archived before it counts.
    await this.flush();
    const seconds = (performance.now() - started) / 1000;
    const after = await this.baseBackups();
    const backup = after.find((b) => !before.has(b.id));
    if (!backup) throw new Error(`barman-cloud-backup of ${server.opts.name} ended without a new complete base backup in ${l.url}`);
    await barman(this.opts.projectDir, l, "barman-cloud-backup-delete", [
      "--retention-policy",
      `RECOVERY WINDOW OF ${this.opts.spec.recoveryWindowDays} DAYS`,
      l.url,
      l.serverName,
    ]);
    fs.writeFileSync(await this.notedFile(), `${backup.endTime}\n`, { mode: 0o600 });
    const kept = new Set((await this.baseBackups()).map((b) => b.id));
    return { backup, seconds, deleted: after.filter((b) => !kept.has(b.id)).length };
  }

  /** The server's archiving as pg_stat_archiver reports it (any login may read it). */
  async health(): Promise<ArchiveHealth> {
    const c = await this.opts.server.superuserClient();
    try {
      const { rows } = await c.query(`
        SELECT current_setting('archive_mode') AS mode,
               (SELECT bool_or(pending_restart) FROM pg_settings WHERE name IN ('archive_mode', 'archive_command')) AS pending,
               archived_count, failed_count, last_archived_wal, last_archived_time, last_failed_wal, last_failed_time,
               extract(epoch FROM now() - last_archived_time)::float8 AS since
          FROM pg_stat_archiver`);
      const r = rows[0];
      const iso = (v: Date | null) => (v ? v.toISOString() : undefined);
      return {
        server: this.opts.server.opts.name,
        archiveMode: String(r.mode),
        pendingRestart: r.pending === true,
        archived: Number(r.archived_count),
        failed: Number(r.failed_count),
        lastArchivedWal: r.last_archived_wal ?? undefined,
        lastArchivedAt: iso(r.last_archived_time),
        lastFailedWal: r.last_failed_wal ?? undefined,
        lastFailedAt: iso(r.last_failed_time),
        secondsSinceArchived: r.since === null ? undefined : Number(r.since),
        timeoutSeconds: this.opts.spec.timeoutSeconds,
        failing: r.last_failed_time !== null && (r.last_archived_time === null || r.last_failed_time > r.last_archived_time),
      };
    } finally {
      await c.end();
    }
  }

  /** The live server's current timeline: a recovery follows it, not one a promoted copy may have archived. */
  async timeline(): Promise<number> {
    const c = await this.opts.server.superuserClient();
    try {
      return Number((await c.query("SELECT timeline_id FROM pg_control_checkpoint()")).rows[0].timeline_id);
    } finally {
      await c.end();
    }
  }

  /**
   * Close the current WAL segment and wait until it is archived: everything written before this
   * call is then in the archive, with a commit after it (what a restore to a moment runs first).
   */
  async flush(timeoutMs = 60_000): Promise<string> {
    const c = await this.opts.server.superuserClient();
    try {
      // A commit stamped now, after any moment asked for: recovery stops at the first commit past its
      // target, and one that finds none ends before the target and is refused (PostgreSQL 13 on).
      await c.query("SELECT pg_current_xact_id()");
      const { rows } = await c.query<{ wal: string }>("SELECT pg_walfile_name(pg_switch_wal()) AS wal");
      const wal = rows[0].wal;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = (await c.query("SELECT last_archived_wal, last_failed_wal, last_failed_time FROM pg_stat_archiver")).rows[0];
        // Segment names sort in WAL order on one timeline.
        if (s.last_archived_wal && s.last_archived_wal.slice(0, 24) >= wal) return wal;
        if (Date.now() > deadline) {
          throw new Error(
            `server ${this.opts.server.opts.name}: WAL segment ${wal} was not archived within ${timeoutMs / 1000} s${s.last_failed_wal ? ` (archiving fails: ${s.last_failed_wal} at ${(s.last_failed_time as Date).toISOString()}; see ${this.opts.server.logFile})` : ""}`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await c.end();
    }
  }
}
