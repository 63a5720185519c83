/**
 * Connection pooling (docs/pooling.md): a server's `pooler` and a service's `pool`, validated
 * against the logins' connection limits and the server's `max_connections`.
 */
import { LOCAL_MAX_CONNECTIONS, POOLER_DEFAULTS } from "./defaults";
import type { PoolerSpec, ServerSpec, ServiceSpec } from "./model";
import { awsServerName, proxyEndpointName } from "./naming";
import { slotsOf } from "./rotation";
import type { PathSegment, Problem } from "./problems";
import type { RawServer, RawService } from "./schema";

/** Server connections of a local primary kept out of the pools: the admin, migrators, monitoring, replication. */
export const DIRECT_RESERVE = 40;

/** The logins a pool serves: the app and read-only logins; migrations always connect directly. */
export const POOLED_KINDS: ReadonlySet<string> = new Set(["app", "readonly"]);

export function buildPooler(raw: RawServer, primaryPort: number, standbys: number): PoolerSpec | undefined {
  if (raw.hosting !== "local" || !raw.pooler) return undefined;
  const port = raw.pooler.port ?? primaryPort + POOLER_DEFAULTS.portOffset;
  return {
    port,
    standbyPorts: Array.from({ length: standbys }, (_, i) => port + 1 + i),
    mode: raw.pooler.mode ?? POOLER_DEFAULTS.mode,
    maxClientConnections: raw.pooler.maxClientConnections ?? POOLER_DEFAULTS.maxClientConnections,
    defaultPoolSize: raw.pooler.defaultPoolSize ?? POOLER_DEFAULTS.defaultPoolSize,
  };
}

const poolerOf = (server: ServerSpec | undefined) => (server?.hosting === "local" ? server.pooler : undefined);

/**
 * A pool behind RDS Proxy: it multiplexes per transaction (pinning a client whose session sets
 * state) and opens server connections per login up to the login's connection limit, within the
 * proxy's share of max_connections, so neither size nor mode is the service's to choose.
 */
function rdsProxyPool(service: ServiceSpec, raw: RawService): { service: ServiceSpec; problems: Problem[] } {
  const at = (...p: PathSegment[]) => ["services", service.name, "pool", ...p];
  const problems: Problem[] = [];
  if (raw.pool?.size !== undefined)
    problems.push({
      path: at("size"),
      message: `RDS Proxy has no pool size per service: it opens up to each login's connection limit, within servers.${service.server}.pooler.maxConnectionsPercent`,
    });
  if (raw.pool?.mode === "session")
    problems.push({
      path: at("mode"),
      message:
        "RDS Proxy multiplexes per transaction (a session that sets state is pinned to its connection): leave mode out, or connect directly",
    });
  const limits = service.logins.filter((l) => POOLED_KINDS.has(l.kind)).map((l) => l.connectionLimit);
  return { service: { ...service, pool: { size: Math.min(...limits.filter((n) => n >= 0), 10_000), mode: "transaction" } }, problems };
}

/** A service's pool with its server's defaults, or the problem that refuses it. */
export function withPool(
  service: ServiceSpec,
  raw: RawService,
  servers: readonly ServerSpec[],
): { service: ServiceSpec; problems: Problem[] } {
  if (!raw.pool) return { service, problems: [] };
  const at = (...p: PathSegment[]) => ["services", service.name, "pool", ...p];
  const server = servers.find((s) => s.name === service.server);
  if (server?.hosting === "rds" && server.pooler) return rdsProxyPool(service, raw);
  const pooler = poolerOf(server);
  if (!pooler) {
    const why = server && server.hosting !== "local" && server.hosting !== "rds" ? ` (hosting ${server.hosting} has no pooler)` : "";
    return {
      service,
      problems: [{ path: at(), message: `server ${service.server} has no pooler${why}; declare servers.${service.server}.pooler` }],
    };
  }
  const pool = { size: raw.pool.size ?? pooler.defaultPoolSize, mode: raw.pool.mode ?? pooler.mode };
  const problems: Problem[] = service.logins
    .filter((l) => POOLED_KINDS.has(l.kind) && l.connectionLimit >= 0 && pool.size > l.connectionLimit)
    .map((l) => ({
      path: at("size"),
      message: `${pool.size} server connections per login is above ${l.name}'s connection limit ${l.connectionLimit}: the pool could not open them`,
    }));
  return { service: { ...service, pool }, problems };
}

/** RDS Proxy's quota of endpoints beyond its default one. */
export const RDS_PROXY_ENDPOINTS = 20;

/** Each pooled service on an RDS Proxy gets an endpoint: within the quota, each a valid name. */
export function checkProxyEndpoints(servers: readonly ServerSpec[], services: readonly ServiceSpec[], environment: string): Problem[] {
  const out: Problem[] = [];
  for (const server of servers) {
    if (server.hosting !== "rds" || !server.pooler) continue;
    const pooled = services.filter((s) => s.server === server.name && s.pool);
    if (pooled.length > RDS_PROXY_ENDPOINTS)
      out.push({
        path: ["servers", server.name, "pooler"],
        message: `${pooled.length} pooled services, each with an RDS Proxy endpoint of its own: a proxy has at most ${RDS_PROXY_ENDPOINTS}; pool at most ${RDS_PROXY_ENDPOINTS} services on ${server.name}`,
      });
    for (const service of pooled) {
      const name = proxyEndpointName(awsServerName(environment, server.name), service.name);
      if (name.length > 63 || name.includes("--") || name.endsWith("-"))
        out.push({
          path: ["services", service.name, "pool"],
          message: `its RDS Proxy endpoint would be named ${name}: at most 63 characters, no double or trailing hyphen; rename the service or connect it directly`,
        });
    }
  }
  return out;
}

/** The server connections a server's pools may open in all stay below its max_connections less a reserve. */
export function checkPoolTotals(servers: readonly ServerSpec[], services: readonly ServiceSpec[]): Problem[] {
  const out: Problem[] = [];
  for (const server of servers) {
    if (!poolerOf(server)) continue;
    const pooled = services.filter((s) => s.server === server.name && s.pool);
    // A rotated login's two credential slots have a pool each (docs/rotation.md).
    const pools = (s: ServiceSpec) => s.logins.filter((l) => POOLED_KINDS.has(l.kind)).reduce((n, l) => n + slotsOf(l).length, 0);
    const total = pooled.reduce((n, s) => n + (s.pool?.size ?? 0) * pools(s), 0);
    if (total > LOCAL_MAX_CONNECTIONS - DIRECT_RESERVE)
      out.push({
        path: ["servers", server.name, "pooler"],
        message: `the pools of ${pooled.map((s) => s.name).join(", ")} may open ${total} server connections; the server has max_connections ${LOCAL_MAX_CONNECTIONS}, ${DIRECT_RESERVE} of them kept for direct logins: lower services.<name>.pool.size`,
      });
  }
  return out;
}
