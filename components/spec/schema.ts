/**
 * The shape of the `db-platform:*` stack config, as zod schemas. Only shape and local rules live
 * here; rules that need the whole config (references, name collisions, environment strictness)
 * live in validate.ts. Defaults that depend on the environment are applied in defaults.ts, so
 * every optional field here is left undefined when the stack does not set it.
 */
import { z } from "zod";

/** CloudWatch Logs' retention values in days (PutRetentionPolicy), never-expire excluded. */
export const LOG_RETENTION_DAYS: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** PostgreSQL major versions the platform knows how to host. */
export const SUPPORTED_VERSIONS = ["14", "15", "16", "17", "18"] as const;
export type PostgresVersion = (typeof SUPPORTED_VERSIONS)[number];
/** The majors `hosting: local` runs: those with pinned builds (scripts/postgres/wheels.tsv). */
export const LOCAL_POSTGRES_VERSIONS = ["15", "16", "17", "18"] as const;

export const HOSTING_KINDS = ["rds", "local", "container", "external"] as const;
export type HostingKind = (typeof HOSTING_KINDS)[number];

/** Hosting kinds that can have read replicas: RDS replicas and streaming standbys (local, container). */
export const REPLICA_HOSTING: ReadonlySet<HostingKind> = new Set(["rds", "local", "container"]);

export const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"] as const;

const name = z.string().regex(/^[a-z][a-z0-9-]*$/, {
  message: "must be lower-case letters, digits and -, starting with a letter",
});

const version = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .pipe(
    z.enum(SUPPORTED_VERSIONS, {
      message: `must be a supported PostgreSQL major version (${SUPPORTED_VERSIONS.join(", ")})`,
    }),
  );

const port = z.number().int().min(1).max(65535);
const positiveInt = z.number().int().positive();

export const networkSchema = z.strictObject({
  /** VPC the server's security group lives in. */
  vpcId: z.string().min(1),
  /** Private subnets for the DB subnet group (at least two, in different AZs). */
  subnetIds: z.array(z.string().min(1)).min(2, { message: "needs at least two subnets (RDS requires two AZs)" }),
  /** CIDR blocks allowed to reach port 5432. @default [] (nothing) */
  allowedCidrs: z
    .array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, { message: "must be an IPv4 CIDR such as 10.0.0.0/16" }))
    .optional(),
  /** Security groups allowed to reach port 5432. @default [] */
  allowedSecurityGroupIds: z.array(z.string().min(1)).optional(),
});

const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: "must be an AWS region such as eu-west-1" });

const parameterValues = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

export const replicaSchema = z.strictObject({
  /** Replica name; the RDS identifier becomes `<environment>-<name>`. */
  name,
  /** RDS: the AWS region of a cross-region replica. @default the primary's region */
  region: awsRegion.optional(),
  /** RDS: @default the primary's instance class */
  instanceClass: z
    .string()
    .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { message: "must be an RDS instance class such as db.t4g.medium" })
    .optional(),
  /** RDS: storage autoscaling ceiling in GiB. @default the primary's */
  maxAllocatedStorage: z.number().int().min(20).max(65536).optional(),
  /** RDS: parameters of the replica's own parameter group, on top of the primary's. @default {} */
  parameters: parameterValues.optional(),
  /** RDS cross-region replicas: the VPC and private subnets in the replica's region (required there). */
  network: networkSchema.optional(),
  /** Local and container standbys: the port on 127.0.0.1. @default the primary's port + 1 + the replica's index */
  port: port.optional(),
});

const alarmThresholds = z.strictObject({
  /** @default 80 */
  cpuPercent: z.number().min(1).max(100).optional(),
  /** Alarm when free storage falls below this share of allocated storage. @default 10 */
  freeStoragePercent: z.number().min(1).max(99).optional(),
  /** @default 200 */
  connections: positiveInt.optional(),
  /** Alarm when a replica lags the primary by more than this many seconds. @default 60 (prod 30) */
  replicaLagSeconds: positiveInt.optional(),
  /** Per service on this server: alarm when its connections exceed this share of its logins' limits. @default 80 */
  serviceConnectionsPercent: z.number().min(1).max(100).optional(),
  /** Per service on this server: alarm when its estimated p95 statement time exceeds this. @default 500 */
  serviceP95Ms: positiveInt.optional(),
});

