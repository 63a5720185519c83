/** `backup-freshness`: reported from the backup bucket, not the catalogs (operations/audit/backups.ts checks it). */
import type { BackupRule } from "./rule";

export const backupFreshness: BackupRule = {
  id: "backup-freshness",
  severity: "high",
  source: "backups",
  reportedWhen:
    "with `backups` configured: a service has no committed backup, its latest backup is older than `backups.rpoHours`, or its backups cannot be listed",
};
