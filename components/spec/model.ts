/**
 * The validated, fully defaulted model the components are built from. Everything here is plain
 * data known at preview time: names and counts never depend on resource outputs.
 */
import type { HostingKind, PoolMode, PostgresVersion, RawNetwork, RdsUpgradePhase } from "./schema";

/** An RDS read replica, fully defaulted from its primary. */
export interface RdsReplicaSpec {
  readonly name: string;
  /** The replica's region: the primary's for same-region replicas. */
  readonly region: string;
  readonly crossRegion: boolean;
  readonly instanceClass: string;
  readonly maxAllocatedStorage: number;
  /** The primary's parameters with the replica's own on top. */
  readonly parameters: Readonly<Record<string, string>>;
  /** Cross-region replicas: the VPC and subnets in the replica's region. */
  readonly network?: Required<RawNetwork>;
}

/** A streaming standby of a local or container primary, on its own port. */
export interface StandbyReplicaSpec {
  readonly name: string;
  readonly port: number;
}

interface ServerBase {
  readonly name: string;
  readonly version: PostgresVersion;
  /** The replica that serves read-only logins; undefined: the primary serves them. */
  readonly reader?: string;
}

export interface RdsAlarmThresholds {
  readonly cpuPercent: number;
  readonly freeStoragePercent: number;
  readonly connections: number;
  readonly replicaLagSeconds: number;
  /** Defaults of the per-service alarms of the services on the server. */
  readonly serviceConnectionsPercent: number;
  readonly serviceP95Ms: number;
}

/** A service's CloudWatch alarm thresholds (services on rds servers). */
export interface ServiceAlarmThresholds {
  /** Share of the sum of its logins' connection limits. */
  readonly connectionsPercent: number;
  /** Estimated p95 statement time over a publisher's window. */
  readonly p95Ms: number;
}

/** The per-service metrics publisher on AWS: one scheduled task per RDS server. */
export interface MonitoringSpec {
  /** EventBridge Scheduler rate expression. */
  readonly schedule: string;
  /** The schedule's interval in seconds (the alarms' period). */
  readonly intervalSeconds: number;
  /** Seconds between the two snapshots a run compares. */
  readonly windowSeconds: number;
}

/** An RDS major upgrade in progress (`servers.<name>.upgrade`): from `from` to the server's `version`. */
export interface RdsUpgradeSpec {
  readonly from: PostgresVersion;
  readonly phase: RdsUpgradePhase;
}

/** RDS Proxy in front of an RDS server (`servers.<name>.pooler`), defaults applied. */
export interface RdsProxySpec {
  readonly maxConnectionsPercent: number;
  readonly maxIdleConnectionsPercent: number;
  readonly connectionBorrowTimeoutSeconds: number;
  readonly idleClientTimeoutSeconds: number;
  readonly waitAlarmMs: number;
}

export interface RdsServerSpec extends ServerBase {
  readonly hosting: "rds";
  readonly pooler?: RdsProxySpec;
  readonly upgrade?: RdsUpgradeSpec;
  readonly region: string;
  readonly replicas: readonly RdsReplicaSpec[];
  readonly instanceClass: string;
  readonly allocatedStorage: number;
  readonly maxAllocatedStorage: number;
  readonly multiAz: boolean;
  readonly deletionProtection: boolean;
  readonly skipFinalSnapshot: boolean;
  readonly backupRetentionDays: number;
  /** Days between RDS's rotations of the master user's managed secret. */
  readonly masterPasswordRotationDays: number;
  readonly backupWindow: string;
  readonly maintenanceWindow: string;
  readonly performanceInsightsRetentionDays: number;
  readonly monitoringIntervalSeconds: number;
  readonly publiclyAccessible: boolean;
  readonly requireTls: boolean;
  readonly slowQueryMs: number;
  readonly masterUsername: string;
  readonly sslMode: string;
  readonly network: Required<RawNetwork>;
  readonly parameters: Readonly<Record<string, string>>;
  readonly alarms: RdsAlarmThresholds;
}

