/**
 * The client side of the no-downtime proof of `db-platform rotate` (docs/rotation.md): per login,
 * a process-like client that holds a pool of open connections (20 through the pooler; a direct
 * login within its connection limit) and queries them in turn, and opens a new connection every
 * 100 ms with the credential it last read — the way an application re-reads its secret. Every
 * failed connection or query is kept, with what failed.
 */
import type { OutputMap } from "@pulumi/pulumi/automation";
import { Client } from "pg";

/** A login's URL of one credential: through the pooler (pooled) or direct. */
export type LoginUrls = (service: string, login: string, pooled: boolean) => string;

interface ServiceUrls {
  urls: Record<string, string>;
  directUrls?: Record<string, string>;
  previousUrls?: Record<string, string>;
  previousDirectUrls?: Record<string, string>;
}

/** The current (or previous) credential's URLs in a stack's outputs. */
export function credentialUrls(outputs: OutputMap, which: "current" | "previous"): LoginUrls {
  const services = outputs.services.value as Record<string, ServiceUrls>;
  return (service, login, pooled) => {
    const s = services[service];
    const found =
      which === "current"
        ? ((pooled ? undefined : s?.directUrls?.[login]) ?? s?.urls[login])
        : ((pooled ? undefined : s?.previousDirectUrls?.[login]) ?? s?.previousUrls?.[login]);
    if (!found) throw new Error(`no ${which} ${login} URL for service ${service}${pooled ? " (pooled)" : ""}`);
    return found;
  };
}

export interface LoadTarget {
  readonly service: string;
  readonly login: string;
  /** Through the pooler (the login's URL) rather than direct. */
  readonly pooled: boolean;
  /** Connections held open for the whole run. */
  readonly held: number;
}

export interface LoadReport {
  readonly connections: number;
  readonly queries: number;
  readonly failures: readonly string[];
  /** The slowest new connection, in ms. */
  readonly slowestMs: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connect(url: string): Promise<Client> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

/** Start the load on every target with the URLs `published()` gives now; `stop()` ends it and reports. */
export async function startLoad(targets: readonly LoadTarget[], published: () => LoginUrls): Promise<{ stop: () => Promise<LoadReport> }> {
  let running = true;
  let connections = 0;
  let queries = 0;
  let slowestMs = 0;
  const failures: string[] = [];
  const pools = await Promise.all(
    targets.map(async (t) => {
      const url = published()(t.service, t.login, t.pooled);
      return Promise.all(Array.from({ length: t.held }, () => connect(url)));
    }),
  );
  const loops = targets.map(async (t, i) => {
    const label = `${t.service} ${t.login}${t.pooled ? " (pooled)" : ""}`;
    for (let n = 0; running; n++) {
      const tick = pause(100);
      const held = pools[i][n % pools[i].length];
      try {
        await held.query("SELECT 1");
        queries++;
      } catch (e) {
        failures.push(`${label}: query on a held connection: ${(e as Error).message}`);
      }
      const started = performance.now();
      const url = published()(t.service, t.login, t.pooled);
      try {
        const c = await connect(url);
        await c.query("SELECT 1");
        await c.end();
        connections++;
        slowestMs = Math.max(slowestMs, performance.now() - started);
      } catch (e) {
        failures.push(`${label}: new connection as ${decodeURIComponent(new URL(url).username)}: ${(e as Error).message}`);
      }
      await tick;
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await Promise.all(pools.flat().map((c) => c.end().catch(() => undefined)));
      return { connections, queries, failures, slowestMs: Math.round(slowestMs) };
    },
  };
}
