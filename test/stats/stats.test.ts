/// <reference lib="dom" />
/**
 * `db-platform stats` on a real PostgreSQL 16 holding the dev stack, applied by the real engine
 * (the monitoring login and its grants are the stack's): under a generated load through the
 * services' own logins — orders busy with some slow statements, payments steady, profile light,
 * inventory and sv-sdk idle — it ranks the services by load, its numbers agree with direct
 * queries of the catalogs within 5 %, no literal value of any statement reaches any format, and
 * the HTML page opens in headless Chromium with its four charts. The metrics publisher's task
 * (bin/stats-task.js, what ECS runs on AWS) measures the same server through the monitoring
 * login's secret and sends each service's metrics to a CloudWatch endpoint on 127.0.0.1.
 * profile is pooled: its pool figures, with clients held and waiting, are those PgBouncer's own
 * console reports.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe as describeAll, expect, it } from "vitest";
import type { LocalServerSpec } from "../../components/spec";
import type { ServiceStats, StatsReport } from "../../operations/stats/model";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import { inChromium } from "../helpers/browser";
import { FAKE_AWS_ENV, type PutMetricDataRequest, startCloudWatchEndpoint } from "../helpers/cloudwatch";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { ROOT } from "../helpers/synth";
import { localRoot } from "../../operations/local/local";
import { localPoolers } from "../../operations/local/pools";
import { parse } from "yaml";

const describe = ENGINE.ready ? describeAll : describeAll.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

const STACK = "statstest";
const SECRET = "sk_live_51Hx9QSECRETLITERAL";
let fixture: AppliedStack;
let report: StatsReport;
let replicaPort: number;
const held: Client[] = [];
const out = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-stats-"));

async function login(service: string, kind = "app"): Promise<Client> {
  const c = new Client({ connectionString: fixture.url(service, kind) });
  await c.connect();
  return c;
}

/** Statements through one of the service's logins (the app login by default), then its connection closes. */
async function load(service: string, statements: readonly string[], kind = "app"): Promise<void> {
  const c = await login(service, kind);
  try {
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

/** As the bootstrap superuser on the primary, or on the standby `local-ro` (its private socket). */
async function superuser(database: string, text: string, on: "primary" | "replica" = "primary"): Promise<Array<Record<string, unknown>>> {
  const c =
    on === "primary"
      ? await fixture.server.superuserClient(database)
      : new Client({ host: path.join(localRoot(ROOT, STACK), "local-ro", "run"), port: replicaPort, user: "postgres", database });
  if (on === "replica") await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

const stats = (...args: string[]) => runCli(["stats", "--stack", STACK, ...args]);
const byName = (r: StatsReport, name: string) => r.services.find((s) => s.service === name) as ServiceStats;
const within5 = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(Math.max(1e-6, Math.abs(want) * 0.05));

beforeAll(async () => {
  if (!ENGINE.ready) return;
  // profile's app and read-only logins through PgBouncer (pool 10), the rest direct.
  fixture = await startAppliedDevStack(STACK, { replica: true, pooler: ["profile"] });
  replicaPort = (
    parse(fs.readFileSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), "utf8")).config["db-platform:servers"].local.replicas[0] as {
      port: number;
    }
  ).port;
  await superuser("postgres", "SELECT pg_stat_statements_reset()");
  await superuser("postgres", "SELECT pg_stat_statements_reset()", "replica");
  const many = (n: number, s: string) => Array.from({ length: n }, () => s);
  await load("orders", [
    "INSERT INTO orders.orders (item) SELECT g FROM generate_series(1, 20000) g",
    ...many(300, "SELECT count(*) FROM orders.orders WHERE item > 100"),
    ...many(5, "SELECT pg_sleep(0.12)"),
    `SELECT '${SECRET}' AS token /* key ${SECRET} */`,
  ]);
  await load("payments", ["INSERT INTO payments.payments (amount) SELECT g FROM generate_series(1, 500) g", ...many(120, "SELECT 1")]);
  await load("profile", many(10, "SELECT count(*) FROM profile.profiles"));
  // Read-only logins connect to the reader, the standby: their work is counted there.
  await load("payments", many(60, "SELECT count(*) FROM payments.payments"), "readonly");
  // Sessions held while the stats are read: orders 3 idle, payments 1 idle in a transaction.
  for (let i = 0; i < 3; i++) held.push(await login("orders"));
  const tx = await login("payments");
  await tx.query("BEGIN");
  await tx.query("SELECT 1");
  held.push(tx);
  const r = stats("--format", "json");
  expect(r.code, r.stderr).toBe(0);
  report = JSON.parse(r.stdout) as StatsReport;
}, 300_000);

afterAll(async () => {
  for (const c of held) await c.end().catch(() => undefined);
  await fixture?.cleanup();
  fs.rmSync(out, { recursive: true, force: true });
}, 120_000);

/**
 * A bin/ entry as a process; `during` runs once its stderr says the sampling window started (the
 * first of its two snapshots is taken), so the work falls inside the window.
 */
async function sampling(bin: string, args: readonly string[], env: NodeJS.ProcessEnv, during: () => Promise<void> = async () => undefined) {
  const child = spawn(process.execPath, [path.join(ROOT, bin), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const started = new Promise<void>((resolve) =>
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("taken, sampling for")) resolve();
    }),
  );
  const code = new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
  await Promise.race([started.then(during), code]);
  return { code: await code, stdout, stderr };
}

