/**
 * What comparing the declared side with a server's catalogs observes, computed once for every rule:
 * the objects under audit with what the stack expects of them, each object's extra and missing
 * privileges, each database's default privileges against the declared ones.
 */
import type { AuditContext, DefaultAclDiff, ExtraGrant, MissingGrant, Target } from "./context";
import type { DeclaredRole, DeclaredServer, LiveDatabase, LiveObject } from "../model";
import { PUBLIC } from "../model";
import { q, SQL_KIND } from "./sql";

export type BaseContext = Pick<AuditContext, "declared" | "platform" | "serviceOf" | "holders" | "scoped">;

/** One object's live privileges, owners' own entries aside, against what the stack grants on it. */
export function privilegesOf(ctx: BaseContext, t: Target): { extra: ExtraGrant[]; missing: MissingGrant[] } {
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
export function defaultAclDiffs(ctx: BaseContext, db: LiveDatabase): DefaultAclDiff[] {
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
export function databaseTargets(declared: DeclaredServer, db: LiveDatabase): Target[] {
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
