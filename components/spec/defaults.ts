/**
 * Every default the platform applies, in one place. Secure settings are on everywhere; `strict`
 * environments (prod) additionally get high availability and longer retention. A stack relaxes
 * a default only by setting the key explicitly, and the policy pack sees the result.
 */
import type { PostgresVersion } from "./schema";

/** Environments that get the strict defaults and checks. */
export const STRICT_ENVIRONMENTS: ReadonlySet<string> = new Set(["prod", "production"]);

export const DEFAULT_VERSION: PostgresVersion = "16";

export interface RdsDefaults {
  instanceClass: string;
  allocatedStorage: number;
  maxAllocatedStorage: number;
  multiAz: boolean;
  deletionProtection: boolean;
  skipFinalSnapshot: boolean;
  backupRetentionDays: number;
  masterPasswordRotationDays: number;
  backupWindow: string;
  maintenanceWindow: string;
  performanceInsightsRetentionDays: number;
  monitoringIntervalSeconds: number;
  publiclyAccessible: boolean;
  requireTls: boolean;
  slowQueryMs: number;
  masterUsername: string;
  sslMode: string;
  alarms: {
    cpuPercent: number;
    freeStoragePercent: number;
    connections: number;
    replicaLagSeconds: number;
    serviceConnectionsPercent: number;
    serviceP95Ms: number;
  };
}

export function rdsDefaults(strict: boolean): RdsDefaults {
  return {
    instanceClass: strict ? "db.m7g.large" : "db.t4g.micro",
    allocatedStorage: 20,
    maxAllocatedStorage: strict ? 500 : 100,
    multiAz: strict,
    deletionProtection: strict,
    // A final snapshot is taken everywhere; skipping it is a relaxation a stack must state.
    skipFinalSnapshot: false,
    backupRetentionDays: strict ? 14 : 7,
    // RDS's own default for the master user's managed secret, stated in the stack.
    masterPasswordRotationDays: 7,
    backupWindow: "02:00-03:00",
    maintenanceWindow: "sun:04:00-sun:05:00",
    performanceInsightsRetentionDays: 7,
    monitoringIntervalSeconds: 60,
    publiclyAccessible: false,
    requireTls: true,
    slowQueryMs: 1000,
    masterUsername: "platform_admin",
    sslMode: "require",
    alarms: {
      cpuPercent: 80,
      freeStoragePercent: 10,
      connections: 200,
      replicaLagSeconds: strict ? 30 : 60,
      serviceConnectionsPercent: 80,
      serviceP95Ms: 500,
    },
  };
}

/** A local server's max_connections (operations/local/postgres.ts writes it). */
export const LOCAL_MAX_CONNECTIONS = 200;

/** A server's pooler, where it declares one (docs/pooling.md). */
/** RDS Proxy (`servers.<name>.pooler` on rds): the AWS defaults, and a 500 ms alarm on waiting clients. */
export const RDS_PROXY_DEFAULTS = {
  maxConnectionsPercent: 90,
  maxIdleConnectionsPercent: 50,
  connectionBorrowTimeoutSeconds: 120,
  idleClientTimeoutSeconds: 1800,
  waitAlarmMs: 500,
} as const;

export const POOLER_DEFAULTS = { portOffset: 100, mode: "transaction", maxClientConnections: 1000, defaultPoolSize: 20 } as const;

export const LOCAL_DEFAULTS = {
  host: "127.0.0.1",
  port: 5432,
  adminUser: "platform_admin",
  // Loopback only (validation refuses other hosts), so no TLS by default.
  sslMode: "disable",
} as const;

export const EXTERNAL_DEFAULTS = { port: 5432, sslMode: "verify-full", superuser: false } as const;

export const CONTAINER_DEFAULTS = { port: 5432 } as const;

/** The container image's bootstrap superuser; only the platform uses it. */
export const CONTAINER_ADMIN_USER = "platform_admin";

/** The login container standbys replicate with: REPLICATION only, from the server's own network. */
export const CONTAINER_REPLICATION_USER = "platform_replicator";

/**
 * The platform's monitoring login on every server: a member of `pg_monitor` (statistics, never
 * rows) with CONNECT on the service databases, nothing else (`db-platform stats`, docs/stats.md).
 */
export const MONITOR_ROLE = "db_platform_monitor";

/** The only cluster-wide role the monitoring login joins. */
export const MONITOR_MEMBERSHIP = "pg_monitor";

