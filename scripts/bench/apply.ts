/**
 * Apply speed: generated local stacks of N services (four in five with a database of their own,
 * the rest sharing one database by schema) applied with the commands a user runs (`db-platform up`
 * = `npm start -- --stack NAME`, a second `up`, `preview --expect-no-changes`, `destroy --yes`, each
 * its own process) through the real Pulumi engine and provider plugins on one local PostgreSQL
 * (16, or the major `--postgres` names),
 * against the floor of the same DDL run as plain SQL (written from the synthesized state,
 * scripts/bench/catalogFill.ts) on the same server in the same run.
 * Per size: resources, resources per service, `up` cold, `up` with nothing to change, `preview`,
 * `destroy`, peak memory of the engine's process tree, and the ratios to the floor.
 * With `--backend s3` the state lives in a local MinIO bucket (the shared backend a platform team
 * uses, `DB_PLATFORM_BACKEND_URL=s3://…`) instead of the local file backend.
 * With `--via pooler` the provider's connections go through a PgBouncer in session mode: the
 * stack declares the server as `external` at the pooler's port, and this bench's own pooler admits
 * the admin (by the SCRAM verifier the server holds; the platform's poolers never admit it), so
 * the server forks a backend per pooled server connection instead of one per provider connection.
 * Usage: npm run bench:apply [-- [--backend file|s3] [--postgres 15|16|17|18] [--via direct|pooler] <services> …]
 *   (default 10 50 200; needs the provider plugins)
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { escapeIdentifier } from "pg";
import { stringify } from "yaml";
import { DEV_PASSPHRASE, ensureEngine, localInstances, localRoot, localServers, stackWorkspace } from "../../operations/local/local";
import type { LocalPostgres } from "../../operations/local/postgres";
import { LocalS3 } from "../../operations/local/s3";
import { LOCAL_PARALLEL, missingPlugins, sdkPlugin } from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synth } from "../../operations/stack/synth";
import { loadSpec } from "../../components/spec";
import { freePort } from "../../operations/local/ports";
import { pgbouncerBinary } from "../../operations/local/pooler";
import { asServerUser } from "../../operations/local/postgres";
import { descendants, isAlive, processes } from "../../operations/local/processes";
import { materialize, materializeSql } from "./catalogFill";

const ROOT = path.resolve(__dirname, "../..");
const ADMIN_PASSWORD = "bench-apply-admin-password";

/**
 * Peak resident memory of this process and all its descendants (the CLI, the engine, the plugins,
 * the policy pack), and the CPU time each of them used, sampled every 200 ms.
 */
class TreeSampler {
  peak = 0;
  private cpu = new Map<number, { kind: string; seconds: number }>();
  private timer?: NodeJS.Timeout;

  start(): void {
    this.peak = 0;
    this.cpu.clear();
    this.timer = setInterval(() => this.sample(), 200);
  }

  stop(): { peakBytes: number; cpu: Map<string, number> } {
    clearInterval(this.timer);
    this.sample();
    const cpu = new Map<string, number>();
    for (const { kind, seconds } of this.cpu.values()) cpu.set(kind, (cpu.get(kind) ?? 0) + seconds);
    return { peakBytes: this.peak, cpu };
  }

  private sample(): void {
    const tree = descendants(process.pid, processes());
    this.peak = Math.max(
      this.peak,
      tree.reduce((sum, p) => sum + p.rssBytes, process.memoryUsage.rss()),
    );
    for (const p of tree) {
      const seen = this.cpu.get(p.pid);
      // An exiting process has no command line left: it keeps the kind it was seen with.
      const kind = seen && seen.kind !== "other" ? seen.kind : kindOf(p.pid, p.name);
      this.cpu.set(p.pid, { kind, seconds: Math.max(p.cpuSeconds, seen?.seconds ?? 0) });
    }
  }
}

/**
 * What the PostgreSQL server did between two readings: its CPU (the postmaster, the backends it
 * reaped — one per connection, counted when they exit — and its long-lived workers) and the
 * sessions opened (its log's `connection authorized` lines: the bench turns log_connections on;
 * pg_stat_database would lose the sessions of the databases a destroy drops).
 */
interface ServerWork {
  cpuSeconds: number;
  sessions: number;
}

async function logConnections(server: LocalPostgres): Promise<void> {
  const c = await server.superuserClient();
  try {
    await c.query("ALTER SYSTEM SET log_connections = on");
    await c.query("SELECT pg_reload_conf()");
  } finally {
    await c.end();
  }
}