/** A service's own alarm thresholds (services on rds servers): the server's `alarms.service…` otherwise. */
export const serviceAlarmsSchema = z.strictObject({
  /** @default the server's alarms.serviceConnectionsPercent */
  connectionsPercent: z.number().min(1).max(100).optional(),
  /** @default the server's alarms.serviceP95Ms */
  p95Ms: positiveInt.optional(),
});

const common = {
  version: version.optional(),
  replicas: z.array(replicaSchema).optional(),
  /** The replica that serves the services' read-only logins. @default the first replica in the primary's region; none: the primary */
  reader: name.optional(),
};

/**
 * The phases of an RDS major upgrade, in order, each applied by one `up` (docs/upgrades.md):
 * cross-region replicas lose their deletion protection, then leave the stack, then the primary
 * (and with it its in-region replicas) is upgraded. Removing the block finishes it.
 */
export const RDS_UPGRADE_PHASES = ["unprotect-replicas", "detach-replicas", "upgrade"] as const;
export type RdsUpgradePhase = (typeof RDS_UPGRADE_PHASES)[number];

/** Written by `db-platform upgrade` only: an RDS major upgrade in progress from `from` to `version`. */
export const rdsUpgradeSchema = z.strictObject({
  /** The major the server ran before the upgrade. */
  from: version,
  phase: z.enum(RDS_UPGRADE_PHASES, { message: `must be one of ${RDS_UPGRADE_PHASES.join(", ")}` }),
});

/** RDS Proxy in front of an RDS server (docs/pooling.md): its pool of server connections, shared by the pooled logins. */
export const rdsProxySchema = z.strictObject({
  /** Share of the instance's max_connections the proxy may open. @default 90 */
  maxConnectionsPercent: z.number().int().min(1).max(100).optional(),
  /** Share of max_connections it may keep idle; at most maxConnectionsPercent. @default 50 */
  maxIdleConnectionsPercent: z.number().int().min(0).max(100).optional(),
  /** Seconds a client waits for a server connection before its connection fails. @default 120 */
  connectionBorrowTimeoutSeconds: z.number().int().min(0).max(3600).optional(),
  /** Seconds an idle client connection is kept. @default 1800 */
  idleClientTimeoutSeconds: z.number().int().min(1).max(28800).optional(),
  /** The alarm when clients wait longer than this for a server connection (p99 over 5 min). @default 500 */
  waitAlarmMs: z.number().int().min(1).optional(),
});

export const rdsServerSchema = z.strictObject({
  hosting: z.literal("rds"),
  ...common,
  /** RDS Proxy in front of the primary, for the services with `pool`. @default none */
  pooler: rdsProxySchema.optional(),
  /** Set and cleared by `db-platform upgrade apply|rollback`, never by hand. @default none */
  upgrade: rdsUpgradeSchema.optional(),
  instanceClass: z
    .string()
    .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { message: "must be an RDS instance class such as db.t4g.medium" })
    .optional(),
  allocatedStorage: z.number().int().min(20).max(65536).optional(),
  maxAllocatedStorage: z.number().int().min(20).max(65536).optional(),
  multiAz: z.boolean().optional(),
  deletionProtection: z.boolean().optional(),
  skipFinalSnapshot: z.boolean().optional(),
  backupRetentionDays: z.number().int().min(0).max(35).optional(),
  /** Days between rotations of the master user's RDS-managed secret (Secrets Manager's range). @default 7 */
  masterPasswordRotationDays: z.number().int().min(1).max(1000).optional(),
  backupWindow: z
    .string()
    .regex(/^\d\d:\d\d-\d\d:\d\d$/, { message: "must look like 03:00-04:00 (UTC)" })
    .optional(),
  maintenanceWindow: z
    .string()
    .regex(/^[a-z]{3}:\d\d:\d\d-[a-z]{3}:\d\d:\d\d$/, { message: "must look like sun:04:30-sun:05:30 (UTC)" })
    .optional(),
  performanceInsightsRetentionDays: z.number().int().min(7).optional(),
  monitoringIntervalSeconds: z
    .union([z.literal(0), z.literal(1), z.literal(5), z.literal(10), z.literal(15), z.literal(30), z.literal(60)])
    .optional(),
  publiclyAccessible: z.boolean().optional(),
  requireTls: z.boolean().optional(),
  slowQueryMs: z.number().int().min(-1).optional(),
  masterUsername: z.string().optional(),
  sslMode: z.enum(SSL_MODES).optional(),
  network: networkSchema.optional(),
  parameters: parameterValues.optional(),
  alarms: alarmThresholds.optional(),
});

