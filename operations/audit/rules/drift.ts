/**
 * `drift`: the server and the stack disagree inside a service — a role, membership, database,
 * schema, owner, privilege or default privilege present live but not declared, or declared but
 * missing — where no more severe rule (cross-service, PUBLIC, powerful role) already says so.
 */
import { PUBLIC } from "../model";
import { type AuditContext, areaServices, defaultAclObject, extraDefaultAcl, type NewFinding, q, SQL_KIND, sorted } from "./context";
import type { ServerRule } from "./rule";

const UP = "run pulumi up";

export const drift: ServerRule = {
  id: "drift",
  severity: "high",
  source: "server",
  reportedWhen:
    "a privilege, membership or default privilege present live but not declared, or declared but missing; a declared role, database or schema missing; an owner other than declared",
  *check(ctx) {
    yield* roles(ctx);
    yield* memberships(ctx);
    yield* places(ctx);
    yield* owners(ctx);
    yield* privileges(ctx);
    yield* defaultPrivileges(ctx);
  },
};

const servicesOf = (service: string | undefined) => (service ? [service] : []);

function* roles({ live, declared, liveRoles, system, platform }: AuditContext): Generator<NewFinding> {
  for (const role of live.roles) {
    const d = declared.roles.get(role.name);
    if (system(role.name) || platform(role.name) || !d || d.login === role.login) continue;
    yield {
      object: `role ${role.name}`,
      subject: role.name,
      services: servicesOf(d.service),
      message: `role ${role.name} is ${role.login ? "LOGIN" : "NOLOGIN"} live but declared ${d.login ? "LOGIN" : "NOLOGIN"}`,
      fix: `ALTER ROLE ${q(role.name)} ${d.login ? "LOGIN" : "NOLOGIN"}; or ${UP}`,
    };
  }
  for (const d of declared.roles.values()) {
    if (liveRoles.has(d.name)) continue;
    yield {
      object: `role ${d.name}`,
      subject: d.name,
      services: servicesOf(d.service),
      message: `role ${d.name} is declared but does not exist on the server`,
      fix: `${UP} (or pulumi refresh if it was removed on purpose)`,
    };
  }
}

function* memberships({ live, declared, liveRoles, memberships, serviceOf }: AuditContext): Generator<NewFinding> {
  for (const m of memberships) {
    if (m.kind !== "undeclared") continue;
    yield {
      object: `role ${m.role}`,
      subject: m.member,
      services: sorted([serviceOf(m.member), serviceOf(m.role)].filter((s): s is string => !!s)),
      message: `${m.member} is a member of ${m.role} live, which the stack does not declare`,
      fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
    };
  }
  for (const d of declared.roles.values()) {
    for (const role of d.memberOf) {
      if (!liveRoles.has(d.name) || live.memberships.some((m) => m.member === d.name && m.role === role)) continue;
      yield {
        object: `role ${role}`,
        subject: d.name,
        services: servicesOf(d.service),
        message: `${d.name} is declared a member of ${role} but is not`,
        fix: `GRANT ${q(role)} TO ${q(d.name)}; or ${UP}`,
      };
    }
  }
}

/** Declared databases and schemas that do not exist. */
function* places({ live, declared, scoped, audited }: AuditContext): Generator<NewFinding> {
  const liveNames = new Set(live.databases.map((db) => db.name));
  for (const name of declared.databases.keys()) {
    if (liveNames.has(name)) continue;
    yield {
      object: name,
      services: sorted(scoped(name).areas.map((a) => a.service)),
      message: `database ${name} is declared but does not exist on the server`,
      fix: UP,
    };
  }
  for (const db of audited) {
    const here = scoped(db.name);
    for (const schema of here.schemas) {
      if (db.schemas.some((s) => s.name === schema.name)) continue;
      yield {
        object: `${db.name}/${schema.name}`,
        services: sorted(areaServices(here, db.name, schema.name)),
        message: `schema ${db.name}/${schema.name} is declared but does not exist`,
        fix: UP,
      };
    }
  }
}

/** Owners other than declared, and owners the stack does not know inside a service's area. */
function* owners({ targets, declared, platform, system }: AuditContext): Generator<NewFinding> {
  for (const t of targets) {
    const services = [...t.services];
    const alter = `ALTER ${SQL_KIND[t.kind]} ${t.sqlName} OWNER TO`;
    if (t.declaredOwner && t.declaredOwner !== t.owner && !(t.owner === "pg_database_owner" && t.kind === "schema")) {
      yield {
        object: t.label,
        subject: t.owner,
        services,
        message: `${t.kind} ${t.label} is owned by ${t.owner}, declared owner ${t.declaredOwner}`,
        fix: `${alter} ${q(t.declaredOwner)};`,
      };
    }
    if (t.services.size > 0 && !t.declaredOwner && !declared.roles.has(t.owner) && !platform(t.owner) && !system(t.owner)) {
      yield {
        object: t.label,
        subject: t.owner,
        services,
        message: `${t.kind} ${t.label} is owned by ${t.owner}, a role the stack does not declare`,
        fix: `${alter} <the service's owner role>;`,
      };
    }
  }
}

/** Privileges inside a service beyond or short of the declared ones (PUBLIC's and other services' aside). */
function* privileges({ extraGrants, missingGrants }: AuditContext): Generator<NewFinding> {
  for (const g of extraGrants) {
    if (g.grantee === PUBLIC || g.intruders.length > 0) continue;
    const t = g.target;
    yield {
      object: t.label,
      subject: g.grantee,
      services: [...t.services],
      message: `${g.grantee} has ${g.privileges.join(", ")} on ${t.kind} ${t.label}, which the stack does not declare`,
      fix: g.revoke,
    };
  }
  for (const g of missingGrants) {
    const t = g.target;
    yield {
      object: t.label,
      subject: g.grantee,
      services: [...t.services],
      message: `${g.grantee} is declared ${g.privileges.join(", ")} on ${t.kind} ${t.label} but does not have it`,
      fix: `GRANT ${g.privileges.join(", ")} ON ${SQL_KIND[t.kind]} ${t.sqlName} TO ${g.grantee === PUBLIC ? "PUBLIC" : q(g.grantee)}; or ${UP}`,
    };
  }
}

function* defaultPrivileges({ defaultAcls, scoped }: AuditContext): Generator<NewFinding> {
  for (const d of defaultAcls) {
    if (d.extra.length > 0 && d.grantee !== PUBLIC && d.intruders.length === 0) yield extraDefaultAcl(d);
  }
  for (const d of defaultAcls) {
    if (d.missing.length === 0) continue;
    yield {
      object: defaultAclObject(d),
      subject: d.grantee,
      services: sorted(areaServices(scoped(d.database), d.database, d.schema)),
      message: `new ${d.type}s created by ${d.owner} in ${d.database}/${d.schema} are declared to grant ${d.missing.join(", ")} to ${d.grantee}, but will not`,
      fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(d.owner)} IN SCHEMA ${q(d.schema)} GRANT ${d.missing.join(", ")} ON ${d.type.toUpperCase()}S TO ${q(d.grantee)}; or ${UP}`,
    };
  }
}
