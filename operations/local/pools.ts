/**
 * The poolers of a stack's local servers (docs/pooling.md): one PgBouncer beside each server with
 * `pooler` and beside each of its standbys. `local start` and `stop` run them with the servers;
 * after each `up` their logins follow the stack's outputs (the passwords the stack generated),
 * written and reloaded, never restarted. The auth files hold the logins' SCRAM verifiers, the same
 * ones their roles were created with, never a password.
 */
import * as path from "node:path";
import { Client } from "pg";
import { type LocalServerSpec, loginRoleNames, type Spec } from "../../components/spec";
import { scramVerifier } from "../../components/service/scram";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
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
  /** Logins that have rotated: the previous generation's direct URLs (docs/rotation.md). */
  readonly previousDirectUrls?: Readonly<Record<string, string>>;
}

/**
 * Each pooler's logins, from the spec and the stack's outputs: every pooled login of a service
 * with a pool, at the instance its direct URL points at, with the verifier of its password.
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
      // Both credentials of a rotated login: the current one and the previous, still valid (docs/rotation.md).
      for (const direct of [output.directUrls[login.key], output.previousDirectUrls?.[login.key]]) {
        if (!direct) continue;
        const url = new URL(direct);
        const user = decodeURIComponent(url.username);
        const instance = server.replicas.find((r) => String(r.port) === url.port)?.name ?? server.name;
        out.get(instance)?.push({
          database: output.database,
          login: user,
          verifier: scramVerifier(decodeURIComponent(url.password), user),
          mode: service.pool.mode,
          size: service.pool.size,
        });
      }
    }
  }
  return out;
}

/**
 * Before `up` (and `destroy`): each pooler keeps only the logins the stack still pools there, and
 * closes its server connections to the rest. A database cannot be dropped while a pooler holds an
 * idle connection to it (the non-superuser admin may not terminate other roles' backends), and a
 * reload closes the server connections of the databases it no longer names.
 */
export async function prunePoolers(spec: Spec, root: string, projectDir: string, keepNone = false): Promise<void> {
  for (const server of spec.servers) {
    if (server.hosting !== "local") continue;
    const pooled = new Set(
      keepNone
        ? []
        : spec.services
            .filter((s) => s.server === server.name && s.pool)
            .flatMap((s) =>
              s.logins.filter((l) => POOLED_KINDS.has(l.kind)).flatMap((l) => loginRoleNames(l).map((n) => `${s.database}/${n}`)),
            ),
    );
    for (const [instance, pooler] of localPoolers(server, root, projectDir)) {
      const before = pooler.entries();
      const kept = before.filter((e) => pooled.has(`${e.database}/${e.login}`));
      if (kept.length === before.length || !pooler.configure(kept) || !(await pooler.isRunning())) continue;
      pooler.reload();
      const gone = before.filter((e) => !kept.includes(e)).map((e) => e.login);
      await untilNoSessions(
        path.join(root, instance, "run"),
        instance === server.name ? server.port : (server.replicas.find((r) => r.name === instance)?.port ?? server.port),
        gone,
      );
    }
  }
}

/** Wait (up to 10 s) until the instance has no session of these logins. */
async function untilNoSessions(socketDir: string, port: number, logins: readonly string[]): Promise<void> {
  const c = new Client({ host: socketDir, port, user: LOCAL_BOOTSTRAP_SUPERUSER, database: "postgres" });
  await c.connect();
  try {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1)", [logins]);
      if (rows[0].n === 0) return;
    }
  } finally {
    await c.end();
  }
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
