/**
 * Declared against live: the findings and the access matrix of one server.
 *
 * Effective access follows PostgreSQL's rules: a role holds what is granted to it, to PUBLIC,
 * and to every role it is a member of, directly or through other roles (membership is counted
 * whether or not it is inherited, since a member can always SET ROLE); an owner holds every
 * privilege on what it owns; a superuser holds everything.
 */
import { escapeIdentifier as q } from "pg";
import { POWERFUL_ROLES } from "../../policies/rules/postgresql";
import { isBuiltInRole } from "./declared";
import {
  ACCESS_LEVELS,
  type AccessLevel,
  type AclEntry,
  AUDIT_RULES,
  type AuditFinding,
  type DeclaredServer,
  type LiveDatabase,
  type LiveObject,
  type LiveServer,
  PUBLIC,
  type RoleAttribute,
  ROLE_ATTRIBUTES,
} from "./model";

export interface AnalyzeOptions {
  /** Logins whose password expires later than this many days from now (or never) are reported. */
  readonly passwordMaxAgeDays?: number;
  /** For the password expiry check. @default new Date() */
  readonly now?: Date;
}

/** Extensions that let a session reach other databases or servers. */
export const BACKDOOR_EXTENSIONS = new Set(["dblink", "postgres_fdw", "file_fdw", "mysql_fdw", "oracle_fdw", "tds_fdw", "mongo_fdw"]);
const isBackdoorExtension = (name: string) => BACKDOOR_EXTENSIONS.has(name) || name.endsWith("_fdw");

/** Databases every server has, which no stack declares. */
const SYSTEM_DATABASES = new Set(["postgres", "rdsadmin", "azure_maintenance", "azure_sys", "cloudsqladmin"]);

const ATTRIBUTE_SQL: Record<RoleAttribute, string> = {
  superuser: "SUPERUSER",
  createdb: "CREATEDB",
  createrole: "CREATEROLE",
  replication: "REPLICATION",
  bypassrls: "BYPASSRLS",
};

const SQL_KIND: Record<LiveObject["kind"], string> = {
  database: "DATABASE",
  schema: "SCHEMA",
  table: "TABLE",
  sequence: "SEQUENCE",
  function: "FUNCTION",
};

const WRITE_PRIVILEGES = new Set(["INSERT", "UPDATE", "DELETE", "TRUNCATE", "CREATE", "EXECUTE", "MAINTAIN", "REFERENCES", "TRIGGER"]);