/** bin/stats-task.js as ECS starts it. */
const statsTask = (env: NodeJS.ProcessEnv, during?: () => Promise<void>) => sampling("bin/stats-task.js", [], env, during);

describe("db-platform stats under load", () => {
  it("ranks the services by the time the server spent on them; idle services have no calls", () => {
    expect(report.services.map((s) => s.service)).toEqual(["orders", "payments", "profile", expect.any(String), expect.any(String)]);
    for (const idle of ["inventory", "sv-sdk"]) expect(byName(report, idle).queries.calls).toBe(0);
    const orders = byName(report, "orders");
    expect(orders.queries.slowCalls).toBe(5);
    expect(orders.queries.p99Ms).toBeGreaterThan(100);
    expect(orders.queries.p50Ms).toBeLessThan(orders.queries.p99Ms);
    expect(orders.slowest[0].query).toContain("pg_sleep");
  });

  it("agrees with direct queries of the catalogs within 5 %", async () => {
    const roleOf = (s: string) => s.replace(/-/g, "_");
    for (const service of ["orders", "payments", "profile"]) {
      // The primary's statements and the standby's (where the read-only logins work).
      const sql = `SELECT coalesce(sum(calls), 0)::float AS calls, coalesce(sum(total_exec_time), 0) AS ms, coalesce(sum(rows), 0)::float AS rows
         FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname LIKE '${roleOf(service)}\\_%' AND s.toplevel`;
      const [[p], [r]] = [await superuser("postgres", sql), await superuser("postgres", sql, "replica")];
      const q = byName(report, service).queries;
      within5(q.calls, Number(p.calls) + Number(r.calls));
      within5(q.totalMs, Number(p.ms) + Number(r.ms));
      within5(q.rows, Number(p.rows) + Number(r.rows));
    }
    expect(byName(report, "payments").queries.calls).toBe(120 + 1 + 60 + 1); // SELECT 1, the insert, the standby's reads, the transaction's SELECT 1
    const sessions = await superuser(
      "postgres",
      `SELECT usename, state, count(*)::int AS n FROM pg_stat_activity WHERE usename IN ('orders_app', 'payments_app') GROUP BY 1, 2`,
    );
    const n = (user: string, state: string) => sessions.find((s) => s.usename === user && s.state === state)?.n ?? 0;
    expect(byName(report, "orders").connections).toMatchObject({ idle: n("orders_app", "idle"), total: 3 });
    expect(byName(report, "payments").connections).toMatchObject({ idleInTransaction: n("payments_app", "idle in transaction"), total: 1 });
    const [size] = await superuser("orders_db", "SELECT pg_table_size('orders.orders') AS t, pg_indexes_size('orders.orders') AS i");
    within5(byName(report, "orders").storage.tableBytes, Number(size.t));
    within5(byName(report, "orders").storage.indexBytes, Number(size.i));
    const [written] = await superuser("platform", "SELECT n_tup_ins AS n FROM pg_stat_user_tables WHERE schemaname = 'payments'");
    within5(byName(report, "payments").storage.rowsWritten, Number(written.n));
  });

  it("never shows a literal value, in any format", () => {
    expect(JSON.stringify(report)).not.toContain("sk_live");
    for (const format of ["text", "md", "html"]) {
      const r = stats("--format", format);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain("sk_live");
      expect(r.stdout).not.toContain("SECRET");
    }
    // pg_stat_statements itself keeps the comment verbatim: the scrubbing is what removed it.
    expect(JSON.stringify(byName(report, "orders").slowest)).not.toContain("key");
  });

  it("reads as the monitoring login, which holds pg_monitor and CONNECT and reads no row", async () => {
    const [m] = await superuser(
      "postgres",
      `SELECT array(SELECT b.rolname::text FROM pg_auth_members a JOIN pg_roles b ON b.oid = a.roleid WHERE a.member = r.oid) AS member_of,
              has_table_privilege(r.oid, 'pg_authid', 'SELECT') AS reads_authid
       FROM pg_roles r WHERE rolname = 'db_platform_monitor'`,
    );
    expect(m).toEqual({ member_of: ["pg_monitor"], reads_authid: false });
    await expect(superuser("orders_db", "SET ROLE db_platform_monitor; SELECT count(*) FROM orders.orders")).rejects.toThrow(
      /permission denied/,
    );
    // In every database a service uses: it may connect, and use no schema nor table of any service.
    for (const [database, schemas] of [
      ["inventory_db", ["inventory"]],
      ["orders_db", ["orders"]],
      ["platform", ["payments", "profile"]],
      ["sv_sdk_db", ["auth", "email", "audit", "permissions"]],
    ] as const) {
      const [r] = await superuser(
        database,
        `SELECT has_database_privilege('db_platform_monitor', current_database(), 'CONNECT') AS connect,
                has_database_privilege('db_platform_monitor', current_database(), 'CREATE') AS create,
                array(SELECT n FROM unnest(ARRAY[${schemas.map((x) => `'${x}'`).join(", ")}]::text[]) n
                      WHERE has_schema_privilege('db_platform_monitor', n, 'USAGE') OR has_schema_privilege('db_platform_monitor', n, 'CREATE')) AS schemas,
                (SELECT count(*)::int FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname NOT LIKE 'pg\\_%' AND s.nspname <> 'information_schema' AND c.relkind IN ('r', 'v', 'm', 'S')
                   AND has_table_privilege('db_platform_monitor', c.oid, 'SELECT')) AS readable`,
      );
      expect(r, database).toEqual({ connect: true, create: false, schemas: [], readable: 0 });
    }
  });

  it("--since samples a window: only what ran in it counts", async () => {
    const r = await sampling("bin/db-platform.js", ["stats", "--stack", STACK, "--since", "3s", "--format", "json"], {}, () =>
      load(
        "profile",
        Array.from({ length: 400 }, () => "SELECT count(*) FROM profile.profiles"),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("first snapshot taken, sampling for 3 s");
    const window = JSON.parse(r.stdout) as StatsReport;
    expect(window.servers[0].kind).toBe("sampled");
    expect(window.services[0].service).toBe("profile");
    expect(byName(window, "profile").queries.calls).toBe(400);
    expect(byName(window, "orders").queries.calls).toBe(0);
    // The same 400 through its pooler: a transaction each, counted by PgBouncer over the window.
    expect(byName(window, "profile").pool).toMatchObject({ transactions: 400, queries: 400, sharedWith: [] });
    expect(byName(window, "profile").pool?.transactionsPerSecond).toBeGreaterThan(50);
  });

  it("shows a pooled service's pool as PgBouncer's console does, with clients held and waiting", async () => {
    // Pool size 10: ten clients hold a transaction each, three more wait for a server connection.
    const holders = await Promise.all(Array.from({ length: 10 }, () => login("profile")));
    const waiters = await Promise.all(Array.from({ length: 3 }, () => login("profile")));
    try {
      for (const h of holders) await h.query("BEGIN; SELECT 1");
      const waiting = waiters.map((w) => w.query("SELECT 1"));
      await new Promise((r) => setTimeout(r, 1000));
      const r = stats("--format", "json", "--service", "profile");
      expect(r.code, r.stderr).toBe(0);
      const pool = byName(JSON.parse(r.stdout) as StatsReport, "profile").pool;
      const primary = localPoolers(fixture.ctx.spec.servers[0] as LocalServerSpec, localRoot(ROOT, STACK), ROOT).get("local");
      const own = (await primary?.readConsole())?.pools.find((p) => p.database === "platform" && p.login === "profile_app");
      expect(own).toMatchObject({ clientsActive: 10, clientsWaiting: 3, serverActive: 10 });
      expect(pool).toMatchObject({
        mode: "transaction",
        size: 10,
        poolers: ["local", "local-ro"],
        clientsActive: own?.clientsActive,
        clientsWaiting: own?.clientsWaiting,
        serverActive: own?.serverActive,
        unread: [],
      });
      expect(Math.abs((pool?.maxWaitSeconds ?? 0) - (own?.maxWaitSeconds ?? 0))).toBeLessThan(1.5);
      expect(pool?.maxWaitSeconds).toBeGreaterThanOrEqual(1);
      const text = stats("--service", "profile").stdout;
      expect(text).toMatch(/10 active, 3 waiting; server 10\/10; wait \d+\.\d s/);
      expect(stats("--format", "md", "--service", "profile").stdout).toContain("10 active, 3 waiting");
      for (const h of holders) await h.query("COMMIT");
      await Promise.all(waiting);
    } finally {
      await Promise.all([...holders, ...waiters].map((c) => c.end().catch(() => undefined)));
    }
    // Services without a pool have no pool figures.
    expect(byName(report, "orders").pool).toBeUndefined();
  });

  it("writes an HTML page with its charts (the pooler's too) that opens in headless Chromium without errors", async () => {
    const file = path.join(out, "stats.html");
    // A client of profile's pool, idle: the pooler chart has its bar.
    const pooled = await login("profile");
    const r = stats("--format", "html", "--out", file);
    await pooled.end();
    expect(r.code).toBe(0);
    const page = fs.readFileSync(file, "utf8");
    expect(page).not.toMatch(/<script|<link|src=|@import/);
    await inChromium(file, async ({ tab, errors, requests, screenshot }) => {
      expect(fs.statSync(screenshot).size).toBeGreaterThan(10_000);
      expect(errors).toEqual([]);
      expect(requests).toEqual([`file://${file}`]);
      const charts = await tab.evaluate(() =>
        [...document.querySelectorAll("figure")].map((f) => ({
          title: f.querySelector("figcaption")?.textContent,
          bars: [...f.querySelectorAll("rect")].filter((r) => Number(r.getAttribute("width")) > 0).length,
        })),
      );
      expect(charts.map((c) => c.title)).toEqual([
        "Time the server spent per service",
        "Latency per service (ms, estimated percentiles)",
        "Connections per service",
        "Size per service",
        "Pooler clients per pooled service",
      ]);
      for (const c of charts) expect(c.bars, c.title).toBeGreaterThan(0);
    });
  });
});

describe("the metrics publisher task (bin/stats-task.js)", () => {
  const taskEnv = (cloudwatch: string) => {
    const monitor = new URL(fixture.outputs.monitoring.value.local as string);
    return {
      ...FAKE_AWS_ENV,
      AWS_ENDPOINT_URL_CLOUDWATCH: cloudwatch,
      DB_PLATFORM_STACK: STACK,
      DB_PLATFORM_SERVER: "local",
      DB_PLATFORM_METRICS_NAMESPACE: "DbPlatform/Services",
      DB_PLATFORM_STATS_WINDOW: "3",
      // What the task definition passes: the secret's JSON, the replicas it can reach.
      DB_PLATFORM_MONITOR_LOGIN: JSON.stringify({
        engine: "postgres",
        host: monitor.hostname,
        port: Number(monitor.port),
        username: decodeURIComponent(monitor.username),
        password: decodeURIComponent(monitor.password),
        dbname: "postgres",
      }),
      DB_PLATFORM_REPLICA_HOSTS: JSON.stringify({ "local-ro": { host: "127.0.0.1", port: replicaPort } }),
    };
  };

  it("publishes each service's metrics over its window, as the monitoring login, to CloudWatch", async () => {
    const cloudwatch = await startCloudWatchEndpoint();
    try {
      const r = await statsTask(taskEnv(cloudwatch.url), () =>
        load(
          "profile",
          Array.from({ length: 250 }, () => "SELECT count(*) FROM profile.profiles"),
        ),
      );
      expect(r.code, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout) as { window: { seconds: number; kind: string; replicasRead: string[] }; published: number };
      expect(summary.window).toMatchObject({ kind: "sampled", replicasRead: ["local-ro"] });
      const data = cloudwatch.requests.flatMap((q: PutMetricDataRequest) => {
        expect(q.Namespace).toBe("DbPlatform/Services");
        return q.MetricData;
      });
      expect(summary.published).toBe(data.length);
      const value = (service: string, metric: string) =>
        data.find((d) => d.MetricName === metric && d.Dimensions.some((x) => x.Name === "Service" && x.Value === service))?.Value;
      expect(data.find((d) => d.MetricName === "PublisherRuns")?.Dimensions).toEqual([
        { Name: "Environment", Value: "dev" },
        { Name: "Server", Value: "local" },
      ]);
      // Every service of the server, with its three dimensions.
      for (const service of ["inventory", "orders", "payments", "profile", "sv-sdk"]) {
        expect(value(service, "Connections"), service).toBeDefined();
      }
      // profile's 250 statements (and only those) fell in the window.
      within5(Number(value("profile", "QueriesPerSecond")) * summary.window.seconds, 250);
      expect(value("profile", "LatencyP95")).toBeGreaterThan(0);
      // Idle services send no latency: their alarms treat that as fine.
      expect(value("inventory", "LatencyP95")).toBeUndefined();
      expect(value("orders", "LatencyP95")).toBeUndefined();
      // orders holds 3 idle sessions of its logins' 125 (app 100, readonly 20, migrator 5).
      expect(value("orders", "Connections")).toBe(3);
      within5(Number(value("orders", "ConnectionSaturation")), (100 * 3) / 125);
      expect(value("payments", "IdleInTransaction")).toBe(1);
      expect(JSON.stringify(cloudwatch.requests)).not.toContain("sk_live");
    } finally {
      await cloudwatch.close();
    }
  });

  it("fails with exit 1 naming the namespace when CloudWatch refuses, and 2 when its environment is incomplete", async () => {
    const cloudwatch = await startCloudWatchEndpoint();
    cloudwatch.refuse();
    try {
      const refused = await statsTask({ ...taskEnv(cloudwatch.url), DB_PLATFORM_STATS_WINDOW: "1" });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("publishing metrics to CloudWatch DbPlatform/Services failed: refused by the test");
      const missing = await statsTask({ ...taskEnv(cloudwatch.url), DB_PLATFORM_MONITOR_LOGIN: "" });
      expect(missing).toMatchObject({ code: 2 });
      expect(missing.stderr).toContain("DB_PLATFORM_MONITOR_LOGIN not set");
      const login = JSON.parse(taskEnv(cloudwatch.url).DB_PLATFORM_MONITOR_LOGIN) as Record<string, unknown>;
      const wrong = await statsTask({
        ...taskEnv(cloudwatch.url),
        DB_PLATFORM_MONITOR_LOGIN: JSON.stringify({ ...login, password: "wrong" }),
      });
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(
        /server local: cannot connect to 127\.0\.0\.1:\d+\/postgres as db_platform_monitor \(password authentication failed/,
      );
    } finally {
      await cloudwatch.close();
    }
  });
});
