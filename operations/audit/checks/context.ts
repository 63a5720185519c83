/**
 * One model of a server under audit, shared by every check: the declared side split per database,
 * the live roles with their transitive memberships, and where findings go.
 */
import { escapeIdentifier as q } from "pg";
import { isBuiltInRole } from "../declared";
import {
  ACCESS_LEVELS,
  type AccessLevel,
  type AclEntry,
  AUDIT_RULES,
  type AuditFinding,
  type DeclaredRole,
  type DeclaredServer,
  type LiveObject,
  type LiveRole,
  type LiveServer,
  PUBLIC,
  type RoleAttribute,
} from "../model";

export { q };

/** Databases every server has, which no stack declares. */
export const SYSTEM_DATABASES = new Set(["postgres", "rdsadmin", "azure_maintenance", "azure_sys", "cloudsqladmin"]);

export const ATTRIBUTE_SQL: Record<RoleAttribute, string> = {
  superuser: "SUPERUSER",
  createdb: "CREATEDB",
  createrole: "CREATEROLE",
  replication: "REPLICATION",
  bypassrls: "BYPASSRLS",
};

export const SQL_KIND: Record<LiveObject["kind"], string> = {
  database: "DATABASE",
  schema: "SCHEMA",
  table: "TABLE",
  sequence: "SEQUENCE",
  function: "FUNCTION",
};

export const WRITE_PRIVILEGES = new Set([
  "INSERT",
  "UPDATE",
  "DELETE",
  "TRUNCATE",
  "CREATE",
  "EXECUTE",
  "MAINTAIN",
  "REFERENCES",
  "TRIGGER",
]);

/** One object under audit, where it sits, and who the platform says may use it. */
export interface Target {
  readonly kind: LiveObject["kind"];
  readonly database: string;
  /** The schema it is, or is in; undefined for the database itself. */
  readonly schema?: string;
  /** `db`, `db/schema`, `db/schema.name` */
  readonly label: string;
  /** SQL name for fixes: `"db"`, `"schema"`, `"schema"."name"`, `"schema".fn(args)`. */
  readonly sqlName: string;
  readonly owner: string;
  readonly acl: readonly AclEntry[];
  /** Services whose area holds it; empty outside every area. */
  readonly services: ReadonlySet<string>;
  /** grantee -> privileges the stack grants on it. */
  readonly expected: ReadonlyMap<string, ReadonlySet<string>>;
  /** The owner the stack declares, when it declares the object itself. */
  readonly declaredOwner?: string;
}

/** A finding as a check reports it: the severity follows from the rule, the server from the analysis. */
export type NewFinding = Omit<AuditFinding, "server" | "severity">;

export interface ServerAnalysis {
  readonly findings: AuditFinding[];
  /** Per service and PUBLIC: the access level in each area of this server (matrix cells). */
  readonly access: Map<string, Map<string, AccessLevel>>;
  /** Area labels of this server, in declaration order, with their service. */
  readonly areas: Array<{ label: string; service: string }>;
}

export const stronger = (a: AccessLevel, b: AccessLevel): AccessLevel => (ACCESS_LEVELS.indexOf(a) >= ACCESS_LEVELS.indexOf(b) ? a : b);
export const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

export interface AuditContext {
  readonly declared: DeclaredServer;
  readonly live: LiveServer;
  readonly findings: AuditFinding[];
  /** Report a finding: its severity follows from the rule, its server from the context. */
  readonly add: (f: NewFinding) => void;
  readonly liveRoles: ReadonlyMap<string, LiveRole>;
  /** The declared state of one database (empty outside every declared one). */
  readonly scoped: (database: string) => DeclaredServer;
  /** PostgreSQL's or the hosting's own roles. */
  readonly system: (name: string) => boolean;
  /** The platform's own logins (the admin). */
  readonly platform: (name: string) => boolean;
  readonly serviceOf: (role: string) => string | undefined;
  /** The role itself and every role it is a member of, transitively. */
  readonly reach: (role: string) => Set<string>;
  readonly isSuper: (role: string) => boolean;
  /** Service roles that exist live: the subjects of cross-service and matrix checks. */
  readonly serviceRoles: readonly DeclaredRole[];
  /** Service roles holding what `grantee` is granted (PUBLIC: every role). */
  readonly holders: (grantee: string) => DeclaredRole[];
}

