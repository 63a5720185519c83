/**
 * The audit's data: what a stack declares (from its synthesized program or a stack export), what
 * a server's catalogs hold, and the findings and access matrix that come from comparing them.
 */

export type Severity = "critical" | "high" | "medium" | "low";
export const SEVERITIES: readonly Severity[] = ["critical", "high", "medium", "low"];

/** PostgreSQL's name for the pseudo-role every role belongs to. */
export const PUBLIC = "PUBLIC";

export type ObjectKind = "database" | "schema" | "table" | "sequence" | "function";

// ---------------------------------------------------------------- declared

export interface DeclaredRole {
  readonly name: string;
  /** The service whose component declares it; undefined for roles outside services. */
  readonly service?: string;
  readonly login: boolean;
  readonly attributes: Readonly<Record<RoleAttribute, boolean>>;
  /** Roles it is declared a member of. */
  readonly memberOf: readonly string[];
}

export type RoleAttribute = "superuser" | "createdb" | "createrole" | "replication" | "bypassrls";
export const ROLE_ATTRIBUTES: readonly RoleAttribute[] = ["superuser", "createdb", "createrole", "replication", "bypassrls"];

export interface DeclaredGrant {
  readonly database: string;
  /** A role name, or PUBLIC. */
  readonly grantee: string;
  readonly objectType: ObjectKind;
  readonly schema?: string;
  readonly privileges: readonly string[];
}

export interface DeclaredDefaultPrivileges {
  readonly database: string;
  readonly owner: string;
  readonly grantee: string;
  readonly schema?: string;
  readonly objectType: "table" | "sequence" | "function";
  readonly privileges: readonly string[];
}

/** A service's place on a server: its database, or its schemas in a shared database. */
export interface DeclaredArea {
  readonly service: string;
  readonly database: string;
  /** Schema isolation: the service's schemas; database isolation: undefined (the whole database). */
  readonly schemas?: readonly string[];
}

export interface DeclaredServer {
  readonly name: string;
  readonly hosting: string;
  /** The login the platform's PostgreSQL provider connects as; it owns shared databases. */
  readonly admin: string;
  /** Logins the platform itself uses (admin, bootstrap superuser, replication): not service roles. */
  readonly platformRoles: ReadonlySet<string>;
  readonly roles: ReadonlyMap<string, DeclaredRole>;
  /** Database name -> owner. */
  readonly databases: ReadonlyMap<string, { readonly owner: string }>;
  readonly schemas: ReadonlyArray<{ readonly database: string; readonly name: string; readonly owner: string }>;
  readonly areas: readonly DeclaredArea[];
  readonly grants: readonly DeclaredGrant[];
  readonly defaultPrivileges: readonly DeclaredDefaultPrivileges[];
  readonly extensions: ReadonlyArray<{ readonly database: string; readonly name: string }>;
}

// ---------------------------------------------------------------- live

export interface AclEntry {
  /** A role name, or PUBLIC. */
  readonly grantee: string;
  readonly privilege: string;
}

export interface LiveRole {
  readonly name: string;
  readonly superuser: boolean;
  readonly inherit: boolean;
  readonly createrole: boolean;
  readonly createdb: boolean;
  readonly login: boolean;
  readonly replication: boolean;
  readonly bypassrls: boolean;
  /** ISO time, or null for no expiry. */
  readonly validUntil: string | null;
}

export interface LiveMembership {
  /** `member` is a member of `role`. */
  readonly role: string;
  readonly member: string;
  /** Whether the member uses the role's privileges without SET ROLE. */
  readonly inherit: boolean;
}

export interface LiveObject {
  readonly kind: ObjectKind;
  readonly schema?: string;
  readonly name: string;
  readonly owner: string;
  readonly acl: readonly AclEntry[];
}

export interface LiveDefaultAcl {
  readonly owner: string;
  readonly schema: string | null;
  readonly objectType: string;
  readonly acl: readonly AclEntry[];
}

