/**
 * The poolers of a stack's local servers (docs/pooling.md): one PgBouncer beside each server with
 * `pooler` and beside each of its standbys. `local start` and `stop` run them with the servers;
 * after each `up` their logins follow the stack's outputs (the passwords the stack generated),
 * written and reloaded, never restarted.
 */
import * as path from "node:path";
import type { LocalServerSpec, Spec } from "../../components/spec";
import { POOLED_KINDS } from "../../components/spec/poolRules";
import { LocalPooler, type PoolEntry } from "./pooler";
import { asServerUser } from "./postgres";

/** The pooler beside each instance of a local server (primary first), by instance name. */
export function localPoolers(s: LocalServerSpec, root: string, projectDir: string): Map<string, LocalPooler> {
  const out = new Map<string, LocalPooler>();
  const p = s.pooler;
  if (!p) return out;
  const instances = [
    { name: s.name, port: s.port, poolerPort: p.port },
    ...s.replicas.map((r, i) => ({ ...r, poolerPort: p.standbyPorts[i] })),
  ];
  for (const instance of instances) {
    out.set(
      instance.name,
      new LocalPooler({
        name: instance.name,
        dir: path.join(root, instance.name, "pooler"),
        port: instance.poolerPort,
        serverHost: s.host,
        serverPort: instance.port,
        mode: p.mode,
        maxClientConnections: p.maxClientConnections,
        defaultPoolSize: p.defaultPoolSize,
        runAs: asServerUser(),
        projectDir,
      }),
    );
  }
  return out;
}

interface ServiceOutput {
  readonly database: string;
  readonly directUrls?: Readonly<Record<string, string>>;
}

/**
 * Each pooler's logins, from the spec and the stack's outputs: every pooled login of a service
 * with a pool, at the instance its direct URL points at, with the password the stack gave it.
 */
export function poolEntries(
  spec: Spec,
  server: LocalServerSpec,
  services: Readonly<Record<string, ServiceOutput>>,
): Map<string, PoolEntry[]> {
  const out = new Map<string, PoolEntry[]>([[server.name, []], ...server.replicas.map((r) => [r.name, []] as [string, PoolEntry[]])]);
  for (const service of spec.services) {
    const output = services[service.name];
    if (service.server !== server.name || !service.pool || !output?.directUrls) continue;
    for (const login of service.logins.filter((l) => POOLED_KINDS.has(l.kind))) {
      const direct = output.directUrls[login.key];
      if (!direct) continue;
      const url = new URL(direct);
      const instance = server.replicas.find((r) => String(r.port) === url.port)?.name ?? server.name;
      out.get(instance)?.push({
        database: output.database,
        login: login.name,
        password: decodeURIComponent(url.password),
        mode: service.pool.mode,
        size: service.pool.size,
      });
    }
  }
  return out;
}

/** After `up`: each pooler's files follow the outputs; a running pooler whose files changed rereads them. */
export async function syncPoolers(
  spec: Spec,
  root: string,
  projectDir: string,
  services: Readonly<Record<string, ServiceOutput>>,
): Promise<string[]> {
  const said: string[] = [];
  for (const server of spec.servers) {
    if (server.hosting !== "local" || !server.pooler) continue;
    const entries = poolEntries(spec, server, services);
    for (const [instance, pooler] of localPoolers(server, root, projectDir)) {
      const logins = entries.get(instance) ?? [];
      if (!pooler.configure(logins)) continue;
      if (await pooler.isRunning()) pooler.reload();
      else await pooler.start();
      said.push(`pooler beside ${instance}: ${logins.length} login(s) on 127.0.0.1:${pooler.opts.port}`);
    }
  }
  return said;
}
