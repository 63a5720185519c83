/**
 * Isolation rules: no role of one service reaches another service's database, schemas,
 * objects or roles; PUBLIC is shut out; service roles hold no cluster-wide power; no back
 * doors between databases. All mandatory in every stack.
 */
import { anyUnknown, PG, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";
import { isMonitorConnect } from "./monitoring";

/** Cluster-wide roles no service role may be a member of, at any depth. */
export const POWERFUL_ROLES: ReadonlySet<string> = new Set([
  "rds_superuser",
  "rds_replication",
  "rds_password",
  "rdsadmin",
  "azure_pg_admin",
  "cloudsqlsuperuser",
  "postgres",
  "pg_read_all_data",
  "pg_write_all_data",
  "pg_execute_server_program",
  "pg_read_server_files",
  "pg_write_server_files",
  "pg_signal_backend",
  "pg_create_subscription",
  "pg_checkpoint",
  "pg_use_reserved_connections",
  "pg_maintain",
  "pg_database_owner",
]);

/** Extensions that open a path out of a database. */
export const BACKDOOR_EXTENSIONS: ReadonlySet<string> = new Set([
  "postgres_fdw",
  "dblink",
  "file_fdw",
  "mysql_fdw",
  "oracle_fdw",
  "odbc_fdw",
]);

/** What a shared database may give its tenants: entry; CREATE only to a tenant's NOLOGIN owner role (createSchemas). */
const SHARED_DATABASE_PRIVILEGES: ReadonlySet<string> = new Set(["CONNECT", "TEMPORARY", "TEMP"]);
const SHARED_DATABASE_OWNER_PRIVILEGES: ReadonlySet<string> = new Set([...SHARED_DATABASE_PRIVILEGES, "CREATE"]);

/** A service's owner role: the NOLOGIN role that owns its schemas (never a login). */
const isOwnerRole = (role: { resource: PolicyInputResource }) => role.resource.props.login === false;

const isPublic = (role: unknown) => typeof role === "string" && role.toLowerCase() === "public";
const fmt = (service: string | undefined) => (service ? `service ${service}` : "no service");
const privs = (p: unknown) => (Array.isArray(p) ? p.map(String).join(", ") : String(p));

/** The service that owns what a grant or default privilege targets, and a label for it. */
function targetOf(
  graph: StackGraph,
  r: PolicyInputResource,
  objectType: string,
): { service?: string; shared?: ReadonlySet<string>; label: string } {
  const { database, schema } = r.props;
  const db = graph.database(r.provider, database);
  if (objectType === "database") {
    return { service: db?.service, shared: db && !db.service ? db.tenants : undefined, label: `database "${String(database)}"` };
  }
  const sch = schema === undefined ? undefined : graph.schema(r.provider, database, schema);
  // A schema the stack does not declare (e.g. public) belongs to whoever owns its database.
  const service = sch ? sch.service : db?.service;
  return { service, label: `schema "${String(schema ?? "(all)")}" in database "${String(database)}"` };
}

export const noCrossServicePrivileges: Rule = {
  name: "no-cross-service-privileges",
  description: "A service's roles may hold privileges and default privileges only on that service's own database and schemas.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    for (const r of [...graph.ofType(PG.grant), ...graph.ofType(PG.defaultPrivileges)]) {
      const p = r.props;
      if (anyUnknown(p.role, p.database, p.schema, p.owner, p.objectType)) {
        out.push({
          urn: r.urn,
          message: `${r.name}: cannot verify isolation during preview (role, database or schema is unknown)`,
          unverifiable: true,
        });
        continue;
      }
      if (isPublic(p.role)) continue; // no-public-access
      const grantee = graph.role(r.provider, p.role);
      if (!grantee) continue; // no-unmanaged-grantees
      if (!grantee.service && isMonitorConnect(r)) continue; // monitoring-role
      const server = graph.serverLabel(r.provider);
      const isDefault = r.type === PG.defaultPrivileges;
      const objectType = String(p.objectType);
      const target = targetOf(graph, r, isDefault ? "schema" : objectType);
      const what = isDefault
        ? `default privileges (${privs(p.privileges)}) on future ${objectType}s in ${target.label}`
        : `${privs(p.privileges)} on ${objectType === "database" ? target.label : `${objectType}s in ${target.label}`}`;

      if (target.shared && target.shared.size > 0) {
        const allowed = !isDefault && isOwnerRole(grantee) ? SHARED_DATABASE_OWNER_PRIVILEGES : SHARED_DATABASE_PRIVILEGES;
        const extra = (Array.isArray(p.privileges) ? p.privileges : []).filter((x) => !allowed.has(String(x).toUpperCase()));
        if (!grantee.service || !target.shared.has(grantee.service) || extra.length > 0) {
          out.push({
            urn: r.urn,
            message: `role "${String(p.role)}" (${fmt(grantee.service)}) must hold at most CONNECT, TEMPORARY on shared ${target.label} on server ${server} (its NOLOGIN owner role also CREATE: services.<name>.createSchemas), and only when its service has a schema there; found ${what}`,
          });
        }
        continue;
      }
      if (grantee.service !== target.service) {
        out.push({
          urn: r.urn,
          message: `role "${String(p.role)}" (${fmt(grantee.service)}) must not be granted ${what} of ${fmt(target.service)} on server ${server}`,
        });
        continue;
      }
      if (isDefault) {
        const owner = graph.role(r.provider, p.owner);
        if (owner?.service !== grantee.service) {
          out.push({
            urn: r.urn,
            message: `default privileges of objects created by "${String(p.owner)}" (${fmt(owner?.service)}) must not be given to role "${String(p.role)}" (${fmt(grantee.service)}) on server ${server}`,
          });
        }
      }
    }
    return out;
  },
};

