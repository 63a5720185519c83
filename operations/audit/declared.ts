/**
 * The declared side of the audit: what the stack says each role may do, read from the same
 * neutral resource list the policy pack reads (a synthesized program or a `pulumi stack export`),
 * grouped per server (PostgreSQL provider) and attributed to services through the resource graph.
 */
import type { ServerSpec, Spec } from "../../components/spec";
import { CONTAINER_ADMIN_USER, CONTAINER_REPLICATION_USER, LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
import { PG, StackGraph } from "../../policies/engine/graph";
import type { PolicyInputResource, StackInput } from "../../policies/engine/types";
import {
  type DeclaredArea,
  type DeclaredDefaultPrivileges,
  type DeclaredGrant,
  type DeclaredRole,
  type DeclaredServer,
  type ObjectKind,
  PUBLIC,
} from "./model";

/** Roles every PostgreSQL (and RDS) server has built in: never "unmanaged". */
export function isBuiltInRole(name: string, hosting: string): boolean {
  if (name.startsWith("pg_")) return true;
  return hosting === "rds" && (name === "rdsadmin" || name === "rdsrepladmin" || name.startsWith("rds_"));
}

/** The logins the platform itself connects with on a server of this spec, besides the admin. */
function platformLogins(server: ServerSpec | undefined): string[] {
  switch (server?.hosting) {
    case "local":
      return [LOCAL_BOOTSTRAP_SUPERUSER];
    case "container":
      return [CONTAINER_ADMIN_USER, CONTAINER_REPLICATION_USER];
    default:
      return [];
  }
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
/** The provider writes "public" for the PUBLIC pseudo-role. */
const grantee = (role: string) => (role.toLowerCase() === "public" ? PUBLIC : role);
const upper = (privileges: unknown) => strings(privileges).map((p) => p.toUpperCase());

/** The declared state of every server of a stack, keyed by server name. */
export function declaredServers(input: StackInput, spec: Spec): Map<string, DeclaredServer> {
  const graph = new StackGraph(input);
  const servers = new Map<string, DeclaredServer>();
  for (const provider of graph.serverProviders()) {
    const name = graph.serverLabel(provider.urn);
    const server = spec.servers.find((s) => s.name === name);
    servers.set(name, declaredServer(graph, provider, name, server));
  }
  return servers;
}

function declaredServer(graph: StackGraph, provider: PolicyInputResource, name: string, server: ServerSpec | undefined): DeclaredServer {
  const on = (type: string) => graph.ofType(type).filter((r) => r.provider === provider.urn);
  const admin = str(provider.props.username) ?? "";
  const platformRoles = new Set([admin, ...platformLogins(server)].filter(Boolean));

  const roles = new Map<string, DeclaredRole>();
  for (const r of on(PG.role)) {
    const roleName = str(r.props.name) ?? r.name;
    roles.set(roleName, {
      name: roleName,
      service: graph.serviceOf(r),
      login: r.props.login === true,
      attributes: {
        superuser: r.props.superuser === true,
        createdb: r.props.createDatabase === true,
        createrole: r.props.createRole === true,
        replication: r.props.replication === true,
        bypassrls: r.props.bypassRowLevelSecurity === true,
      },
      memberOf: strings(r.props.roles),
    });
  }
  for (const g of on(PG.grantRole)) {
    const member = roles.get(str(g.props.role) ?? "");
    const role = str(g.props.grantRole);
    if (member && role) roles.set(member.name, { ...member, memberOf: [...member.memberOf, role] });
  }

  const databases = new Map<string, { owner: string }>();
  for (const d of on(PG.database)) databases.set(str(d.props.name) ?? d.name, { owner: str(d.props.owner) ?? admin });

  const schemas = on(PG.schema).map((s) => ({
    database: str(s.props.database) ?? "",
    name: str(s.props.name) ?? s.name,
    owner: str(s.props.owner) ?? admin,
    service: graph.serviceOf(s),
  }));

  const areas: DeclaredArea[] = [];
  for (const d of on(PG.database)) {
    const service = graph.serviceOf(d);
    if (service) areas.push({ service, database: str(d.props.name) ?? d.name });
  }
  const schemaAreas = new Map<string, { service: string; database: string; schemas: string[] }>();
  for (const s of schemas) {
    if (!s.service || areas.some((a) => a.service === s.service && a.database === s.database)) continue;
    const k = `${s.service}|${s.database}`;
    const area = schemaAreas.get(k) ?? { service: s.service, database: s.database, schemas: [] };
    area.schemas.push(s.name);
    schemaAreas.set(k, area);
  }
  areas.push(...schemaAreas.values());

  const grants: DeclaredGrant[] = on(PG.grant).map((g) => ({
    database: str(g.props.database) ?? "",
    grantee: grantee(str(g.props.role) ?? ""),
    objectType: (str(g.props.objectType) ?? "database") as ObjectKind,
    schema: str(g.props.schema),
    privileges: upper(g.props.privileges),
  }));
  const defaultPrivileges: DeclaredDefaultPrivileges[] = on(PG.defaultPrivileges).map((d) => ({
    database: str(d.props.database) ?? "",
    owner: str(d.props.owner) ?? admin,
    grantee: grantee(str(d.props.role) ?? ""),
    schema: str(d.props.schema),
    objectType: (str(d.props.objectType) ?? "table") as DeclaredDefaultPrivileges["objectType"],
    privileges: upper(d.props.privileges),
  }));
  const extensions = on(PG.extension).map((e) => ({ database: str(e.props.database) ?? "", name: str(e.props.name) ?? e.name }));

  return {
    name,
    hosting: server?.hosting ?? "external",
    admin,
    platformRoles,
    roles,
    databases,
    schemas: schemas.map(({ database, name: schema, owner }) => ({ database, name: schema, owner })),
    areas,
    grants,
    defaultPrivileges,
    extensions,
  };
}
