/**
 * `db-platform stats`: per-service load of a stack's live servers, read as the monitoring login
 * (docs/stats.md). Servers are read one after another, each database of a server up to
 * `concurrency` at a time.
 */
import { formatProblem, type ServerSpec, type Spec, validateConfig } from "../../components/spec";
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { ServerReadError, serverConnector } from "../connect";
import { readConfigFile } from "../stack/stackConfig";
import { collectSnapshot, type Snapshot, withReplica } from "./collect";
import { buildStats, type StatsReport } from "./model";
import { readPoolers } from "./pools";
import { readArchive } from "../archive/status";
import { localArchive, localInstances } from "../local/local";

export class StatsError extends Error {}

export interface StatsOptions {
  readonly file: string;
  readonly stack: string;
  readonly projectDir: string;
  readonly service?: string;
  /** Only this server (the publisher task reads its own server). */
  readonly server?: string;
  /** `--server-url server=postgresql://db_platform_monitor:…` (the stack output `monitoring`). */
  readonly serverUrls?: Readonly<Record<string, string>>;
  /** Seconds between two snapshots; undefined: one snapshot, numbers since the last reset. */
  readonly sinceSeconds?: number;
  readonly concurrency?: number;
  /** Told when the first of two snapshots is taken and the window starts. */
  readonly onWindowStart?: (seconds: number) => void;
}

/** `30s`, `5m`, `1h`, or `reset`: seconds, or undefined for "since the statistics were reset". */
export function parseSince(value: string): number | undefined {
  if (value === "reset") return undefined;
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(value);
  if (!m || Number(m[1]) <= 0) throw new StatsError(`--since ${value}: expected reset, or a duration like 30s, 5m or 1h`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as "s" | "m" | "h"];
}

function specOf(file: string): Spec {
  const result = validateConfig(readConfigFile(file));
  if (!result.ok) throw new StatsError(`${file}:\n${result.problems.map(formatProblem).join("\n")}`);
  return result.spec;
}

export async function runStats(opts: StatsOptions): Promise<StatsReport> {
  const started = performance.now();
  const spec = specOf(opts.file);
  if (opts.service && !spec.services.some((s) => s.name === opts.service)) {
    throw new StatsError(
      `--service ${opts.service}: stack ${opts.stack} has no such service (${spec.services.map((s) => s.name).join(", ")})`,
    );
  }
  if (opts.server && !spec.servers.some((s) => s.name === opts.server)) {
    throw new StatsError(`server ${opts.server}: stack ${opts.stack} has no such server (${spec.servers.map((s) => s.name).join(", ")})`);
  }
  const wanted = spec.servers.filter(
    (server) =>
      (!opts.server || server.name === opts.server) &&
      spec.services.some((s) => s.server === server.name && (!opts.service || s.name === opts.service)),
  );
  const snapshotAll = async (): Promise<Map<string, Snapshot>> => {
    const out = new Map<string, Snapshot>();
    for (const server of wanted) {
      const databases = new Map<string, string[]>();
      for (const s of spec.services.filter((x) => x.server === server.name)) {
        databases.set(s.database, [...(databases.get(s.database) ?? []), ...s.schemas]);
      }
      try {
        const connectTo = (target: ServerSpec) =>
          serverConnector(target, {
            stack: opts.stack,
            projectDir: opts.projectDir,
            serverUrls: opts.serverUrls,
            localRole: MONITOR_ROLE,
            urlHint: `the monitoring login (${MONITOR_ROLE}; its URL is the stack output monitoring.${server.name}, with the replica's host for a replica)`,
          });
        let snap = await collectSnapshot(server.name, connectTo(server), databases, opts.concurrency);
        // Read-only logins work on the reader: each replica that can be reached (a local standby's
        // socket, or --server-url <replica>=…) adds its share.
        for (const replica of server.replicas) {
          if (server.hosting !== "local" && !opts.serverUrls?.[replica.name]) continue;
          const target = { ...server, name: replica.name, ...("port" in replica ? { port: replica.port } : {}) } as ServerSpec;
          snap = withReplica(snap, await collectSnapshot(replica.name, connectTo(target), databases, opts.concurrency), replica.name);
        }
        if (server.hosting === "local" && server.pooler)
          snap = { ...snap, poolers: await readPoolers(server, opts.stack, opts.projectDir) };
        out.set(server.name, snap);
      } catch (e) {
        if (e instanceof ServerReadError) throw new StatsError(e.message);
        throw e;
      }
    }
    return out;
  };
  let before: Map<string, Snapshot> | undefined;
  if (opts.sinceSeconds !== undefined) {
    before = await snapshotAll();
    opts.onWindowStart?.(opts.sinceSeconds);
    await new Promise((r) => setTimeout(r, (opts.sinceSeconds as number) * 1000));
  }
  const after = await snapshotAll();
  const archives = await Promise.all(
    wanted.flatMap((server) => {
      if (server.hosting !== "local") return [];
      const archive = localArchive(spec, localInstances(server, opts.stack, opts.projectDir, "").primary, opts.stack, opts.projectDir);
      return archive ? [readArchive(archive)] : [];
    }),
  );
  return {
    ...buildStats(opts.stack, spec, after, before, opts.service),
    ...(archives.length ? { archives } : {}),
    durationMs: performance.now() - started,
  };
}