function serverWork(server: LocalPostgres): ServerWork {
  const sessions = (fs.readFileSync(server.logFile, "utf8").match(/connection authorized/g) ?? []).length;
  const pid = Number(fs.readFileSync(path.join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime, stime, and cutime, cstime: the children it waited for (USER_HZ = 100).
  const own = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  const live = descendants(pid).reduce((sum, p) => sum + p.cpuSeconds, 0);
  return { cpuSeconds: own + live, sessions };
}

async function serverDelta<T>(server: LocalPostgres, f: () => Promise<T>): Promise<[T, ServerWork]> {
  const before = serverWork(server);
  const result = await f();
  // Let the last backends exit (their CPU is counted when the postmaster reaps them).
  await new Promise((r) => setTimeout(r, 300));
  const after = serverWork(server);
  return [result, { cpuSeconds: after.cpuSeconds - before.cpuSeconds, sessions: after.sessions - before.sessions }];
}

/** What a process of the tree is: the CLI (with the program, which runs in it), the engine, a plugin, the policy pack. */
function kindOf(pid: number, name: string): string {
  if (name === "pulumi") return "engine";
  if (name.startsWith("pulumi-resourc")) return "provider plugins";
  if (name.startsWith("pulumi-languag")) return "language host";
  if (name !== "node" && name !== "MainThread") return "other";
  let cmdline = "";
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    // ended
  }
  return cmdline.includes("run-policy-pack") ? "policy pack" : cmdline.includes("db-platform.js") ? "CLI and program" : "other";
}

/** The bench's PgBouncer for the admin (session mode, every database), beside the server; stopped by the returned function. */
async function adminPooler(server: LocalPostgres, port: number): Promise<() => Promise<void>> {
  const c = await server.superuserClient();
  let verifier: string;
  try {
    verifier = (await c.query<{ v: string }>("SELECT rolpassword AS v FROM pg_authid WHERE rolname = 'platform_admin'")).rows[0].v;
  } finally {
    await c.end();
  }
  const dir = path.join(server.dir, "bench-pooler");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
  file("userlist.txt", `"platform_admin" "${verifier}"\n`);
  file(
    "pgbouncer.ini",
    [
      "[databases]",
      `* = host=127.0.0.1 port=${server.opts.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${dir}/userlist.txt`,
      "pool_mode = session",
      "default_pool_size = 20",
      "max_client_conn = 1000",
      "server_reset_query = DISCARD ALL",
      "ignore_startup_parameters = extra_float_digits,options",
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
      "",
    ].join("\n"),
  );
  const runAs = asServerUser();
  if (runAs.length > 0) execFileSync("chown", ["-R", "postgres:postgres", dir]);
  const [cmd, ...prefix] = [...runAs, pgbouncerBinary(ROOT)];
  execFileSync(cmd, [...prefix, "-d", path.join(dir, "pgbouncer.ini")]);
  for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, "pgbouncer.pid")); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(fs.readFileSync(path.join(dir, "pgbouncer.pid"), "utf8").trim());
  return async () => {
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  };
}

function stackConfig(services: number, port: number, version: string, via: string): Record<string, unknown> {
  const entries: Array<[string, Record<string, unknown>]> = [];
  for (let i = 0; i < services; i++) {
    const name = `svc${String(i).padStart(3, "0")}`;
    entries.push([name, i % 5 === 4 ? { server: "local", isolation: "schema", database: "shared" } : { server: "local" }]);
  }
  return {
    config: {
      "db-platform:environment": "dev",
      "db-platform:servers": {
        local:
          via === "pooler"
            ? { hosting: "external", version, host: "127.0.0.1", port, adminUser: "platform_admin", sslMode: "disable" }
            : { hosting: "local", version, host: "127.0.0.1", port },
      },
      "db-platform:services": Object.fromEntries(entries),
    },
  };
}

interface Row {
  services: number;
  resources: number;
  upCold: number;
  upSame: number;
  preview: number;
  destroy: number;
  peakMiB: number;
  /** CPU seconds by kind of process: the cold `up`, then the `up` with no changes. */
  cpuCold: Map<string, number>;
  cpuSame: Map<string, number>;
  floorUp: number;
  floorDestroy: number;
  /** The server's work during each: the SQL floor's up and destroy, the cold `up`, the no-change `up`, `destroy`. */
  server: Record<"floorUp" | "floorDestroy" | "upCold" | "upSame" | "destroy", ServerWork>;
}

