/**
 * The ownership model: every PostgreSQL role, database and schema attributed to its server
 * (the provider it is registered with) and to its service (the ServiceDatabase component it
 * sits under), from the resource graph alone, never from naming conventions. Resources
 * declared outside the components (a raw Grant in index.ts) are resolved through the objects
 * they name on the same provider. Same names on different servers are different objects.
 */
import { type PolicyInputResource, type StackInput, UNKNOWN } from "./types";

export const SERVICE_COMPONENT = "db-platform:service:ServiceDatabase";
export const PG = {
  role: "postgresql:index/role:Role",
  database: "postgresql:index/database:Database",
  schema: "postgresql:index/schema:Schema",
  grant: "postgresql:index/grant:Grant",
  grantRole: "postgresql:index/grantRole:GrantRole",
  defaultPrivileges: "postgresql:index/defaultPrivileges:DefaultPrivileges",
  extension: "postgresql:index/extension:Extension",
  server: "postgresql:index/server:Server",
  userMapping: "postgresql:index/userMapping:UserMapping",
  subscription: "postgresql:index/subscription:Subscription",
  provider: "pulumi:providers:postgresql",
} as const;

export interface OwnedObject {
  readonly resource: PolicyInputResource;
  /** The owning service, or undefined for objects outside any service. */
  readonly service?: string;
}

export interface DatabaseObject extends OwnedObject {
  /** Services with schemas in it (a shared database); empty for a service's own database. */
  readonly tenants: ReadonlySet<string>;
}

/** `provider|name` keys: the same name on another server is another object. */
const key = (...parts: unknown[]) => parts.map(String).join("|");

export class StackGraph {
  readonly byUrn = new Map<string, PolicyInputResource>();
  readonly roles = new Map<string, OwnedObject>();
  readonly databases = new Map<string, DatabaseObject>();
  readonly schemas = new Map<string, OwnedObject>();
  private readonly serviceCache = new Map<string, string | undefined>();

  readonly input: StackInput;

  /** Provider URN -> the URN that stands for its server (itself, or the first provider at its address). */
  private readonly canonical: Map<string, string>;

  constructor(input: StackInput) {
    this.canonical = canonicalProviders(input.resources);
    this.input = { ...input, resources: onCanonicalProviders(input.resources, this.canonical) };
    for (const r of this.input.resources) this.byUrn.set(r.urn, r);
    for (const r of this.input.resources) {
      const service = this.serviceOf(r);
      if (r.type === PG.role) this.roles.set(key(r.provider, r.props.name), { resource: r, service });
      if (r.type === PG.schema) this.schemas.set(key(r.provider, r.props.database, r.props.name), { resource: r, service });
    }
    const tenants = new Map<string, Set<string>>();
    for (const s of this.schemas.values()) {
      if (!s.service) continue;
      const k = key(s.resource.provider, s.resource.props.database);
      tenants.set(k, (tenants.get(k) ?? new Set()).add(s.service));
    }
    for (const r of this.input.resources) {
      if (r.type !== PG.database) continue;
      const k = key(r.provider, r.props.name);
      const service = this.serviceOf(r);
      this.databases.set(k, { resource: r, service, tenants: service ? new Set() : (tenants.get(k) ?? new Set()) });
    }
  }

  ofType(type: string): PolicyInputResource[] {
    return this.input.resources.filter((r) => r.type === type);
  }

  /** The service whose component this resource is under, by walking parents. */
  serviceOf(r: PolicyInputResource): string | undefined {
    if (this.serviceCache.has(r.urn)) return this.serviceCache.get(r.urn);
    let found: string | undefined;
    for (let cur: PolicyInputResource | undefined = r; cur; cur = cur.parent ? this.byUrn.get(cur.parent) : undefined) {
      if (cur.type === SERVICE_COMPONENT) {
        found = cur.name;
        break;
      }
    }
    this.serviceCache.set(r.urn, found);
    return found;
  }

  role(provider: string | null, name: unknown): OwnedObject | undefined {
    return this.roles.get(key(provider, name));
  }

  database(provider: string | null, name: unknown): DatabaseObject | undefined {
    return this.databases.get(key(provider, name));
  }

  schema(provider: string | null, database: unknown, name: unknown): OwnedObject | undefined {
    return this.schemas.get(key(provider, database, name));
  }

  /** Databases that hold service data: a service's own, or shared by service schemas. */
  serviceDatabases(): DatabaseObject[] {
    return [...this.databases.values()].filter((d) => d.service || d.tenants.size > 0);
  }

  /** Providers that host at least one service object. */
  serviceProviders(): Set<string | null> {
    return new Set(this.serviceDatabases().map((d) => d.resource.provider));
  }

  /** One provider per server: those that stand for their server. */
  serverProviders(): PolicyInputResource[] {
    return this.ofType(PG.provider).filter((p) => (this.canonical.get(p.urn) ?? p.urn) === p.urn);
  }

  /** The login a provider connects as: the server's admin (the RDS master user, a local admin). */
  adminOf(provider: string | null): string | undefined {
    const username = provider ? this.byUrn.get(provider)?.props.username : undefined;
    return typeof username === "string" ? username : undefined;
  }

  /** Human label for a server: the provider resource's name. */
  serverLabel(provider: string | null): string {
    if (!provider) return "the default provider";
    return this.byUrn.get(provider)?.name.replace(/-postgresql$/, "") ?? provider.split("::").pop() ?? provider;
  }
}

/**
 * A server is its address, not its provider resource: objects registered through a second
 * provider pointed at the same host and port (the platform's per-database providers, or anyone
 * else's) are the same server's objects, so every rule sees them under the first such provider's
 * URN. Where the address is unknown (an RDS endpoint at preview), the platform's providers of one
 * server are recognized as the children of the same server component with the same login.
 */
function canonicalProviders(resources: readonly PolicyInputResource[]): Map<string, string> {
  const first = new Map<string, string>();
  const canonical = new Map<string, string>();
  for (const r of resources) {
    if (r.type !== PG.provider) continue;
    const known = !anyUnknown(r.props.host, r.props.port) && r.props.host !== undefined;
    const identity = known
      ? `address ${String(r.props.host)}:${String(r.props.port ?? 5432)}`
      : r.parent
        ? `server ${r.parent} as ${String(r.props.username)}`
        : `provider ${r.urn}`;
    if (!first.has(identity)) first.set(identity, r.urn);
    canonical.set(r.urn, first.get(identity) as string);
  }
  return canonical;
}

function onCanonicalProviders(resources: readonly PolicyInputResource[], canonical: Map<string, string>): PolicyInputResource[] {
  return resources.map((r) => {
    const to = r.provider ? canonical.get(r.provider) : undefined;
    return to && to !== r.provider ? { ...r, provider: to } : r;
  });
}

/** True when any of the values is unknown (preview). */
export function anyUnknown(...values: unknown[]): boolean {
  return values.some((v) => v === UNKNOWN || (Array.isArray(v) && v.includes(UNKNOWN)));
}
