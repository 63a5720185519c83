/**
 * The single source of truth for every PostgreSQL and AWS name the platform derives.
 *
 * PostgreSQL folds unquoted identifiers to lower case and silently truncates names longer than
 * NAMEDATALEN-1 (63) bytes, so two long names can collide after truncation. We refuse anything
 * that would be folded or truncated instead of quoting it, so the names people type in their
 * stack files are exactly the names they see in `psql`.
 */

/** PostgreSQL's identifier length limit in bytes (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;

/** Names PostgreSQL or RDS reserve; a service may not produce them. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "postgres",
  "template0",
  "template1",
  "rdsadmin",
  "rdsrepladmin",
  "rds_superuser",
  "public",
  "information_schema",
  "current_user",
  "session_user",
  "current_role",
  "none",
]);

/** Role name suffixes that every service gets (see the roles section of the README). */
export const BUILTIN_ROLE_SUFFIXES = {
  owner: "owner",
  app: "app",
  readonly: "readonly",
  migrator: "migrator",
} as const;

export type BuiltinRoleKind = keyof typeof BUILTIN_ROLE_SUFFIXES;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** `-` in a service name becomes `_`; nothing else is rewritten. */
export function toIdentifier(name: string): string {
  return name.replace(/-/g, "_");
}

/**
 * Why PostgreSQL would reject, fold or truncate `name`, or `undefined` when it is a plain,
 * safe, lower-case identifier that is not reserved.
 */
export function identifierProblem(name: string): string | undefined {
  if (name.length === 0) return "must not be empty";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_IDENTIFIER_BYTES) {
    return `"${name}" is ${bytes} bytes; PostgreSQL truncates identifiers to ${MAX_IDENTIFIER_BYTES}`;
  }
  if (name !== name.toLowerCase()) {
    return `"${name}" has upper-case letters; PostgreSQL folds unquoted names to lower case (use "${name.toLowerCase()}")`;
  }
  if (!IDENTIFIER.test(name)) {
    return `"${name}" is not a plain identifier (lower-case letters, digits and _, not starting with a digit)`;
  }
  if (name.startsWith("pg_")) return `"${name}" starts with "pg_", which PostgreSQL reserves`;
  if (RESERVED_NAMES.has(name)) return `"${name}" is a reserved name`;
  return undefined;
}

/** The database a service owns under `isolation: database`. */
export function serviceDatabaseName(service: string, override?: string): string {
  return override ?? `${toIdentifier(service)}_db`;
}

/** The default schema of a service: its identifier. */
export function serviceSchemaName(service: string): string {
  return toIdentifier(service);
}

/** A role owned by a service: always prefixed with the service identifier. */
export function serviceRoleName(service: string, suffix: string): string {
  return `${toIdentifier(service)}_${toIdentifier(suffix)}`;
}

/**
 * Name for AWS resources of a server: `<environment>-<server>`. RDS identifiers allow
 * lower-case letters, digits and hyphens, start with a letter, at most 63 characters.
 */
export function awsServerName(environment: string, server: string): string {
  return `${environment}-${server}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/**
 * A pooled service's RDS Proxy endpoint: `<environment>-<server>-<service>` (letters, digits and
 * single hyphens, not ending with one, at most 63 characters: checked in poolRules.ts).
 */
export function proxyEndpointName(serverId: string, service: string): string {
  return `${serverId}-${service}`;
}

/** The backup bucket's name when `backups.bucket` is not set (bucket names are global: the account id makes it unique). */
export function backupBucketName(environment: string, accountId: string): string {
  return `db-platform-${environment}-backups-${accountId}`;
}

/** The backup bucket's replica in `backups.replicaRegion`: its name with the region appended. */
export function replicaBucketName(bucket: string, region: string): string {
  return `${bucket}-${region}`;
}

/** The log bucket of a backup bucket's server access logs (in the bucket's region: S3 delivers within a region). */
export function accessLogBucketName(environment: string, accountId: string, region?: string): string {
  return `db-platform-${environment}-backup-logs-${accountId}${region ? `-${region}` : ""}`;
}

/** The Secrets Manager secret name of a service login on a server. */
export function loginSecretName(environment: string, service: string, role: string): string {
  return `db-platform/${environment}/${service}/${role}`;
}

/** The Secrets Manager secret name of a server's monitoring login (the metrics publisher reads it). */
export function monitorSecretName(environment: string, server: string): string {
  return `db-platform/${environment}/servers/${server}/monitor`;
}

/** The environment variable the backup runner reads a service's read-only login secret (JSON) from. */
export function loginEnvName(service: string): string {
  return `DB_PLATFORM_LOGIN_${service.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The stack config namespace: keys are `db-platform:<key>`. */
export const NAMESPACE = "db-platform";
