/**
 * The per-service metrics publisher: what the scheduled ECS task of each RDS server runs
 * (`bin/stats-task.js` on the backup runner's image; components/backups/statsPublisher.ts). It
 * takes two snapshots of its server `DB_PLATFORM_STATS_WINDOW` seconds apart as the monitoring
 * login — the same numbers as `db-platform stats --since <window>` — and, when
 * `DB_PLATFORM_METRICS_NAMESPACE` is set, publishes each service's metrics to CloudWatch, where
 * the server's dashboard and the services' alarms read them. Without the namespace it only prints.
 *
 * Environment (set by the task definition): DB_PLATFORM_STACK, DB_PLATFORM_SERVER,
 * DB_PLATFORM_MONITOR_LOGIN (the monitoring login's secret: RDS secret JSON), optionally
 * DB_PLATFORM_REPLICA_HOSTS (`{"<replica>": {"host": …, "port": …}}`, replicas it can reach),
 * DB_PLATFORM_STATS_WINDOW (seconds, default 60), AWS_REGION.
 *
 * Prints a JSON summary; exits 0 published (or printed), 1 the stack file has problems or
 * publishing failed, 2 it could not run (environment, connection). Imports nothing of `cli/`.
 */
import { formatProblem, type ServerSpec, validateConfig } from "../../components/spec";
import { MONITORING_DEFAULTS } from "../../components/spec/defaults";
import { publishMetrics } from "../cloudwatch";
import { ConfigFileError, findProjectDir, readConfigFile, stackConfigPath } from "../stack/stackConfig";
import { serviceMetricData } from "./publish";
import { runStats, StatsError } from "./run";

class TaskInputError extends Error {}

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** The login's URL to one host: libpq's sslmode meaning (require encrypts without verifying the CA). */
function monitorUrl(login: { username: string; password: string }, at: Endpoint, server: ServerSpec): string {
  const u = new URL("postgresql://localhost/postgres");
  u.username = encodeURIComponent(login.username);
  u.password = encodeURIComponent(login.password);
  u.hostname = at.host;
  u.port = String(at.port);
  const sslMode = "sslMode" in server ? server.sslMode : "disable";
  u.search = `uselibpqcompat=true&sslmode=${encodeURIComponent(sslMode)}`;
  return u.toString();
}

function parseJson<T>(env: NodeJS.ProcessEnv, name: string, check: (v: T) => boolean, what: string): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let value: T;
  try {
    value = JSON.parse(raw) as T;
  } catch {
    throw new TaskInputError(`${name}: not JSON (${what})`);
  }
  if (!check(value)) throw new TaskInputError(`${name}: expected ${what}`);
  return value;
}

/** The container's entry: one server's services, as the task definition's environment says. */
export async function statsTask(
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
  err: (s: string) => void,
  projectDir: string = findProjectDir(),
): Promise<number> {
  const fail = (code: number, message: string) => {
    err(`db-platform stats task: ${message}\n`);
    return code;
  };
  const missing = ["DB_PLATFORM_STACK", "DB_PLATFORM_SERVER", "DB_PLATFORM_MONITOR_LOGIN"].filter((k) => !env[k]);
  if (missing.length > 0) return fail(2, `${missing.join(", ")} not set (the task definition sets them)`);
  const stack = env.DB_PLATFORM_STACK as string;
  const serverName = env.DB_PLATFORM_SERVER as string;
  try {
    const login = parseJson<{ host: string; port?: number; username: string; password: string }>(
      env,
      "DB_PLATFORM_MONITOR_LOGIN",
      (v) => typeof v?.host === "string" && typeof v.username === "string" && typeof v.password === "string",
      "the monitoring login's secret: {host, port, username, password}",
    ) as { host: string; port?: number; username: string; password: string };
    const replicas =
      parseJson<Record<string, Endpoint>>(
        env,
        "DB_PLATFORM_REPLICA_HOSTS",
        (v) => typeof v === "object" && v !== null && Object.values(v).every((e) => typeof e?.host === "string"),
        '{"<replica>": {"host": …, "port": …}}',
      ) ?? {};
    const windowSeconds = Number(env.DB_PLATFORM_STATS_WINDOW ?? MONITORING_DEFAULTS.windowSeconds);
    if (!Number.isFinite(windowSeconds) || windowSeconds <= 0)
      throw new TaskInputError(`DB_PLATFORM_STATS_WINDOW: not a number of seconds`);

    const file = stackConfigPath(stack, projectDir);
    const input = readConfigFile(file);
    const result = validateConfig(input);
    if (!result.ok) return fail(1, `${file}:\n${result.problems.map(formatProblem).join("\n")}`);
    const server = result.spec.servers.find((s) => s.name === serverName);
    if (!server) return fail(2, `DB_PLATFORM_SERVER ${serverName}: stack ${stack} has no such server`);
    if (!result.spec.services.some((s) => s.server === serverName)) return fail(2, `server ${serverName} has no services to measure`);

    const serverUrls: Record<string, string> = {
      [serverName]: monitorUrl(login, { host: login.host, port: Number(login.port ?? 5432) }, server),
    };
    for (const [name, at] of Object.entries(replicas))
      serverUrls[name] = monitorUrl(login, { host: at.host, port: Number(at.port ?? 5432) }, server);

    const report = await runStats({
      file,
      stack,
      projectDir,
      server: serverName,
      serverUrls,
      sinceSeconds: windowSeconds,
      onWindowStart: (seconds) => err(`db-platform stats task: first snapshot of ${serverName} taken, sampling for ${seconds} s\n`),
    });
    const data = serviceMetricData(report, result.spec.environment);
    const namespace = env.DB_PLATFORM_METRICS_NAMESPACE;
    let published = 0;
    let publishError: string | undefined;
    if (namespace) {
      try {
        await publishMetrics(namespace, data, env.AWS_REGION ?? input.awsRegion);
        published = data.length;
      } catch (e) {
        publishError = `publishing metrics to CloudWatch ${namespace} failed: ${(e as Error).message}`;
      }
    }
    const summary = {
      stack,
      server: serverName,
      window: report.servers[0],
      namespace: namespace ?? null,
      published,
      services: report.services.map((s) => ({
        service: s.service,
        connections: s.connections.total,
        limit: s.connections.limit,
        queriesPerSecond: s.queries.perSecond,
        p95Ms: s.queries.calls > 0 ? s.queries.p95Ms : null,
      })),
      metrics: data.map((d) => ({
        metric: d.MetricName,
        dimensions: Object.fromEntries((d.Dimensions ?? []).map((x) => [x.Name, x.Value])),
        value: d.Value,
        unit: d.Unit,
      })),
    };
    out(`${JSON.stringify(summary, null, 2)}\n`);
    if (publishError) return fail(1, publishError);
    return 0;
  } catch (e) {
    if (e instanceof TaskInputError || e instanceof StatsError || e instanceof ConfigFileError) return fail(2, e.message);
    throw e;
  }
}