/** Membership edges per provider: member -> granted roles, with the resource that makes each edge. */
function membershipEdges(graph: StackGraph): Map<string, Array<{ to: string; via: PolicyInputResource }>> {
  const edges = new Map<string, Array<{ to: string; via: PolicyInputResource }>>();
  const add = (provider: string | null, from: unknown, to: unknown, via: PolicyInputResource) => {
    const k = `${provider}|${String(from)}`;
    edges.set(k, [...(edges.get(k) ?? []), { to: String(to), via }]);
  };
  for (const r of graph.ofType(PG.grantRole)) add(r.provider, r.props.role, r.props.grantRole, r);
  for (const r of graph.ofType(PG.role))
    for (const g of (r.props.roles as unknown[] | undefined) ?? []) add(r.provider, r.props.name, g, r);
  return edges;
}

export const noCrossServiceMembership: Rule = {
  name: "no-cross-service-membership",
  description:
    "A service's roles may be members only of that service's own roles, never of another service's or of cluster-wide powerful roles.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    const edges = membershipEdges(graph);
    const unknownEdges = [...edges.values()].flat().filter((e) => anyUnknown(e.to));
    for (const e of unknownEdges)
      out.push({
        urn: e.via.urn,
        message: `${e.via.name}: cannot verify role membership during preview (a role name is unknown)`,
        unverifiable: true,
      });

    for (const owned of graph.roles.values()) {
      if (!owned.service) continue;
      const provider = owned.resource.provider;
      const start = String(owned.resource.props.name);
      // Depth-first over granted roles; the path is kept to name the chain.
      const seen = new Set<string>([start]);
      const stack: Array<{ role: string; path: string[]; first?: PolicyInputResource }> = [{ role: start, path: [start] }];
      while (stack.length > 0) {
        const cur = stack.pop() as (typeof stack)[number];
        for (const e of edges.get(`${provider}|${cur.role}`) ?? []) {
          if (seen.has(e.to) || anyUnknown(e.to)) continue;
          seen.add(e.to);
          const path = [...cur.path, e.to];
          const first = cur.first ?? e.via;
          const target = graph.role(provider, e.to);
          const chain = path.length > 2 ? ` (through ${path.join(" -> ")})` : "";
          if (POWERFUL_ROLES.has(e.to)) {
            out.push({
              urn: first.urn,
              message: `role "${start}" (service ${owned.service}) must not be a member of cluster-wide role "${e.to}"${chain} on server ${graph.serverLabel(provider)}`,
            });
          } else if (target && target.service !== owned.service) {
            out.push({
              urn: first.urn,
              message: `role "${start}" (service ${owned.service}) must not be a member of role "${e.to}" (${fmt(target.service)})${chain} on server ${graph.serverLabel(provider)}`,
            });
          }
          stack.push({ role: e.to, path, first });
        }
      }
    }
    return out;
  },
};

export const noPublicAccess: Rule = {
  name: "no-public-access",
  description:
    "PUBLIC gets nothing on a service database or schema, and every service database has PUBLIC's CONNECT and TEMPORARY revoked.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    const serviceDbs = new Set(graph.serviceDatabases().map((d) => `${d.resource.provider}|${String(d.resource.props.name)}`));
    const revoked = new Set<string>();
    for (const r of [...graph.ofType(PG.grant), ...graph.ofType(PG.defaultPrivileges)]) {
      const p = r.props;
      if (!isPublic(p.role)) continue;
      const dbKey = `${r.provider}|${String(p.database)}`;
      const empty = Array.isArray(p.privileges) && p.privileges.length === 0;
      if (r.type === PG.grant && p.objectType === "database" && empty) revoked.add(dbKey);
      if (!empty && serviceDbs.has(dbKey)) {
        out.push({
          urn: r.urn,
          message: `PUBLIC must not be granted ${privs(p.privileges)} on ${p.objectType === "database" ? "" : `${String(p.objectType)}s in `}database "${String(p.database)}" on server ${graph.serverLabel(r.provider)}`,
        });
      }
    }
    for (const d of graph.serviceDatabases()) {
      const k = `${d.resource.provider}|${String(d.resource.props.name)}`;
      if (!revoked.has(k)) {
        out.push({
          urn: d.resource.urn,
          message: `database "${String(d.resource.props.name)}" (${d.service ? `service ${d.service}` : "shared"}) must have PUBLIC's CONNECT and TEMPORARY revoked (a postgresql.Grant to role "public" with no privileges)`,
        });
      }
    }
    return out;
  },
};