export interface LiveDatabase {
  readonly name: string;
  readonly owner: string;
  readonly acl: readonly AclEntry[];
  /** Set when the database could not be inspected (connection refused…). */
  readonly error?: string;
  readonly schemas: readonly LiveObject[];
  /** Tables, views, sequences… and functions, each with its effective ACL (defaults filled in). */
  readonly objects: readonly LiveObject[];
  readonly defaultAcls: readonly LiveDefaultAcl[];
  readonly foreignServers: ReadonlyArray<{ readonly name: string; readonly wrapper: string; readonly owner: string }>;
  readonly userMappings: ReadonlyArray<{ readonly server: string; readonly user: string }>;
  readonly subscriptions: ReadonlyArray<{ readonly name: string; readonly owner: string }>;
  readonly extensions: ReadonlyArray<{ readonly name: string; readonly schema: string }>;
}

export interface LiveServer {
  readonly name: string;
  readonly version: string;
  readonly roles: readonly LiveRole[];
  readonly memberships: readonly LiveMembership[];
  readonly databases: readonly LiveDatabase[];
  /** Milliseconds spent reading the catalogs. */
  readonly collectMs: number;
}

// ---------------------------------------------------------------- results

/** Every finding's rule, with its severity: stable ids, documented in docs/audit.md. */
/** The kinds of finding; each is one rule in operations/audit/rules/ with its severity. */
export const AUDIT_RULE_IDS = [
  "cross-service-access",
  "cross-service-membership",
  "pooler-admission",
  "public-access",
  "powerful-role",
  "backdoor",
  "drift",
  "undeclared-schema",
  "inspection-failed",
  "backup-freshness",
  "archive-health",
  "unmanaged-role",
  "undeclared-database",
  "credential-age",
  "password-expiry",
] as const;
export type AuditRule = (typeof AUDIT_RULE_IDS)[number];

export interface AuditFinding {
  /** Always the severity of its rule (operations/audit/rules). */
  readonly severity: Severity;
  readonly rule: AuditRule;
  readonly server: string;
  /** `db`, `db/schema`, `db/schema.table`, `role name`… */
  readonly object: string;
  /** The role (or PUBLIC) the finding is about, when there is one. */
  readonly subject?: string;
  /** The services whose roles or objects are concerned (both sides of a cross-service grant). */
  readonly services: readonly string[];
  readonly message: string;
  /** A suggested fix, usually SQL or a config change. */
  readonly fix: string;
}

/** Access levels of the matrix, weakest first. */
export const ACCESS_LEVELS = ["none", "connect", "read", "write", "owner"] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export interface AccessMatrix {
  /** Column labels: `server/database` or `server/database/schema`, one per service area. */
  readonly columns: ReadonlyArray<{ readonly label: string; readonly service: string }>;
  /** Row per service (and PUBLIC): the strongest access any of its roles has in each column. */
  readonly rows: ReadonlyArray<{ readonly subject: string; readonly cells: readonly AccessLevel[] }>;
}

export interface AuditReport {
  /** The JSON report's schema version (docs/audit.md). */
  readonly version: 1;
  readonly stack: string;
  readonly generatedAt: string;
  readonly durationMs: number;
  readonly servers: ReadonlyArray<{
    readonly name: string;
    readonly version: string;
    readonly databases: number;
    readonly collectMs: number;
  }>;
  readonly summary: Readonly<Record<Severity, number>>;
  readonly findings: readonly AuditFinding[];
  readonly matrix: AccessMatrix;
  /** Services on the move (`db-platform move`): both places are declared, so neither is drift. */
  readonly moves: readonly MoveStatus[];
}

/** A service between two places, as its stack file says. */
export interface MoveStatus {
  readonly service: string;
  readonly from: string;
  readonly to: string;
  readonly phase: "copy" | "serve" | "retire";
  /** What the phase means for the service, in a sentence. */
  readonly state: string;
}
