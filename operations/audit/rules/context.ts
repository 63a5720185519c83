/**
 * One model of a server under audit, shared by every rule: the declared side split per database,
 * the live roles with their transitive memberships, and what comparing them observes once — each
 * audited object with its owner and privileges against the stack, the default privileges, the
 * memberships — which the rules of this folder turn into findings of their kind.
 */
import { escapeIdentifier as q } from "pg";
import { isBuiltInRole } from "../declared";
import {
  ACCESS_LEVELS,
  type AccessLevel,
  type AclEntry,
  type AuditFinding,
  type DeclaredRole,
  type DeclaredServer,
  type LiveDatabase,
  type LiveMembership,
  type LiveObject,
  type LiveRole,
  type LiveServer,
  PUBLIC,
  type RoleAttribute,
} from "../model";
import { POWERFUL_ROLES } from "../../../policies/rules/postgresql";

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

/** A finding as a rule reports it: rule and severity follow from the rule, the server from the analysis. */
export type NewFinding = Omit<AuditFinding, "server" | "severity" | "rule">;

/** Live privileges on one object beyond what the stack declares, for one grantee. */
export interface ExtraGrant {
  readonly target: Target;
  readonly grantee: string;
  readonly privileges: readonly string[];
  /** The REVOKE that removes them. */
  readonly revoke: string;
  /** Roles of other services that hold them and are to blame (not PUBLIC's: every role). */
  readonly intruders: readonly DeclaredRole[];
}

/** Privileges the stack declares on one object that the grantee does not hold live. */
export interface MissingGrant {
  readonly target: Target;
  readonly grantee: string;
  readonly privileges: readonly string[];
}

/** Default privileges of one owner, schema (or none), object type and grantee: live against declared. */
export interface DefaultAclDiff {
  readonly database: string;
  readonly owner: string;
  /** "" for a database-wide default. */
  readonly schema: string;
  readonly type: string;
  readonly grantee: string;
  /** Granted live to future objects, not declared. */
  readonly extra: readonly string[];
  /** Declared, not granted live. */
  readonly missing: readonly string[];
  /** The services whose area the schema is. */
  readonly area: ReadonlySet<string>;
  /** Roles of other services that the extra privileges would reach (for PUBLIC: every other service's). */
  readonly intruders: readonly DeclaredRole[];
}

/** A default-privileges finding's object: `db/schema default privileges of owner on new tables`. */
export const defaultAclObject = (d: DefaultAclDiff) =>
  `${d.database}/${d.schema || "*"} default privileges of ${d.owner} on new ${d.type}s`;