export function auditContext(declared: DeclaredServer, live: LiveServer): AuditContext {
  const findings: AuditFinding[] = [];
  const server = declared.name;
  const add = ({ rule, ...rest }: NewFinding) => findings.push({ severity: AUDIT_RULES[rule], rule, server, ...rest });

  const liveRoles = new Map(live.roles.map((r) => [r.name, r]));
  const perDb = byDatabase(declared);
  const scoped = (database: string) => perDb.get(database) ?? EMPTY_SCOPE(declared);
  const system = (name: string) => isBuiltInRole(name, declared.hosting);
  const platform = (name: string) => declared.platformRoles.has(name);
  const serviceOf = (name: string) => declared.roles.get(name)?.service;

  // Memberships: member -> roles it belongs to directly.
  const parents = new Map<string, string[]>();
  for (const m of live.memberships) parents.set(m.member, [...(parents.get(m.member) ?? []), m.role]);
  const reachCache = new Map<string, Set<string>>();
  /** The role itself and every role it is a member of, transitively. */
  const reach = (role: string): Set<string> => {
    const cached = reachCache.get(role);
    if (cached) return cached;
    const seen = new Set([role]);
    const stack = [role];
    while (stack.length) {
      for (const p of parents.get(stack.pop() as string) ?? []) {
        if (seen.has(p)) continue;
        seen.add(p);
        stack.push(p);
      }
    }
    reachCache.set(role, seen);
    return seen;
  };
  const isSuper = (role: string) => [...reach(role)].some((r) => liveRoles.get(r)?.superuser);

  // Service roles that exist live: the subjects of cross-service and matrix checks.
  const serviceRoles = [...declared.roles.values()].filter((r) => r.service && liveRoles.has(r.name));
  /** Service roles holding what `grantee` is granted (PUBLIC: every role). */
  const holders = (grantee: string) => (grantee === PUBLIC ? serviceRoles : serviceRoles.filter((r) => reach(r.name).has(grantee)));
  return { declared, live, findings, add, liveRoles, scoped, system, platform, serviceOf, reach, isSuper, serviceRoles, holders };
}

/** The declared state split per database, so per-object lookups stay small on big servers. */
export function byDatabase(declared: DeclaredServer): Map<string, DeclaredServer> {
  const names = new Set([...declared.databases.keys(), ...declared.areas.map((a) => a.database)]);
  const views = new Map<string, DeclaredServer>();
  const group = <T extends { database: string }>(xs: readonly T[]) => {
    const m = new Map<string, T[]>();
    for (const x of xs) {
      const list = m.get(x.database) ?? [];
      list.push(x);
      m.set(x.database, list);
    }
    return m;
  };
  const areas = group(declared.areas);
  const grants = group(declared.grants);
  const defaults = group(declared.defaultPrivileges);
  const schemas = group(declared.schemas);
  const extensions = group(declared.extensions);
  for (const name of names) {
    views.set(name, {
      ...declared,
      areas: areas.get(name) ?? [],
      grants: grants.get(name) ?? [],
      defaultPrivileges: defaults.get(name) ?? [],
      schemas: schemas.get(name) ?? [],
      extensions: extensions.get(name) ?? [],
    });
  }
  return views;
}

export const EMPTY_SCOPE = (declared: DeclaredServer): DeclaredServer => ({
  ...declared,
  areas: [],
  grants: [],
  defaultPrivileges: [],
  schemas: [],
  extensions: [],
});

/** Services whose area holds `schema` of `database` (its own database, or the schema itself). */
export function areaServices(declared: DeclaredServer, database: string, schema?: string | null): Set<string> {
  return new Set(
    declared.areas
      .filter((a) => a.database === database && (!a.schemas || (schema != null && a.schemas.includes(schema))))
      .map((a) => a.service),
  );
}

export function grantsFor(declared: DeclaredServer, database: string, kind: LiveObject["kind"], schema?: string, owner?: string) {
  const expected = new Map<string, Set<string>>();
  const put = (grantee: string, privileges: readonly string[]) => {
    if (privileges.length === 0) return;
    const set = expected.get(grantee) ?? new Set<string>();
    for (const p of privileges) set.add(p);
    expected.set(grantee, set);
  };
  for (const g of declared.grants) {
    if (g.database === database && g.objectType === kind && (kind === "database" || g.schema === schema)) put(g.grantee, g.privileges);
  }
  if (owner) {
    for (const d of declared.defaultPrivileges) {
      if (d.database === database && d.objectType === kind && d.schema === schema && d.owner === owner) put(d.grantee, d.privileges);
    }
  }
  return expected;
}