/** One object under audit, where it sits, and who the platform says may use it. */
interface Target {
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
type NewFinding = Omit<AuditFinding, "server" | "severity">;

export interface ServerAnalysis {
  readonly findings: AuditFinding[];
  /** Per service and PUBLIC: the access level in each area of this server (matrix cells). */
  readonly access: Map<string, Map<string, AccessLevel>>;
  /** Area labels of this server, in declaration order, with their service. */
  readonly areas: Array<{ label: string; service: string }>;
}

const stronger = (a: AccessLevel, b: AccessLevel): AccessLevel => (ACCESS_LEVELS.indexOf(a) >= ACCESS_LEVELS.indexOf(b) ? a : b);
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

export function analyzeServer(declared: DeclaredServer, live: LiveServer, opts: AnalyzeOptions = {}): ServerAnalysis {
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

  // ------------------------------------------------------------------ roles and memberships
  for (const role of live.roles) {
    if (system(role.name) || platform(role.name)) continue;
    const d = declared.roles.get(role.name);
    const granted = ROLE_ATTRIBUTES.filter((a) => role[a] && !d?.attributes[a]);
    if (!d) {
      add({
        rule: "unmanaged-role",
        object: `role ${role.name}`,
        subject: role.name,
        services: [],
        message: `role ${role.name} exists on the server but no stack resource declares it${role.login ? " (it can log in)" : ""}`,
        fix: `declare it in the stack, or DROP ROLE ${q(role.name)} after reassigning what it owns`,
      });
    }
    if (granted.length > 0) {
      add({
        rule: "powerful-role",
        object: `role ${role.name}`,
        subject: role.name,
        services: d?.service ? [d.service] : [],
        message: `role ${role.name} has ${granted.map((a) => ATTRIBUTE_SQL[a]).join(", ")}, which the stack does not declare`,
        fix: `ALTER ROLE ${q(role.name)} ${granted.map((a) => `NO${ATTRIBUTE_SQL[a]}`).join(" ")};`,
      });
    }
    if (d && d.login !== role.login) {
      add({
        rule: "drift",
        object: `role ${role.name}`,
        subject: role.name,
        services: d.service ? [d.service] : [],
        message: `role ${role.name} is ${role.login ? "LOGIN" : "NOLOGIN"} live but declared ${d.login ? "LOGIN" : "NOLOGIN"}`,
        fix: `ALTER ROLE ${q(role.name)} ${d.login ? "LOGIN" : "NOLOGIN"}; or run pulumi up`,
      });
    }
  }
  for (const d of declared.roles.values()) {
    if (!liveRoles.has(d.name)) {
      add({
        rule: "drift",
        object: `role ${d.name}`,
        subject: d.name,
        services: d.service ? [d.service] : [],
        message: `role ${d.name} is declared but does not exist on the server`,
        fix: "run pulumi up (or pulumi refresh if it was removed on purpose)",
      });
    }
  }

  for (const m of live.memberships) {
    if (system(m.member) || platform(m.member)) continue;
    const memberService = serviceOf(m.member);
    const roleService = serviceOf(m.role);
    const declaredMembership = declared.roles.get(m.member)?.memberOf.includes(m.role) ?? false;
    const services = sorted([memberService, roleService].filter((s): s is string => !!s));
    if (memberService && roleService && memberService !== roleService) {
      add({
        rule: "cross-service-membership",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} (service ${memberService}) is a member of ${m.role} (service ${roleService}) and so holds everything ${m.role} may do`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
      continue;
    }
    if (memberService && (POWERFUL_ROLES.has(m.role) || platform(m.role) || liveRoles.get(m.role)?.superuser)) {
      add({
        rule: "powerful-role",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} (service ${memberService}) is a member of ${m.role}, which ${liveRoles.get(m.role)?.superuser ? "is a superuser" : platform(m.role) ? "is the platform's own login" : "reaches every database"}`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
      continue;
    }
    if (!declaredMembership) {
      add({
        rule: "drift",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} is a member of ${m.role} live, which the stack does not declare`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
    }
  }
  for (const d of declared.roles.values()) {
    for (const role of d.memberOf) {
      if (!liveRoles.has(d.name) || live.memberships.some((m) => m.member === d.name && m.role === role)) continue;
      add({
        rule: "drift",
        object: `role ${role}`,
        subject: d.name,
        services: d.service ? [d.service] : [],
        message: `${d.name} is declared a member of ${role} but is not`,
        fix: `GRANT ${q(role)} TO ${q(d.name)}; or run pulumi up`,
      });
    }
  }

  // ------------------------------------------------------------------ databases and their objects
  const liveDbs = new Map(live.databases.map((db) => [db.name, db]));
  for (const [name] of declared.databases) {
    if (!liveDbs.has(name)) {
      add({
        rule: "drift",
        object: name,
        services: sorted(scoped(name).areas.map((a) => a.service)),
        message: `database ${name} is declared but does not exist on the server`,
        fix: "run pulumi up",
      });
    }
  }

  const targets: Target[] = [];
  for (const db of live.databases) {
    backdoors(db, add);
    if (db.error) {
      add({
        rule: "inspection-failed",
        object: db.name,
        services: sorted(scoped(db.name).areas.map((a) => a.service)),
        message: `database ${db.name} could not be inspected: ${db.error}`,
        fix: "give the audit login CONNECT on it (or run the audit as a superuser), then audit again",
      });
      continue;
    }
    if (!declared.databases.has(db.name)) {
      if (!SYSTEM_DATABASES.has(db.name)) {
        add({
          rule: "undeclared-database",
          object: db.name,
          subject: db.owner,
          services: serviceOf(db.owner) ? [serviceOf(db.owner) as string] : [],
          message: `database ${db.name} (owner ${db.owner}) exists on the server but no stack resource declares it`,
          fix: `declare it in the stack, or DROP DATABASE ${q(db.name)} once its data is saved`,
        });
      }
      continue;
    }
    targets.push(...databaseTargets(scoped(db.name), db, add));
  }

  for (const t of targets) checkTarget(t);
  for (const db of live.databases) if (declared.databases.has(db.name) && !db.error) checkDefaultAcls(db);
  if (opts.passwordMaxAgeDays !== undefined) passwordExpiry(opts.passwordMaxAgeDays, opts.now ?? new Date());

  return { findings, access: accessLevels(), areas: areaLabels(declared) };

  function checkTarget(t: Target): void {
    const objectServices = [...t.services];
    // Ownership: the owner holds every privilege.
    if (t.declaredOwner && t.declaredOwner !== t.owner && !(t.owner === "pg_database_owner" && t.kind === "schema")) {
      add({
        rule: "drift",
        object: t.label,
        subject: t.owner,
        services: objectServices,
        message: `${t.kind} ${t.label} is owned by ${t.owner}, declared owner ${t.declaredOwner}`,
        fix: `ALTER ${SQL_KIND[t.kind]} ${t.sqlName} OWNER TO ${q(t.declaredOwner)};`,
      });
    }
    const ownerService = serviceOf(t.owner);
    if (t.services.size > 0 && ownerService && !t.services.has(ownerService)) {
      add({
        rule: "cross-service-access",
        object: t.label,
        subject: t.owner,
        services: sorted([ownerService, ...objectServices]),
        message: `${t.kind} ${t.label} of service ${objectServices.join(", ")} is owned by ${t.owner} (service ${ownerService})`,
        fix: `ALTER ${SQL_KIND[t.kind]} ${t.sqlName} OWNER TO <a role of ${objectServices.join(", ")}>;`,
      });
    } else if (t.services.size > 0 && !t.declaredOwner && !declared.roles.has(t.owner) && !platform(t.owner) && !system(t.owner)) {
      add({
        rule: "drift",
        object: t.label,
        subject: t.owner,
        services: objectServices,
        message: `${t.kind} ${t.label} is owned by ${t.owner}, a role the stack does not declare`,
        fix: `ALTER ${SQL_KIND[t.kind]} ${t.sqlName} OWNER TO <the service's owner role>;`,
      });
    }

    // Live privileges, by grantee, owners' own entries aside.
    const byGrantee = new Map<string, Set<string>>();
    for (const e of t.acl) {
      if (e.grantee === t.owner || platform(e.grantee)) continue;
      // Functions are EXECUTE-able by PUBLIC unless revoked: PostgreSQL's default, reachable only with USAGE on the schema.
      if (t.kind === "function" && e.grantee === PUBLIC && e.privilege === "EXECUTE") continue;
      byGrantee.set(e.grantee, (byGrantee.get(e.grantee) ?? new Set()).add(e.privilege));
    }
    for (const [grantee, privileges] of byGrantee) {
      const expected = t.expected.get(grantee) ?? new Set<string>();
      const extra = [...privileges].filter((p) => !expected.has(p)).sort();
      if (extra.length === 0) continue;
      const revoke = `REVOKE ${extra
        .map((p) => p.replace(/\(.*/, ""))
        .filter((p, i, a) => a.indexOf(p) === i)
        .join(", ")} ON ${SQL_KIND[t.kind]} ${t.sqlName} FROM ${grantee === PUBLIC ? "PUBLIC" : q(grantee)};`;
      if (grantee === PUBLIC) {
        add({
          rule: "public-access",
          object: t.label,
          subject: PUBLIC,
          services: objectServices,
          message: `PUBLIC (every role on the server) has ${extra.join(", ")} on ${t.kind} ${t.label}`,
          fix: revoke,
        });
        continue;
      }
      const granteeService = serviceOf(grantee);
      const intruders = t.services.size === 0 ? [] : holders(grantee).filter((r) => !t.services.has(r.service as string));
      // A grant to another service's own role is that service's business unless the object is
      // outside it; members of that role are reported as cross-service memberships.
      const reportable = intruders.filter((r) => r.name === grantee || !serviceOf(grantee) || granteeService === r.service);
      if (reportable.length > 0) {
        for (const r of reportable) {
          add({
            rule: "cross-service-access",
            object: t.label,
            subject: r.name,
            services: sorted([r.service as string, ...objectServices]),
            message: `${r.name} (service ${r.service}) has ${extra.join(", ")} on ${t.kind} ${t.label} of service ${objectServices.join(", ")}${r.name === grantee ? "" : ` through ${grantee}`}`,
            fix: revoke,
          });
        }
        continue;
      }
      add({
        rule: "drift",
        object: t.label,
        subject: grantee,
        services: objectServices,
        message: `${grantee} has ${extra.join(", ")} on ${t.kind} ${t.label}, which the stack does not declare`,
        fix: revoke,
      });
    }
    for (const [grantee, privileges] of t.expected) {
      const missing = [...privileges].filter((p) => !byGrantee.get(grantee)?.has(p) && grantee !== t.owner).sort();
      if (missing.length === 0) continue;
      add({
        rule: "drift",
        object: t.label,
        subject: grantee,
        services: objectServices,
        message: `${grantee} is declared ${missing.join(", ")} on ${t.kind} ${t.label} but does not have it`,
        fix: `GRANT ${missing.join(", ")} ON ${SQL_KIND[t.kind]} ${t.sqlName} TO ${grantee === PUBLIC ? "PUBLIC" : q(grantee)}; or run pulumi up`,
      });
    }
  }

  function checkDefaultAcls(db: LiveDatabase): void {
    const here = scoped(db.name);
    const declaredHere = here.defaultPrivileges;
    const key = (owner: string, schema: string | null | undefined, type: string, grantee: string) =>
      [owner, schema ?? "", type, grantee].join("|");
    const expected = new Map<string, Set<string>>();
    for (const d of declaredHere) expected.set(key(d.owner, d.schema, d.objectType, d.grantee), new Set(d.privileges));
    const seen = new Map<string, Set<string>>();
    for (const da of db.defaultAcls) {
      for (const e of da.acl) {
        if (e.grantee === da.owner) continue;
        const k = key(da.owner, da.schema, da.objectType, e.grantee);
        seen.set(k, (seen.get(k) ?? new Set()).add(e.privilege));
      }
    }
    for (const [k, privileges] of seen) {
      const [owner, schema, type, grantee] = k.split("|");
      const extra = [...privileges].filter((p) => !expected.get(k)?.has(p)).sort();
      if (extra.length === 0) continue;
      // Functions get EXECUTE for PUBLIC by default; only a global default ACL can say so explicitly.
      if (grantee === PUBLIC && type === "function" && extra.every((p) => p === "EXECUTE")) continue;
      const area = schema ? areaServices(here, db.name, schema) : new Set<string>();
      const label = `${db.name}/${schema || "*"} default privileges of ${owner} on new ${type}s`;
      const intruders = area.size > 0 ? holders(grantee).filter((r) => !area.has(r.service as string)) : [];
      add({
        rule: grantee === PUBLIC ? "public-access" : intruders.length > 0 ? "cross-service-access" : "drift",
        object: label,
        subject: grantee,
        services: sorted([...area, ...intruders.map((r) => r.service as string)]),
        message: `new ${type}s created by ${owner}${schema ? ` in ${db.name}/${schema}` : ` anywhere in ${db.name}`} will grant ${extra.join(", ")} to ${grantee}, which the stack does not declare`,
        fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(owner)}${schema ? ` IN SCHEMA ${q(schema)}` : ""} REVOKE ${extra.join(", ")} ON ${type.toUpperCase()}S FROM ${grantee === PUBLIC ? "PUBLIC" : q(grantee)};`,
      });
    }
    for (const [k, privileges] of expected) {
      const missing = [...privileges].filter((p) => !seen.get(k)?.has(p)).sort();
      if (missing.length === 0) continue;
      const [owner, schema, type, grantee] = k.split("|");
      add({
        rule: "drift",
        object: `${db.name}/${schema || "*"} default privileges of ${owner} on new ${type}s`,
        subject: grantee,
        services: sorted(areaServices(here, db.name, schema)),
        message: `new ${type}s created by ${owner} in ${db.name}/${schema} are declared to grant ${missing.join(", ")} to ${grantee}, but will not`,
        fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(owner)} IN SCHEMA ${q(schema)} GRANT ${missing.join(", ")} ON ${type.toUpperCase()}S TO ${q(grantee)}; or run pulumi up`,
      });
    }
  }