export const noUnmanagedGrantees: Rule = {
  name: "no-unmanaged-grantees",
  description: "Privileges and memberships may be given only to roles the stack declares on the same server.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    const grantees: Array<[PolicyInputResource, unknown]> = [
      ...graph.ofType(PG.grant).map((r): [PolicyInputResource, unknown] => [r, r.props.role]),
      ...graph.ofType(PG.defaultPrivileges).map((r): [PolicyInputResource, unknown] => [r, r.props.role]),
      ...graph.ofType(PG.grantRole).map((r): [PolicyInputResource, unknown] => [r, r.props.role]),
    ];
    for (const [r, role] of grantees) {
      if (anyUnknown(role)) {
        out.push({ urn: r.urn, message: `${r.name}: cannot verify the grantee during preview (role is unknown)`, unverifiable: true });
      } else if (r.type === PG.grantRole && role === graph.adminOf(r.provider) && graph.role(r.provider, r.props.grantRole)) {
        // The server's admin joins the owner roles it manages: it is the platform itself, not a tenant.
        continue;
      } else if (!isPublic(role) && !graph.role(r.provider, role)) {
        out.push({
          urn: r.urn,
          message: `role "${String(role)}" must be declared by the stack on server ${graph.serverLabel(r.provider)} before it is granted anything`,
        });
      } else if (isPublic(role) && r.type === PG.grantRole) {
        out.push({ urn: r.urn, message: `PUBLIC must not be made a member of any role` });
      }
    }
    return out;
  },
};

const POWER_ATTRIBUTES = [
  ["superuser", "SUPERUSER"],
  ["createRole", "CREATEROLE"],
  ["createDatabase", "CREATEDB"],
  ["replication", "REPLICATION"],
  ["bypassRowLevelSecurity", "BYPASSRLS"],
] as const;

export const serviceRolesUnprivileged: Rule = {
  name: "service-roles-unprivileged",
  description: "Service roles are never SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    for (const owned of graph.roles.values()) {
      if (!owned.service) continue;
      const r = owned.resource;
      for (const [prop, sql] of POWER_ATTRIBUTES) {
        if (anyUnknown(r.props[prop]))
          out.push({ urn: r.urn, message: `${r.name}: cannot verify ${sql} during preview`, unverifiable: true });
        else if (r.props[prop] === true)
          out.push({ urn: r.urn, message: `role "${String(r.props.name)}" (service ${owned.service}) must not be ${sql}` });
      }
    }
    return out;
  },
};

export const noDatabaseBackdoors: Rule = {
  name: "no-database-backdoors",
  description: "No foreign servers, user mappings, subscriptions or dblink/postgres_fdw on a server hosting services.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    const hosts = graph.serviceProviders();
    const onServiceServer = (r: PolicyInputResource) => hosts.has(r.provider);
    for (const r of graph.ofType(PG.extension)) {
      const name = String(r.props.name ?? r.name);
      if (BACKDOOR_EXTENSIONS.has(name) && onServiceServer(r)) {
        out.push({
          urn: r.urn,
          message: `extension "${name}" must not be installed in database "${String(r.props.database)}" on server ${graph.serverLabel(r.provider)}: it reaches other databases`,
        });
      }
    }
    for (const [type, what] of [
      [PG.server, "foreign server"],
      [PG.userMapping, "user mapping"],
      [PG.subscription, "subscription"],
    ] as const) {
      for (const r of graph.ofType(type)) {
        if (onServiceServer(r)) {
          out.push({
            urn: r.urn,
            message: `${what} "${String(r.props.serverName ?? r.props.name ?? r.name)}" must not exist on server ${graph.serverLabel(r.provider)}: cross-database access is by API only`,
          });
        }
      }
    }
    for (const r of graph.ofType(PG.grant)) {
      const t = String(r.props.objectType);
      if ((t === "foreign_data_wrapper" || t === "foreign_server") && onServiceServer(r)) {
        out.push({
          urn: r.urn,
          message: `role "${String(r.props.role)}" must not be granted ${privs(r.props.privileges)} on a ${t.replace(/_/g, " ")} on server ${graph.serverLabel(r.provider)}`,
        });
      }
    }
    return out;
  },
};

export const POSTGRESQL_RULES: readonly Rule[] = [
  noCrossServicePrivileges,
  noCrossServiceMembership,
  noPublicAccess,
  noUnmanagedGrantees,
  serviceRolesUnprivileged,
  noDatabaseBackdoors,
];
