/** What `local start|status` and `backup run` say and do about a local server's continuous archive. */
import type { LocalArchive } from "./archive";

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
