/** `archive-health`: reported from each local server's archiver and archive (operations/audit/archives.ts checks it). */
import type { BackupRule } from "./rule";

export const archiveHealth: BackupRule = {
  id: "archive-health",
  severity: "high",
  source: "backups",
  reportedWhen:
    "with `backups.archive` on a local server: archiving is off or waits for a restart, its last attempt failed, completed WAL segments wait unarchived, its newest base backup is older than twice `backups.archive.baseBackupHours` (or there is none), or the archive cannot be read",
};