/**
 * Server settings for per-service statistics (docs/stats.md): statement statistics loaded,
 * I/O timing on, utility statements (which keep their literals, e.g. passwords) not tracked.
 */
export const STATS_SETTINGS: Readonly<Record<string, string>> = {
  shared_preload_libraries: "pg_stat_statements",
  track_io_timing: "on",
  "pg_stat_statements.track": "top",
  "pg_stat_statements.track_utility": "off",
};

/** The bootstrap superuser of a `local` server (reachable only through its private socket). */
export const LOCAL_BOOTSTRAP_SUPERUSER = "postgres";

/** Pinned images per major version; tags are exact minor releases, never `latest`. */
export const CONTAINER_IMAGES: Readonly<Record<PostgresVersion, string>> = {
  "14": "postgres:14.19-bookworm",
  "15": "postgres:15.14-bookworm",
  "16": "postgres:16.10-bookworm",
  "17": "postgres:17.6-bookworm",
  "18": "postgres:18.0-bookworm",
};

export const ROLE_CONNECTION_LIMITS = { app: 100, readonly: 20, migrator: 5, scoped: 20 } as const;

/** Extensions that open a path to other databases or servers; never created in a service database. */
export const FORBIDDEN_EXTENSIONS: ReadonlySet<string> = new Set(["dblink", "postgres_fdw", "file_fdw", "adminpack"]);

/**
 * Extensions a service may ask for: PostgreSQL's trusted extensions (`trusted = true` in their
 * control files, 15 to 18), which a non-superuser admin holding CREATE on the database may create,
 * and which RDS allows its master user. Anything else would need a superuser.
 */
export const ALLOWED_EXTENSIONS: readonly string[] = [
  "btree_gin",
  "btree_gist",
  "citext",
  "cube",
  "dict_int",
  "fuzzystrmatch",
  "hstore",
  "intarray",
  "isn",
  "lo",
  "ltree",
  "pg_trgm",
  "pgcrypto",
  "seg",
  "tablefunc",
  "tcn",
  "tsm_system_rows",
  "tsm_system_time",
  "unaccent",
  "uuid-ossp",
];

/** Logical backups: keep a day's RPO everywhere; prod keeps a year, locks two weeks, archives after a month. */
/** The least log retention strict environments accept (the runner's logs, the bucket's access logs). */
export const STRICT_LOG_RETENTION_DAYS = 365;

/** The login rotation functions' logs (components/servers/loginRotation.ts): a year, in every environment. */
export const ROTATION_LOG_RETENTION_DAYS = STRICT_LOG_RETENTION_DAYS;

/** Days between Secrets Manager's rotations of a login secret on AWS where `services.<name>.rotation` is unset. */
export const LOGIN_ROTATION_DAYS = 30;

export function backupDefaults(strict: boolean, environment: string) {
  return {
    bucket: `db-platform-${environment}-backups`,
    rpoHours: 24,
    schedule: "cron(0 3 * * ? *)",
    archiveAfterDays: 30,
    expireAfterDays: strict ? 365 : 35,
    noncurrentExpireAfterDays: 30,
    objectLockDays: strict ? 14 : 0,
    logRetentionDays: strict ? 365 : 90,
    port: 9400,
  };
}

/** Local servers' continuous archive (backups.archive; docs/point-in-time.md). */
export const ARCHIVE_DEFAULTS = { timeoutSeconds: 60, baseBackupHours: 24, recoveryWindowDays: 7 } as const;

/** The CloudWatch namespace and metrics the backup runner publishes; the backup alarms watch them. */
export const BACKUP_METRICS = { namespace: "DbPlatform/Backups", completed: "BackupsCompleted", failed: "BackupsFailed" } as const;

/** The per-service metrics publisher's defaults (docs/stats.md, "On AWS"). */
export const MONITORING_DEFAULTS = { schedule: "rate(5 minutes)", windowSeconds: 60 } as const;

/** What the publisher tells CloudWatch, per service (dimensions Environment, Server, Service). */
export const SERVICE_METRICS = {
  namespace: "DbPlatform/Services",
  connections: "Connections",
  saturation: "ConnectionSaturation",
  idleInTransaction: "IdleInTransaction",
  queriesPerSecond: "QueriesPerSecond",
  meanMs: "LatencyMean",
  p95Ms: "LatencyP95",
  p99Ms: "LatencyP99",
  slowCalls: "SlowCalls",
  xidAge: "TransactionIdAge",
  /** Per server (dimensions Environment, Server): 1 after each run that read the server. */
  published: "PublisherRuns",
} as const;