  function passwordExpiry(maxDays: number, now: Date): void {
    const limit = now.getTime() + maxDays * 86_400_000;
    for (const role of live.roles) {
      if (!role.login || system(role.name) || platform(role.name)) continue;
      const until = role.validUntil === null ? Number.POSITIVE_INFINITY : Date.parse(role.validUntil);
      if (until <= limit) continue;
      const service = serviceOf(role.name);
      add({
        rule: "password-expiry",
        object: `role ${role.name}`,
        subject: role.name,
        services: service ? [service] : [],
        message: `login ${role.name}'s password ${role.validUntil === null ? "never expires" : `expires ${role.validUntil}`}; the policy is at most ${maxDays} days`,
        fix: `rotate it and set ALTER ROLE ${q(role.name)} VALID UNTIL '${new Date(limit).toISOString()}';`,
      });
    }
  }

  /** The strongest access each service (and PUBLIC) has in each area, from live ACLs and ownership. */
  function accessLevels(): Map<string, Map<string, AccessLevel>> {
    const subjects = new Map<string, string[]>();
    for (const r of serviceRoles) subjects.set(r.service as string, [...(subjects.get(r.service as string) ?? []), r.name]);
    subjects.set(PUBLIC, []);
    const targetsByDb = new Map<string, Target[]>();
    for (const t of targets) {
      const list = targetsByDb.get(t.database) ?? [];
      list.push(t);
      targetsByDb.set(t.database, list);
    }
    const result = new Map<string, Map<string, AccessLevel>>();
    for (const [subject, roles] of subjects) {
      const cells = new Map<string, AccessLevel>();
      const held = new Set([PUBLIC, ...roles.flatMap((r) => [...reach(r)])]);
      const holds = (grantee: string) => held.has(grantee);
      const superuser = roles.some(isSuper);
      for (const area of declared.areas) {
        const label = areaLabel(declared.name, area);
        let level: AccessLevel = superuser ? "owner" : "none";
        for (const t of targetsByDb.get(area.database) ?? []) {
          if (!inArea(t, area)) continue;
          // A shared database's own entries say nothing about one tenant's schemas.
          if (t.kind === "database" && area.schemas) continue;
          if (subject !== PUBLIC && holds(t.owner))
            level = stronger(level, t.kind === "database" || t.kind === "schema" ? "owner" : "write");
          for (const e of t.acl) {
            if (!holds(e.grantee) || (t.kind === "function" && e.grantee === PUBLIC)) continue;
            level = stronger(level, accessOf(t.kind, e.privilege));
          }
        }
        cells.set(label, level);
      }
      result.set(subject, cells);
    }
    return result;
  }
}