/** How a pooler hands server connections to clients: per transaction, or for a client's whole session. */
export const POOL_MODES = ["transaction", "session"] as const;
export type PoolMode = (typeof POOL_MODES)[number];
const poolMode = z.enum(POOL_MODES, { message: `must be one of ${POOL_MODES.join(", ")}` });

/** A connection pooler beside the server and each standby (local: PgBouncer; docs/pooling.md). */
export const poolerSchema = z.strictObject({
  /** The pooler's port on 127.0.0.1; a standby's pooler gets the next ones. @default the server's port + 100 */
  port: port.optional(),
  /** The services' default pool mode. @default transaction */
  mode: poolMode.optional(),
  /** Client connections the pooler accepts in all. @default 1000 */
  maxClientConnections: positiveInt.optional(),
  /** Server connections per pooled login, unless the service says. @default 20 */
  defaultPoolSize: positiveInt.optional(),
});

/** What a service gets from its server's pooler: its app and read-only logins go through it. */
export const servicePoolSchema = z.strictObject({
  /** Server connections per pooled login. @default the pooler's defaultPoolSize */
  size: positiveInt.optional(),
  /** @default the pooler's mode */
  mode: poolMode.optional(),
});

export const localServerSchema = z.strictObject({
  hosting: z.literal("local"),
  ...common,
  /** PgBouncer beside the server and each standby. @default none */
  pooler: poolerSchema.optional(),
  /** Must be a loopback address: a local server never listens beyond this machine. @default 127.0.0.1 */
  host: z.string().optional(),
  /** @default 5432 */
  port: port.optional(),
  /** Admin login: CREATEDB and CREATEROLE, deliberately not a superuser. @default platform_admin */
  adminUser: z.string().optional(),
  /** @default disable (loopback only) */
  sslMode: z.enum(SSL_MODES).optional(),
});

export const externalServerSchema = z.strictObject({
  hosting: z.literal("external"),
  ...common,
  host: z.string().min(1),
  /** @default 5432 */
  port: port.optional(),
  adminUser: z.string().min(1),
  /** @default verify-full */
  sslMode: z.enum(SSL_MODES).optional(),
  /** Whether the admin login is a superuser. @default false */
  superuser: z.boolean().optional(),
});

export const containerServerSchema = z.strictObject({
  hosting: z.literal("container"),
  ...common,
  /** Host port, bound to 127.0.0.1 only. @default 5432 */
  port: port.optional(),
  /** @default the pinned image for the version (see components/servers/container.ts) */
  image: z.string().optional(),
});

export const serverSchema = z.discriminatedUnion(
  "hosting",
  [rdsServerSchema, localServerSchema, externalServerSchema, containerServerSchema],
  { message: `hosting must be one of ${HOSTING_KINDS.join(", ")}` },
);

const schemaList = z.array(z.string().min(1));

export const scopedRoleSchema = z.strictObject({
  /** Schemas this login may read; "*" means every schema of the service. */
  read: schemaList.optional(),
  /** Schemas this login may read and write; "*" means every schema of the service. */
  write: schemaList.optional(),
  /** @default 20 */
  connectionLimit: z.number().int().min(-1).optional(),
});

export const MOVE_PHASES = ["copy", "serve", "retire", "done"] as const;

/**
 * A move of a service's data in progress (`db-platform move`, docs/data-moves.md). Written and
 * advanced by the command; edited by hand only to abandon a move the command cannot roll back.
 */
export const moveSchema = z.strictObject({
  /** Where the service goes. */
  to: z.strictObject({
    server: z.string().min(1),
    isolation: z.enum(["database", "schema"]),
    /** The shared database (isolation schema) or an override of `<service>_db` (isolation database). */
    database: z.string().optional(),
  }),
  /** copy: the new place exists, the old one serves; serve: the new one serves; retire: the old one goes; done: the service is at `to`, its resources take their own names. */
  phase: z.enum(MOVE_PHASES),
  /** The manifest of the verified copy the new place was restored from. */
  export: z.string().min(1).optional(),
});

