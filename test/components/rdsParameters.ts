/** What every RDS parameter group of the platform holds, in order (components/servers/rds.ts rdsParameters). */
export const PLATFORM_PARAMETERS = [
  { name: "rds.force_ssl", value: "1", applyMethod: "pending-reboot" },
  { name: "log_min_duration_statement", value: "1000", applyMethod: "immediate" },
  { name: "log_connections", value: "1", applyMethod: "immediate" },
  { name: "log_disconnections", value: "1", applyMethod: "immediate" },
  { name: "password_encryption", value: "scram-sha-256", applyMethod: "immediate" },
  // Per-service statistics (docs/stats.md); utility statements keep their literals, so they are not tracked.
  { name: "shared_preload_libraries", value: "pg_stat_statements", applyMethod: "pending-reboot" },
  { name: "track_io_timing", value: "1", applyMethod: "immediate" },
  { name: "pg_stat_statements.track", value: "top", applyMethod: "immediate" },
  { name: "pg_stat_statements.track_utility", value: "0", applyMethod: "immediate" },
];