/** Default privileges beyond the stack's, as any rule reports them (they differ in rule only). */
export function extraDefaultAcl(d: DefaultAclDiff): NewFinding {
  const grantee = d.grantee === PUBLIC ? "PUBLIC" : q(d.grantee);
  return {
    object: defaultAclObject(d),
    subject: d.grantee,
    services: sorted([...d.area, ...d.intruders.map((r) => r.service as string)]),
    message: `new ${d.type}s created by ${d.owner}${d.schema ? ` in ${d.database}/${d.schema}` : ` anywhere in ${d.database}`} will grant ${d.extra.join(", ")} to ${d.grantee}, which the stack does not declare`,
    fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(d.owner)}${d.schema ? ` IN SCHEMA ${q(d.schema)}` : ""} REVOKE ${d.extra.join(", ")} ON ${d.type.toUpperCase()}S FROM ${grantee};`,
  };
}

/** How a live membership of a non-system role stands against the stack (rules take one kind each). */
export type MembershipKind = "cross-service" | "powerful" | "undeclared" | "declared";

export const stronger = (a: AccessLevel, b: AccessLevel): AccessLevel => (ACCESS_LEVELS.indexOf(a) >= ACCESS_LEVELS.indexOf(b) ? a : b);
export const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

export interface AuditContext {
  readonly declared: DeclaredServer;
  readonly live: LiveServer;
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
  /** Live databases the stack declares and the audit could read: their objects are audited. */
  readonly audited: readonly LiveDatabase[];
  /** Every object of the audited databases (the databases, their schemas, tables, sequences, functions). */
  readonly targets: readonly Target[];
  readonly extraGrants: readonly ExtraGrant[];
  readonly missingGrants: readonly MissingGrant[];
  readonly defaultAcls: readonly DefaultAclDiff[];
  /** Live memberships of non-system, non-platform members, each with how it stands. */
  readonly memberships: ReadonlyArray<LiveMembership & { readonly kind: MembershipKind }>;
}

export function auditContext(declared: DeclaredServer, live: LiveServer): AuditContext {
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
  const base = { declared, live, liveRoles, scoped, system, platform, serviceOf, reach, isSuper, serviceRoles, holders };

  const audited = live.databases.filter((db) => declared.databases.has(db.name) && !db.error);
  const targets = audited.flatMap((db) => databaseTargets(scoped(db.name), db));
  const grants = targets.map((t) => privilegesOf(base, t));
  const membershipKind = (m: LiveMembership): MembershipKind => {
    const memberService = serviceOf(m.member);
    const roleService = serviceOf(m.role);
    if (memberService && roleService && memberService !== roleService) return "cross-service";
    if (memberService && (POWERFUL_ROLES.has(m.role) || platform(m.role) || liveRoles.get(m.role)?.superuser)) return "powerful";
    return declared.roles.get(m.member)?.memberOf.includes(m.role) ? "declared" : "undeclared";
  };
  return {
    ...base,
    audited,
    targets,
    extraGrants: grants.flatMap((g) => g.extra),
    missingGrants: grants.flatMap((g) => g.missing),
    defaultAcls: audited.flatMap((db) => defaultAclDiffs(base, db)),
    memberships: live.memberships.filter((m) => !system(m.member) && !platform(m.member)).map((m) => ({ ...m, kind: membershipKind(m) })),
  };
}

type BaseContext = Pick<AuditContext, "declared" | "platform" | "serviceOf" | "holders" | "scoped">;

/** One object's live privileges, owners' own entries aside, against what the stack grants on it. */
function privilegesOf(ctx: BaseContext, t: Target): { extra: ExtraGrant[]; missing: MissingGrant[] } {
  const { platform, serviceOf, holders } = ctx;
  const byGrantee = new Map<string, Set<string>>();
  for (const e of t.acl) {
    if (e.grantee === t.owner || platform(e.grantee)) continue;
    // Functions are EXECUTE-able by PUBLIC unless revoked: PostgreSQL's default, reachable only with USAGE on the schema.
    if (t.kind === "function" && e.grantee === PUBLIC && e.privilege === "EXECUTE") continue;
    byGrantee.set(e.grantee, (byGrantee.get(e.grantee) ?? new Set()).add(e.privilege));
  }
  const extra: ExtraGrant[] = [];
  for (const [grantee, privileges] of byGrantee) {
    const expected = t.expected.get(grantee) ?? new Set<string>();
    const more = [...privileges].filter((p) => !expected.has(p)).sort();
    if (more.length === 0) continue;
    const revoke = `REVOKE ${more
      .map((p) => p.replace(/\(.*/, ""))
      .filter((p, i, a) => a.indexOf(p) === i)
      .join(", ")} ON ${SQL_KIND[t.kind]} ${t.sqlName} FROM ${grantee === PUBLIC ? "PUBLIC" : q(grantee)};`;
    let intruders: DeclaredRole[] = [];
    if (grantee !== PUBLIC && t.services.size > 0) {
      const granteeService = serviceOf(grantee);
      // A grant to another service's own role is that service's business unless the object is
      // outside it; members of that role are reported as cross-service memberships.
      intruders = holders(grantee)
        .filter((r) => !t.services.has(r.service as string))
        .filter((r) => r.name === grantee || !granteeService || granteeService === r.service);
    }
    extra.push({ target: t, grantee, privileges: more, revoke, intruders });
  }
  const missing: MissingGrant[] = [];
  for (const [grantee, privileges] of t.expected) {
    const lacking = [...privileges].filter((p) => !byGrantee.get(grantee)?.has(p) && grantee !== t.owner).sort();
    if (lacking.length > 0) missing.push({ target: t, grantee, privileges: lacking });
  }
  return { extra, missing };
}

/** Default privileges of one database: what objects created later will grant, against the stack. */
function defaultAclDiffs(ctx: BaseContext, db: LiveDatabase): DefaultAclDiff[] {
  const here = ctx.scoped(db.name);
  const key = (owner: string, schema: string | null | undefined, type: string, grantee: string) =>
    [owner, schema ?? "", type, grantee].join("|");
  const expected = new Map<string, Set<string>>();
  for (const d of here.defaultPrivileges) expected.set(key(d.owner, d.schema, d.objectType, d.grantee), new Set(d.privileges));
  const seen = new Map<string, Set<string>>();
  for (const da of db.defaultAcls) {
    for (const e of da.acl) {
      if (e.grantee === da.owner) continue;
      const k = key(da.owner, da.schema, da.objectType, e.grantee);
      seen.set(k, (seen.get(k) ?? new Set()).add(e.privilege));
    }
  }
  const out: DefaultAclDiff[] = [];
  for (const k of new Set([...seen.keys(), ...expected.keys()])) {
    const [owner, schema, type, grantee] = k.split("|");
    let extra = [...(seen.get(k) ?? [])].filter((p) => !expected.get(k)?.has(p)).sort();
    // Functions get EXECUTE for PUBLIC by default; only a global default ACL can say so explicitly.
    if (grantee === PUBLIC && type === "function" && extra.every((p) => p === "EXECUTE")) extra = [];
    const missing = [...(expected.get(k) ?? [])].filter((p) => !seen.get(k)?.has(p)).sort();
    if (extra.length === 0 && missing.length === 0) continue;
    const area = schema ? areaServices(here, db.name, schema) : new Set<string>();
    const intruders = area.size > 0 ? ctx.holders(grantee).filter((r) => !area.has(r.service as string)) : [];
    out.push({ database: db.name, owner, schema, type, grantee, extra, missing, area, intruders });
  }
  return out;
}

/** The database itself, its schemas and their objects, each with what the stack expects of it. */
function databaseTargets(declared: DeclaredServer, db: LiveDatabase): Target[] {
  const tenants = new Set(declared.areas.filter((a) => a.database === db.name).map((a) => a.service));
  const targets: Target[] = [
    {
      kind: "database",
      database: db.name,
      label: db.name,
      sqlName: q(db.name),
      owner: db.owner,
      acl: db.acl,
      services: tenants,
      expected: grantsFor(declared, db.name, "database"),
      declaredOwner: declared.databases.get(db.name)?.owner,
    },
  ];
  for (const s of db.schemas) {
    targets.push({
      kind: "schema",
      database: db.name,
      schema: s.name,
      label: `${db.name}/${s.name}`,
      sqlName: q(s.name),
      owner: s.owner,
      acl: s.acl,
      services: areaServices(declared, db.name, s.name),
      expected: grantsFor(declared, db.name, "schema", s.name),
      declaredOwner: declared.schemas.find((d) => d.database === db.name && d.name === s.name)?.owner,
    });
  }
  for (const o of db.objects) {
    const schema = o.schema as string;
    const sqlName = o.kind === "function" ? `${q(schema)}.${o.name}` : `${q(schema)}.${q(o.name)}`;
    targets.push({
      kind: o.kind,
      database: db.name,
      schema,
      label: `${db.name}/${schema}.${o.name}`,
      sqlName,
      owner: o.owner,
      acl: o.acl,
      services: areaServices(declared, db.name, schema),
      expected: grantsFor(declared, db.name, o.kind, schema, o.owner),
    });
  }
  return targets;
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