/**
 * The engine reads stack files as YAML 1.1: an unquoted ISO 8601 time there is a timestamp, which
 * reaches the program in Go's format (`2026-12-03 13:19:23.379 +0000 UTC`). Read back as ISO.
 */
function fromEngineTime(v: unknown): unknown {
  const m = typeof v === "string" ? /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2}) [A-Z]+$/.exec(v) : null;
  return m ? `${m[1]}T${m[2]}${m[3]}:${m[4]}` : v;
}

/** A login's rotation (`db-platform rotate`, docs/rotation.md): written by the command, not by hand. */
export const credentialSchema = z.strictObject({
  /** 1 after the first rotation. */
  generation: z.number().int().min(1),
  /** When the current generation was made (ISO 8601). */
  rotatedAt: z.preprocess(fromEngineTime, z.iso.datetime({ offset: true })),
  /** Written but not yet applied and verified: `db-platform rotate` resumes it. */
  pending: z.boolean().optional(),
});

export const serviceSchema = z.strictObject({
  server: z.string().min(1),
  /** @default database */
  isolation: z.enum(["database", "schema"]).optional(),
  /** The shared database (isolation schema) or an override of `<service>_db` (isolation database). */
  database: z.string().optional(),
  /** The schemas the service owns. @default [<service>] */
  schemas: schemaList.min(1).optional(),
  /** Extra login roles scoped to chosen schemas, named `<service>_<key>`. */
  roles: z.record(z.string(), scopedRoleSchema).optional(),
  /** Trusted extensions to create in the service's database. */
  extensions: z.array(z.string().min(1)).optional(),
  /** Connection limit of the application login. @default 100 */
  connectionLimit: z.number().int().min(-1).optional(),
  /**
   * Lets `up` delete or replace the service's database or schemas, with their data (a removed
   * service, a changed isolation or database). Otherwise they are protected in every environment.
   * @default false
   */
  allowDataLoss: z.boolean().optional(),
  /**
   * Isolation schema: the service's owner role (and so its migrator) holds CREATE on the shared
   * database, for migration tools that run `CREATE SCHEMA IF NOT EXISTS` (Drizzle's migrate(),
   * Prisma): PostgreSQL checks CREATE on the database before it looks whether the schema exists.
   * A schema it creates is reported by the audit until declared (docs/service-teams.md).
   * @default false
   */
  createSchemas: z.boolean().optional(),
  /** Thresholds of the service's CloudWatch alarms (rds servers; docs/stats.md). */
  alarms: serviceAlarmsSchema.optional(),
  /** The app and read-only logins through the server's pooler (migrations always connect directly). @default direct */
  pool: servicePoolSchema.optional(),
  /** A move in progress, written by `db-platform move` (docs/data-moves.md). */
  move: moveSchema.optional(),
  /** How often the service's logins are due for rotation, in days (`90d`); the audit reports an older credential (docs/rotation.md). */
  rotation: z
    .string()
    .regex(/^[1-9][0-9]{0,3}d$/, { message: 'must be a period in days, such as "90d"' })
    .optional(),
  /** Each login's credential generation by login key, written by `db-platform rotate` (docs/rotation.md). */
  credentials: z.record(z.string(), credentialSchema).optional(),
});

export const alarmsSchema = z.strictObject({
  /** An email address subscribed to the alarm topic. */
  email: z.string().email().optional(),
});

export const monitoringSchema = z.strictObject({
  /** How often each RDS server's publisher runs: an EventBridge Scheduler rate. @default rate(5 minutes) */
  schedule: z
    .string()
    .regex(/^rate\((\d+) (minute|minutes|hour|hours)\)$/, { message: "must be a rate such as rate(5 minutes)" })
    .optional(),
  /** Seconds between the two snapshots a run compares. @default 60 */
  windowSeconds: z.number().int().min(10).max(600).optional(),
});

export const BACKUP_STORAGE = ["s3", "local"] as const;