/** What one privilege on one kind of object gives, on the matrix's scale. */
function accessOf(kind: LiveObject["kind"], privilege: string): AccessLevel {
  const p = privilege.replace(/\(.*/, "");
  if (kind === "database" || kind === "schema") return p === "CREATE" ? "write" : "connect";
  return WRITE_PRIVILEGES.has(p) || (kind === "sequence" && p === "USAGE") ? "write" : "read";
}

/** The declared state split per database, so per-object lookups stay small on big servers. */
function byDatabase(declared: DeclaredServer): Map<string, DeclaredServer> {
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

const EMPTY_SCOPE = (declared: DeclaredServer): DeclaredServer => ({
  ...declared,
  areas: [],
  grants: [],
  defaultPrivileges: [],
  schemas: [],
  extensions: [],
});

function inArea(t: Target, area: DeclaredServer["areas"][number]): boolean {
  if (t.database !== area.database) return false;
  return !area.schemas || t.schema === undefined || area.schemas.includes(t.schema);
}

export function areaLabel(server: string, area: DeclaredServer["areas"][number]): string {
  return area.schemas ? `${server}/${area.database}/${area.schemas.join(",")}` : `${server}/${area.database}`;
}

function areaLabels(declared: DeclaredServer): Array<{ label: string; service: string }> {
  return declared.areas.map((a) => ({ label: areaLabel(declared.name, a), service: a.service }));
}

/** Services whose area holds `schema` of `database` (its own database, or the schema itself). */
function areaServices(declared: DeclaredServer, database: string, schema?: string | null): Set<string> {
  return new Set(
    declared.areas
      .filter((a) => a.database === database && (!a.schemas || (schema != null && a.schemas.includes(schema))))
      .map((a) => a.service),
  );
}

function grantsFor(declared: DeclaredServer, database: string, kind: LiveObject["kind"], schema?: string, owner?: string) {
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

/** The database itself, its schemas and their objects, each with what the stack expects of it. */
function databaseTargets(declared: DeclaredServer, db: LiveDatabase, add: (f: NewFinding) => void): Target[] {
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
  for (const schema of declared.schemas.filter((s) => s.database === db.name)) {
    if (db.schemas.some((s) => s.name === schema.name)) continue;
    add({
      rule: "drift",
      object: `${db.name}/${schema.name}`,
      services: sorted(areaServices(declared, db.name, schema.name)),
      message: `schema ${db.name}/${schema.name} is declared but does not exist`,
      fix: "run pulumi up",
    });
  }
  for (const s of db.schemas) {
    const services = areaServices(declared, db.name, s.name);
    targets.push({
      kind: "schema",
      database: db.name,
      schema: s.name,
      label: `${db.name}/${s.name}`,
      sqlName: q(s.name),
      owner: s.owner,
      acl: s.acl,
      services,
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

/** Ways out of a database: FDW and dblink extensions, foreign servers, user mappings, subscriptions. */
function backdoors(db: LiveDatabase, add: (f: NewFinding) => void): void {
  const base = { rule: "backdoor" as const, services: [] as string[] };
  for (const e of db.extensions.filter((x) => isBackdoorExtension(x.name))) {
    add({
      ...base,
      object: `${db.name} extension ${e.name}`,
      message: `extension ${e.name} in ${db.name} lets sessions reach other databases or servers`,
      fix: `DROP EXTENSION ${q(e.name)}; (in database ${db.name})`,
    });
  }
  for (const s of db.foreignServers) {
    add({
      ...base,
      object: `${db.name} foreign server ${s.name}`,
      subject: s.owner,
      message: `foreign server ${s.name} (${s.wrapper}, owner ${s.owner}) in ${db.name} reaches outside the database`,
      fix: `DROP SERVER ${q(s.name)} CASCADE; (in database ${db.name})`,
    });
  }
  for (const m of db.userMappings) {
    add({
      ...base,
      object: `${db.name} user mapping ${m.user}@${m.server}`,
      subject: m.user,
      message: `user mapping for ${m.user} on foreign server ${m.server} in ${db.name} holds credentials for another server`,
      fix: `DROP USER MAPPING FOR ${m.user === "public" ? "PUBLIC" : q(m.user)} SERVER ${q(m.server)}; (in database ${db.name})`,
    });
  }
  for (const s of db.subscriptions) {
    add({
      ...base,
      object: `${db.name} subscription ${s.name}`,
      subject: s.owner,
      message: `subscription ${s.name} (owner ${s.owner}) copies data into ${db.name} from another server`,
      fix: `DROP SUBSCRIPTION ${q(s.name)}; (in database ${db.name})`,
    });
  }
}
