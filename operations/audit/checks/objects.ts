/**
 * Databases and the objects in them: declared databases and schemas that are missing, databases
 * no stack declares or that could not be read, ways out of a database, and each object's owner
 * and privileges against the stack — cross-service access, PUBLIC access and drift.
 */
import type { DeclaredServer, LiveDatabase } from "../model";
import { PUBLIC } from "../model";
import { type AuditContext, areaServices, grantsFor, type NewFinding, q, SQL_KIND, sorted, SYSTEM_DATABASES, type Target } from "./context";

/** Extensions that let a session reach other databases or servers. */
export const BACKDOOR_EXTENSIONS = new Set(["dblink", "postgres_fdw", "file_fdw", "mysql_fdw", "oracle_fdw", "tds_fdw", "mongo_fdw"]);
const isBackdoorExtension = (name: string) => BACKDOOR_EXTENSIONS.has(name) || name.endsWith("_fdw");

/** Every live database against the stack; returns the objects of the declared ones to check. */
export function checkDatabases(ctx: AuditContext): Target[] {
  const { add, declared, live, scoped, serviceOf } = ctx;
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

  return targets;
}

/** One object's owner and privileges against what the stack declares. */
export function checkTarget(ctx: AuditContext, t: Target): void {
  const { add, declared, system, platform, serviceOf, holders } = ctx;
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
