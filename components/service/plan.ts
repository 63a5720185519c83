/**
 * The access plan of one service, as plain data: which privileges each of its roles gets on
 * which of its own objects. Pure, so the isolation promise can be tested without Pulumi: every
 * entry names only the service's own database, schemas and roles (or PUBLIC, to revoke).
 */
import { loginRoleNames, type RoleSpec, type ServiceSpec } from "../spec";

export type GrantObjectType = "database" | "schema" | "table" | "sequence" | "function";

export interface PlannedGrant {
  /** Resource name suffix, unique within the service. */
  readonly key: string;
  readonly role: string;
  readonly objectType: GrantObjectType;
  readonly schema?: string;
  /** Empty means "revoke everything" (used for PUBLIC). */
  readonly privileges: readonly string[];
}

export interface PlannedDefaultPrivileges {
  readonly key: string;
  /** Objects created by this role get the privileges. */
  readonly owner: string;
  readonly role: string;
  /** Absent: the owner's defaults in the whole database (the only place PUBLIC's defaults live). */
  readonly schema?: string;
  readonly objectType: "table" | "sequence" | "function";
  readonly privileges: readonly string[];
}

export interface ServicePlan {
  readonly grants: readonly PlannedGrant[];
  readonly defaultPrivileges: readonly PlannedDefaultPrivileges[];
}

export const TABLE_READ = ["SELECT"] as const;
export const TABLE_WRITE = ["DELETE", "INSERT", "SELECT", "UPDATE"] as const;
export const SEQUENCE_READ = ["SELECT"] as const;
export const SEQUENCE_WRITE = ["SELECT", "UPDATE", "USAGE"] as const;

/** Privileges of one login on one schema's objects, or undefined when it has none there. */
function schemaAccess(role: RoleSpec, schema: string) {
  const writes = role.write.includes(schema);
  if (!writes && !role.read.includes(schema)) return undefined;
  return {
    table: writes ? TABLE_WRITE : TABLE_READ,
    sequence: writes ? SEQUENCE_WRITE : SEQUENCE_READ,
    // Functions: only writers may execute (a function can write).
    function: writes ? (["EXECUTE"] as const) : undefined,
  };
}

export function planService(service: ServiceSpec): ServicePlan {
  const grants: PlannedGrant[] = [];
  const defaults: PlannedDefaultPrivileges[] = [];

  if (service.isolation === "database") {
    // PostgreSQL grants CONNECT and TEMPORARY on every new database to PUBLIC.
    grants.push({ key: "db-revoke-public", role: "public", objectType: "database", privileges: [] });
    // The public schema stays, but nobody but the owner may use it.
    grants.push({ key: "public-schema-revoke-public", role: "public", objectType: "schema", schema: "public", privileges: [] });
  } else {
    // The shared database belongs to the admin: the owner role (and so the migrator, its member)
    // needs CONNECT to reach its schemas. Owning its own database gives it that otherwise. With
    // createSchemas it may also create schemas there (docs/service-teams.md: what stops it from
    // taking another service's).
    const privileges = service.createSchemas ? ["CONNECT", "CREATE"] : ["CONNECT"];
    grants.push({ key: "owner-db", role: service.owner.name, objectType: "database", privileges });
  }

  // PostgreSQL lets PUBLIC execute every new function; a schema's default privileges cannot take
  // that away, the owner's database-wide ones can. Only writers get EXECUTE back, per schema.
  defaults.push({ key: "functions-revoke-public", owner: service.owner.name, role: "public", objectType: "function", privileges: [] });

  // The migrator is a member of the owner and gets everything through it; it needs no grants.
  // No login gets TEMPORARY: temporary tables are outside the grants and default privileges.
  for (const role of service.logins.filter((r) => r.kind !== "migrator")) {
    grants.push({ key: `${role.key}-db`, role: role.name, objectType: "database", privileges: ["CONNECT"] });
    for (const schema of service.schemas) {
      const access = schemaAccess(role, schema);
      if (!access) continue;
      const k = `${role.key}-${schema}`;
      grants.push({ key: `${k}-usage`, role: role.name, objectType: "schema", schema, privileges: ["USAGE"] });
      grants.push({ key: `${k}-tables`, role: role.name, objectType: "table", schema, privileges: [...access.table] });
      grants.push({ key: `${k}-sequences`, role: role.name, objectType: "sequence", schema, privileges: [...access.sequence] });
      defaults.push({
        key: `${k}-tables`,
        owner: service.owner.name,
        role: role.name,
        schema,
        objectType: "table",
        privileges: [...access.table],
      });
      defaults.push({
        key: `${k}-sequences`,
        owner: service.owner.name,
        role: role.name,
        schema,
        objectType: "sequence",
        privileges: [...access.sequence],
      });
      if (access.function) {
        grants.push({ key: `${k}-functions`, role: role.name, objectType: "function", schema, privileges: [...access.function] });
        defaults.push({
          key: `${k}-functions`,
          owner: service.owner.name,
          role: role.name,
          schema,
          objectType: "function",
          privileges: [...access.function],
        });
      }
    }
  }
  return { grants, defaultPrivileges: defaults };
}

/** Every role name a service owns: the isolation boundary the policy pack checks. */
export function serviceRoleNames(service: ServiceSpec): string[] {
  return [service.owner.name, ...service.logins.flatMap(loginRoleNames)];
}