export const backupsSchema = z.strictObject({
  /** `s3`: a bucket the stack creates in AWS; `local`: the project's S3-compatible server on 127.0.0.1. */
  storage: z.enum(BACKUP_STORAGE),
  /** Bucket name. @default `db-platform-<environment>-backups` (s3: with the account id appended) */
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: "must be a valid S3 bucket name (3-63 lower-case letters, digits, . and -)" })
    .optional(),
  /** Newest backup older than this raises the alarm and fails `drill`; at most a week (CloudWatch's alarm window). @default 24 */
  rpoHours: positiveInt
    .max(168, { message: "must be at most 168 (a week): the backup-age alarm evaluates one window of rpoHours" })
    .optional(),
  /** s3: EventBridge Scheduler expression of the logical backup runs. @default cron(0 3 * * ? *) */
  schedule: z
    .string()
    .regex(/^(cron|rate)\(.+\)$/, { message: "must be an EventBridge Scheduler expression such as cron(0 3 * * ? *) or rate(6 hours)" })
    .optional(),
  /** s3: days before dumps move to Glacier Instant Retrieval. @default 30 */
  archiveAfterDays: positiveInt.optional(),
  /** s3: days before dumps expire. @default prod 365, else 35 */
  expireAfterDays: positiveInt.optional(),
  /** s3: days older (noncurrent) object versions are kept. @default 30 */
  noncurrentExpireAfterDays: positiveInt.optional(),
  /** s3: Object Lock retention in days (COMPLIANCE mode); 0 turns it off. @default prod 14, else 0 */
  objectLockDays: z.number().int().min(0).max(3650).optional(),
  /**
   * s3: days the runner's CloudWatch logs and the backup bucket's access logs are kept (one of
   * CloudWatch's retention values). @default prod 365, else 90; at least 365 in prod
   */
  logRetentionDays: z
    .number()
    .int()
    .refine((d) => LOG_RETENTION_DAYS.includes(d), {
      message: `must be one of CloudWatch Logs' retention values: ${LOG_RETENTION_DAYS.join(", ")}`,
    })
    .optional(),
  /** s3: region RDS automated backups are replicated to (cross-region). @default none; required in prod */
  replicaRegion: awsRegion.optional(),
  /** local: the S3-compatible server's port on 127.0.0.1. @default 9400 */
  port: port.optional(),
  /** local: continuous archiving of the local servers with barman-cloud (docs/point-in-time.md). */
  archive: z
    .strictObject({
      /** Off only when said: a local server then has no point-in-time recovery. @default true */
      enabled: z.boolean().optional(),
      /** archive_timeout: at most this many seconds of writes are not archived yet. @default 60 */
      timeoutSeconds: z
        .number()
        .int()
        .min(10, { message: "must be at least 10: a segment switch every few seconds fills the archive with 16 MB segments" })
        .max(3600, { message: "must be at most 3600: an hour of writes could be lost with the server" })
        .optional(),
      /** A base backup is taken when the newest is older than this (local start, backup run). @default 24 */
      baseBackupHours: positiveInt.max(168).optional(),
      /** Base backups and WAL are kept for recovery to any moment of this many days. @default prod 14, else 7 */
      recoveryWindowDays: positiveInt.max(3650).optional(),
    })
    .optional(),
});

/** The whole `db-platform:` namespace; keys are the part after the colon. */
export const configSchema = z.strictObject({
  environment: name,
  servers: z.record(name, serverSchema).refine((s) => Object.keys(s).length > 0, { message: "declare at least one server" }),
  services: z.record(name, serviceSchema).optional(),
  network: networkSchema.optional(),
  alarms: alarmsSchema.optional(),
  tags: z.record(z.string(), z.string()).optional(),
  /** Logical per-service backups (and RDS automated-backup replication). */
  backups: backupsSchema.optional(),
  /** Secret: admin passwords of `local` and `external` servers, by server name. */
  adminPasswords: z.record(z.string(), z.string()).optional(),
  /** The per-service metrics publisher on AWS (stacks with rds servers and backups.storage s3). */
  monitoring: monitoringSchema.optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawServer = z.infer<typeof serverSchema>;
export type RawRdsServer = z.infer<typeof rdsServerSchema>;
export type RawService = z.infer<typeof serviceSchema>;
export type RawMove = z.infer<typeof moveSchema>;
export type RawMonitoring = z.infer<typeof monitoringSchema>;
export type RawNetwork = z.infer<typeof networkSchema>;
export type RawBackups = z.infer<typeof backupsSchema>;