/** One `db-platform` command as its own process, as `npm start` runs it; its stdout. */
function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, "bin/db-platform.js"), ...args],
      { cwd: ROOT, maxBuffer: 256 * 1024 ** 2 },
      (e, stdout, stderr) => (e ? reject(new Error(`db-platform ${args.join(" ")}: ${e.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const result = await f();
  return [result, (performance.now() - t) / 1000];
}

/** The plain-SQL destroy floor: every database, then every role, as one session. */
async function dropAll(server: LocalPostgres, databases: string[], roles: string[]): Promise<void> {
  const c = await server.superuserClient();
  try {
    for (const d of databases) await c.query(`DROP DATABASE ${escapeIdentifier(d)} WITH (FORCE)`);
    for (const r of roles) await c.query(`DROP OWNED BY ${escapeIdentifier(r)}`).catch(() => undefined);
    for (const r of roles) await c.query(`DROP ROLE ${escapeIdentifier(r)}`);
  } finally {
    await c.end();
  }
}

async function measure(services: number, version: string, via: string): Promise<Row> {
  const stack = `bench-apply-${services}`;
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const port = await freePort();
  // Through the pooler: the stack's server is the pooler's port; the server itself listens on another.
  const poolerPort = await freePort();
  fs.writeFileSync(file, stringify(stackConfig(services, via === "pooler" ? poolerPort : port, version, via)));
  const ws = await stackWorkspace(ROOT, stack);
  await ws.setConfig(stack, "db-platform:adminPasswords.local", { value: ADMIN_PASSWORD, secret: true }, true);
  const config = readConfigFile(file);
  // The server the bench starts: the stack's own, or (through the pooler) a local one on `port`.
  const servers = (stackConfig(services, port, version, "direct").config as Record<string, unknown>)["db-platform:servers"];
  const local = loadSpec({ ...config, values: { ...config.values, servers } });
  const { primary: server } = localInstances(localServers(local)[0], stack, ROOT, ADMIN_PASSWORD);
  const sampler = new TreeSampler();
  let stopPooler: (() => Promise<void>) | undefined;
  try {
    await server.start();
    await logConnections(server);
    if (via === "pooler") stopPooler = await adminPooler(server, poolerPort);
    const resources = await synth(config, "db-platform", stack);
    const databases = [...new Set(materializeSql(resources, "platform_admin").map((s) => s.database))].filter((d) => d !== "postgres");
    const roles = resources.filter((r) => r.type === "postgresql:index/role:Role").map((r) => String(r.props.name));

    const [[, floorUp], floorUpWork] = await serverDelta(server, () =>
      timed(() => materialize(resources, "platform_admin", (db) => server.superuserClient(db))),
    );
    const [[, floorDestroy], floorDestroyWork] = await serverDelta(server, () => timed(() => dropAll(server, databases, roles)));

    // The commands a user runs: `npm start -- --stack NAME`, a second one, preview, `npm run destroy -- --stack NAME`.
    sampler.start();
    const [[first, upCold], upColdWork] = await serverDelta(server, () => timed(() => cli(["up", "--stack", stack])));
    const cold = sampler.stop();
    if (!/created \d+/.test(first)) throw new Error(`first up created nothing:\n${first}`);
    sampler.start();
    const [[same, upSame], upSameWork] = await serverDelta(server, () => timed(() => cli(["up", "--stack", stack])));
    const cpuSame = sampler.stop().cpu;
    if (!/: no changes/.test(same)) throw new Error(`second up changed something:\n${same}`);
    const [, preview] = await timed(() => cli(["preview", "--stack", stack, "--expect-no-changes"]));
    console.error(
      `${services} services: up cold ${upCold.toFixed(1)} s, up with no changes ${upSame.toFixed(1)} s, preview ${preview.toFixed(1)} s; destroying`,
    );
    const [[, destroy], destroyWork] = await serverDelta(server, () => timed(() => cli(["destroy", "--stack", stack, "--yes"])));
    return {
      services,
      resources: resources.length,
      upCold,
      upSame,
      preview,
      destroy,
      peakMiB: cold.peakBytes / 1024 ** 2,
      cpuCold: cold.cpu,
      cpuSame,
      floorUp,
      floorDestroy,
      server: { floorUp: floorUpWork, floorDestroy: floorDestroyWork, upCold: upColdWork, upSame: upSameWork, destroy: destroyWork },
    };
  } finally {
    await stopPooler?.();
    await server.destroy();
    await ws.removeStack(stack, { force: true }).catch(() => undefined);
    fs.rmSync(localRoot(ROOT, stack), { recursive: true, force: true });
    fs.rmSync(file, { force: true });
  }
}

/** A local MinIO holding the state (every command this bench starts inherits the backend URL). */
async function s3Backend(): Promise<LocalS3> {
  const bucket = "db-platform-state";
  const s3 = new LocalS3({ dir: path.join(localRoot(ROOT, "bench-apply-state"), "s3"), port: await freePort(), projectDir: ROOT });
  await s3.start([bucket]);
  const { accessKeyId, secretAccessKey } = s3.credentials();
  Object.assign(process.env, {
    DB_PLATFORM_BACKEND_URL: `s3://${bucket}?endpoint=127.0.0.1:${s3.opts.port}&disableSSL=true&s3ForcePathStyle=true&region=us-east-1`,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
  });
  return s3;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      backend: { type: "string", default: "file" },
      postgres: { type: "string", default: "16" },
      via: { type: "string", default: "direct" },
    },
    allowPositionals: true,
  });
  if (values.backend !== "file" && values.backend !== "s3") throw new Error(`--backend ${values.backend}: expected file or s3`);
  const version = values.postgres;
  if (values.via !== "direct" && values.via !== "pooler") throw new Error(`--via ${values.via}: expected direct or pooler`);
  if (!["15", "16", "17", "18"].includes(version)) throw new Error(`--postgres ${version}: expected 15, 16, 17 or 18`);
  const sizes = positionals.map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`services: expected positive whole numbers, got ${positionals.join(" ")}`);
  process.env.PULUMI_CONFIG_PASSPHRASE ??= DEV_PASSPHRASE;
  ensureEngine(ROOT);
  const missing = missingPlugins([sdkPlugin(ROOT, "postgresql"), sdkPlugin(ROOT, "random")]);
  if (missing.length > 0)
    throw new Error(`bench:apply needs the provider plugins: ${missing.map((p) => `${p.name} v${p.version}`).join(", ")}`);
  const cpu = execFileSync("nproc", { encoding: "utf8" }).trim();
  const overrides = ["PULUMI_SKIP_CHECKPOINTS", "PULUMI_PARALLEL"]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]}`);
  // The stack's server is `external` through the pooler: the local-stack engine setting (state saved once per operation) by hand.
  if (values.via === "pooler") process.env.PULUMI_SKIP_CHECKPOINTS ??= "true";
  const s3 = values.backend === "s3" ? await s3Backend() : undefined;
  console.log(
    `bench:apply on ${cpu} cores, PostgreSQL ${version}, ${s3 ? "state in S3 (local MinIO)" : "local file backend"}, provider ${values.via === "pooler" ? "through a PgBouncer (session mode)" : "direct"}; local-stack engine settings (state saved once per operation, --parallel ${LOCAL_PARALLEL})${overrides.length > 0 ? `, overridden: ${overrides.join(" ")}` : ""}`,
  );
  console.log(
    "| services | resources | per service | up cold | up, no changes | preview | destroy | peak memory | SQL up | SQL destroy | up ÷ SQL | destroy ÷ SQL |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  const rows: Row[] = [];
  try {
    for (const n of sizes.length > 0 ? sizes : [10, 50, 200]) {
      rows.push(await measure(n, version, values.via));
      report(rows[rows.length - 1]);
    }
  } finally {
    await s3?.destroy();
  }
  // Where the CPU goes: on 2 cores the engine's serial per-resource round trips wait for these.
  const kinds = ["CLI and program", "engine", "provider plugins", "policy pack", "language host", "other"];
  console.log(`\nCPU seconds by process (up cold / up with no changes):\n\n| services | ${kinds.join(" | ")} |`);
  console.log(`|---|${kinds.map(() => "---").join("|")}|`);
  for (const r of rows) {
    const cell = (k: string) => `${(r.cpuCold.get(k) ?? 0).toFixed(1)} / ${(r.cpuSame.get(k) ?? 0).toFixed(1)}`;
    console.log(`| ${r.services} | ${kinds.map(cell).join(" | ")} |`);
  }
  // The server's side: every connection is a backend forked, authenticated and torn down.
  const ops = ["floorUp", "upCold", "upSame", "floorDestroy", "destroy"] as const;
  const label = { floorUp: "SQL up", upCold: "up cold", upSame: "up, no changes", floorDestroy: "SQL destroy", destroy: "destroy" };
  console.log(`\nPostgreSQL server: sessions opened / CPU seconds:\n\n| services | ${ops.map((o) => label[o]).join(" | ")} |`);
  console.log(`|---|${ops.map(() => "---").join("|")}|`);
  for (const r of rows) {
    const cell = (o: (typeof ops)[number]) => `${r.server[o].sessions} / ${r.server[o].cpuSeconds.toFixed(1)} s`;
    console.log(`| ${r.services} | ${ops.map(cell).join(" | ")} |`);
  }
}

function report(r: Row): void {
  const s = (x: number) => `${x.toFixed(1)} s`;
  console.log(
    `| ${r.services} | ${r.resources} | ${(r.resources / r.services).toFixed(1)} | ${s(r.upCold)} | ${s(r.upSame)} | ${s(r.preview)} | ${s(r.destroy)} | ${r.peakMiB.toFixed(0)} MiB | ${s(r.floorUp)} | ${s(r.floorDestroy)} | ${(r.upCold / r.floorUp).toFixed(1)}× | ${(r.destroy / r.floorDestroy).toFixed(1)}× |`,
  );
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
