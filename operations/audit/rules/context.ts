/**
 * One model of a server under audit, shared by every rule: the declared side split per database,
 * the live roles with their transitive memberships, and what comparing them observes once — each
 * audited object with its owner and privileges against the stack, the default privileges, the
 * memberships — which the rules of this folder turn into findings of their kind.
 */
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
} from "../model";
import { POWERFUL_ROLES } from "../../../policies/rules/postgresql";

import { byDatabase, databaseTargets, defaultAclDiffs, EMPTY_SCOPE, privilegesOf } from "./observations";
import { q, sorted } from "./sql";

export { ATTRIBUTE_SQL, q, SQL_KIND, sorted, SYSTEM_DATABASES, WRITE_PRIVILEGES } from "./sql";
export { areaServices, grantsFor } from "./observations";

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

/** Privileges on one object that one grantee holds live but is not declared (extra), or the other way round (missing). */
export interface MissingGrant {
  readonly target: Target;
  readonly grantee: string;
  readonly privileges: readonly string[];
}

export interface ExtraGrant extends MissingGrant {
  /** The REVOKE that removes them. */
  readonly revoke: string;
  /** Roles of other services that hold them and are to blame (not PUBLIC's: every role). */
  readonly intruders: readonly DeclaredRole[];
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