/** A server's pooler: PgBouncer on `port` beside the primary, on `standbyPorts[i]` beside each standby. */
export interface PoolerSpec {
  readonly port: number;
  readonly standbyPorts: readonly number[];
  readonly mode: PoolMode;
  readonly maxClientConnections: number;
  readonly defaultPoolSize: number;
}

export interface LocalServerSpec extends ServerBase {
  readonly hosting: "local";
  readonly pooler?: PoolerSpec;
  readonly replicas: readonly StandbyReplicaSpec[];
  readonly host: string;
  readonly port: number;
  readonly adminUser: string;
  readonly sslMode: string;
}

export interface ExternalServerSpec extends ServerBase {
  readonly hosting: "external";
  readonly replicas: readonly [];
  readonly host: string;
  readonly port: number;
  readonly adminUser: string;
  readonly sslMode: string;
  readonly superuser: boolean;
}

export interface ContainerServerSpec extends ServerBase {
  readonly hosting: "container";
  readonly replicas: readonly StandbyReplicaSpec[];
  readonly port: number;
  readonly image: string;
}

export type ServerSpec = RdsServerSpec | LocalServerSpec | ExternalServerSpec | ContainerServerSpec;

export type RoleKind = "owner" | "app" | "readonly" | "migrator" | "scoped";

/** A role a service owns. Schema lists hold actual schema names. */
export interface RoleSpec {
  /** The PostgreSQL role name, always `<service>_<suffix>`. */
  readonly name: string;
  /** `owner`, `app`, `readonly`, `migrator`, or the key under `roles:` for scoped roles. */
  readonly key: string;
  readonly kind: RoleKind;
  readonly login: boolean;
  readonly read: readonly string[];
  readonly write: readonly string[];
  readonly connectionLimit: number;
  /** Login roles after `db-platform rotate`: the credential generation in use (components/spec/rotation.ts). */
  readonly credential?: LoginCredential;
  /**
   * Logins of services on rds servers: Secrets Manager rotates the login's secret on its schedule
   * (docs/rotation.md, "On AWS"); both slots exist from the first `up`, and their passwords are the
   * rotation function's once it has run.
   */
  readonly rotatedBy?: "secrets-manager";
}

/** `services.<name>.credentials.<key>`: a login's rotation, written by `db-platform rotate`. */
export interface LoginCredential {
  /** 1 after the first rotation; the slot `generation % 2` holds the current password. */
  readonly generation: number;
  /** When the current generation was made (ISO 8601). */
  readonly rotatedAt: string;
  /** The rotation was written but not yet applied and verified: `rotate` resumes it. */
  readonly pending?: boolean;
}

export interface ServiceSpec {
  readonly name: string;
  /** `up` may delete or replace its database or schemas with their data; otherwise they are protected. */
  readonly allowDataLoss: boolean;
  /** Isolation schema: its owner role holds CREATE on the shared database (`CREATE SCHEMA IF NOT EXISTS` of migration tools). */
  readonly createSchemas: boolean;
  readonly server: string;
  readonly isolation: "database" | "schema";
  readonly database: string;
  readonly schemas: readonly string[];
  readonly owner: RoleSpec;
  /** Login roles: app, readonly, migrator, then scoped roles in declaration order. */
  readonly logins: readonly RoleSpec[];
  readonly extensions: readonly string[];
  /** Days after which a login's credential is due for rotation (`services.<name>.rotation`); the audit reports older ones. */
  readonly rotationDays?: number;
  /** Services on rds servers: the thresholds of its alarms (its own, else the server's). */
  readonly alarms?: ServiceAlarmThresholds;
  /** Its app and read-only logins go through the server's pooler with this pool (`services.<name>.pool`). */
  readonly pool?: ServicePool;
  /** A move to another place in progress (`db-platform move`). */
  readonly move?: ServiceMove;
  /**
   * A move has just ended here (`move.phase: done`): the resources the move created under
   * `<service>.next-…` names take the service's own names (aliases), and nothing else changes.
   */
  readonly arrived?: boolean;
}

