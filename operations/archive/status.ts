/** What `local start|status` and `backup run` say and do about a local server's continuous archive. */
import type { ArchiveHealth, LocalArchive } from "./archive";

const ago = (seconds: number) =>
  seconds < 120
    ? `${Math.round(seconds)} s ago`
    : seconds < 7200
      ? `${Math.round(seconds / 60)} min ago`
      : `${(seconds / 3600).toFixed(1)} h ago`;

/** Take a base backup when the newest is older than backups.archive.baseBackupHours (or there is none). */
export async function baseBackupWhenDue(archive: LocalArchive, out: (s: string) => void): Promise<void> {
  if (!(await archive.due())) return;
  const name = archive.opts.server.opts.name;
  const h = await archive.health();
  if (h.archiveMode !== "on" || h.failing) {
    // Not an error of the start: the status line and the audit say what is wrong.
    out(`${name}: no base backup yet: ${h.archiveMode !== "on" ? "archiving starts at the server's next restart" : "archiving fails"}\n`);
    return;
  }
  out(`${name}: taking a base backup into ${archive.url} (barman-cloud)\n`);
  const r = await archive.baseBackup();
  out(
    `${name}: base backup ${r.backup.id} in ${r.seconds.toFixed(1)} s (WAL ${r.backup.beginWal}–${r.backup.endWal})${r.deleted ? `; ${r.deleted} older one(s) past the ${archive.opts.spec.recoveryWindowDays}-day recovery window deleted` : ""}\n`,
  );
}

/** One line: where the server archives, the last segment archived, failures, and a pending restart. */
export async function archiveStatusLine(archive: LocalArchive): Promise<string> {
  const h = await archive.health();
  const name = archive.opts.server.opts.name;
  if (h.archiveMode !== "on") {
    return `${name}: archiving ${h.pendingRestart ? "configured, starts at the server's next restart (db-platform local stop, then start)" : `off (archive_mode ${h.archiveMode})`}\n`;
  }
  const last = h.lastArchivedWal ? `last ${h.lastArchivedWal} ${ago(h.secondsSinceArchived ?? 0)}` : "nothing archived yet";
  const failing = h.failing ? `; FAILING since ${h.lastFailedAt} (${h.lastFailedWal}): see ${archive.opts.server.logFile}` : "";
  return `${name}: archiving to ${archive.url} every ${h.timeoutSeconds} s at most (${last}, ${h.archived} archived, ${h.failed} failed${failing})\n`;
}

/** A server's archive as `stats` and the audit read it: pg_stat_archiver and the base backups in S3. */
export interface ArchiveReading {
  readonly server: string;
  readonly url: string;
  readonly health?: ArchiveHealth;
  readonly baseBackups: number;
  readonly newestBaseBackup?: { readonly id: string; readonly endTime: string };
  readonly baseBackupHours: number;
  readonly recoveryWindowDays: number;
  /** Why the archive or the server could not be read. */
  readonly error?: string;
}

export async function readArchive(archive: LocalArchive): Promise<ArchiveReading> {
  const base = {
    server: archive.opts.server.opts.name,
    url: archive.url,
    baseBackupHours: archive.opts.spec.baseBackupHours,
    recoveryWindowDays: archive.opts.spec.recoveryWindowDays,
  };
  let health: ArchiveHealth | undefined;
  try {
    health = await archive.health();
    const backups = await archive.baseBackups();
    const newest = backups.at(-1);
    return { ...base, health, baseBackups: backups.length, newestBaseBackup: newest && { id: newest.id, endTime: newest.endTime } };
  } catch (e) {
    return { ...base, health, baseBackups: 0, error: (e as Error).message };
  }
}

/** One line of `stats`: archiving and the newest base backup. */
export function archiveLine(a: ArchiveReading, now = Date.now()): string {
  const h = a.health;
  if (!h) return `archive of ${a.server}: could not be read: ${a.error}`;
  const last = h.lastArchivedWal
    ? `last segment ${h.lastArchivedWal} archived ${ago(h.secondsSinceArchived ?? 0)}`
    : "nothing archived yet";
  const newest = a.error
    ? `base backups could not be listed: ${a.error}`
    : a.newestBaseBackup
      ? `newest base backup ${a.newestBaseBackup.id} (${ago((now - Date.parse(a.newestBaseBackup.endTime)) / 1000)}), ${a.baseBackups} kept for a ${a.recoveryWindowDays}-day window`
      : "no base backup yet";
  const mode = h.archiveMode === "on" ? "" : ` archive_mode ${h.archiveMode}${h.pendingRestart ? " (restart pending)" : ""};`;
  return `archive of ${a.server} (${a.url}):${mode} ${last}, ${h.archived} archived, ${h.failed} failed${h.failing ? ` (FAILING since ${h.lastFailedAt})` : ""}; ${newest}`;
}