/**
 * A service's pool (its server's pooler's defaults applied): server connections per pooled login,
 * and the mode. Behind RDS Proxy: transaction (it multiplexes per transaction and pins a session
 * that sets session state), up to the login's connection limit.
 */
export interface ServicePool {
  readonly size: number;
  readonly mode: PoolMode;
}

export type MovePhase = "copy" | "serve" | "retire";

/**
 * A service on its way to another place. Both places exist until `retire`: the roles stay the
 * service's (on the target server too when it changes server), the target place gets the same
 * schemas, grants and default privileges as the current one.
 */
export interface ServiceMove {
  /** The service as it will be declared at its new place (same name, roles and schemas). */
  readonly target: ServiceSpec;
  /** copy: the target exists and the current place serves; serve: the target serves; retire: the current place goes. */
  readonly phase: MovePhase;
  /** The manifest of the verified copy the target was restored from. */
  readonly export?: string;
}

/** Where a service's data is: its server, isolation and database. */
export function locationOf(s: Pick<ServiceSpec, "server" | "isolation" | "database">): string {
  return s.isolation === "database"
    ? `database ${s.database} on server ${s.server}`
    : `schemas in database ${s.database} on server ${s.server}`;
}

/** The place whose URLs the service's logins get: the target once a move serves from it. */
export function servingPlace(s: ServiceSpec): ServiceSpec {
  return s.move && s.move.phase !== "copy" ? s.move.target : s;
}

/** Every place a service's data is in: its current one (until retired) and a move's target. */
export function placesOf(s: ServiceSpec): ServiceSpec[] {
  if (!s.move) return [s];
  return s.move.phase === "retire" ? [s.move.target] : [s, s.move.target];
}

/** A database shared by several schema-isolated services; owned by the server's admin. */
export interface SharedDatabaseSpec {
  readonly server: string;
  readonly name: string;
  readonly services: readonly string[];
}

/** Logical per-service backups: where they go and how long they are kept. */
export interface BackupsSpec {
  readonly storage: "s3" | "local";
  /** s3: undefined means `db-platform-<environment>-backups-<account id>`, resolved by the program. */
  readonly bucket?: string;
  readonly rpoHours: number;
  readonly schedule: string;
  readonly archiveAfterDays: number;
  readonly expireAfterDays: number;
  readonly noncurrentExpireAfterDays: number;
  readonly objectLockDays: number;
  /** s3: days the runner's CloudWatch logs and the bucket's access logs are kept. */
  readonly logRetentionDays: number;
  readonly replicaRegion?: string;
  /** local: the S3-compatible server's port on 127.0.0.1. */
  readonly port: number;
  /** local: the local servers' continuous archive (docs/point-in-time.md); undefined when off or on s3. */
  readonly archive?: ArchiveSpec;
}

/** Continuous archiving of local servers: WAL and base backups in the stack's S3 server, by barman-cloud. */
export interface ArchiveSpec {
  readonly timeoutSeconds: number;
  readonly baseBackupHours: number;
  readonly recoveryWindowDays: number;
}

export interface Spec {
  readonly environment: string;
  /** Stricter defaults and checks: true for `prod` and `production`. */
  readonly strict: boolean;
  readonly servers: readonly ServerSpec[];
  readonly services: readonly ServiceSpec[];
  readonly sharedDatabases: readonly SharedDatabaseSpec[];
  readonly alarmEmail?: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly backups?: BackupsSpec;
  readonly monitoring: MonitoringSpec;
}

export type HostingOf<K extends HostingKind> = Extract<ServerSpec, { hosting: K }>;
