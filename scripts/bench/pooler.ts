/**
 * Direct against pooled connections on a local server (docs/pooling.md): pgbench as a service's
 * own login, straight to PostgreSQL and through the PgBouncer that `db-platform local start`
 * runs beside it (operations/local/pooler.ts, transaction mode, 20 server connections), in one
 * run on the same machine. Two loads: a new connection per transaction (`pgbench -C`, as
 * short-lived clients do) at each client count, and steady transactions on kept connections.
 * Per run: transactions (and so connections) per second, p95 latency from pgbench's
 * per-transaction log, the most server backends of the login at once, and the CPU time the
 * server's processes used.
 * Usage: npm run bench:pooler [-- <major> <seconds> <clients>…]   (defaults: 16 10 100 1000)
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { scramVerifier } from "../../components/service/scram";
import { LocalPooler } from "../../operations/local/pooler";
import { freePort } from "../../operations/local/ports";
import { asServerUser, LocalPostgres } from "../../operations/local/postgres";
import { descendants, processes } from "../../operations/local/processes";

const run = promisify(execFile);
const root = path.resolve(__dirname, "../..");
const LOGIN = "bench_app";
const PASSWORD = "bench-app-password";
const DATABASE = "bench_db";
const POOL = 20;

interface Result {
  readonly load: string;
  readonly via: string;
  readonly tps: number;
  readonly p95Ms: number;
  readonly backends: number;
  readonly cpuSeconds: number;
  readonly failed: number;
}

/** One process's CPU seconds from /proc: its own, and with `reaped` those of its children it has waited for. */
function cpuOf(pid: number, reaped: boolean): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    // utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the name.
    return (f[11] + f[12] + (reaped ? f[13] + f[14] : 0)) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used so far by the server: the postmaster with every backend it has reaped
 * (short-lived connections' backends are gone by the time the run ends), and those still alive.
 */
function serverCpu(postmaster: number): number {
  return cpuOf(postmaster, true) + descendants(postmaster, processes()).reduce((n, p) => n + cpuOf(p.pid, false), 0);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function pgbench(server: LocalPostgres, port: number, args: string[], seconds: number, logDir: string) {
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir);
  const { stdout } = await run(
    path.join(server.bin, "pgbench"),
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-U",
      LOGIN,
      "-T",
      String(seconds),
      "-j",
      "2",
      "-S",
      "-n",
      "-l",
      "--log-prefix",
      path.join(logDir, "tx"),
      ...args,
      DATABASE,
    ],
    // As the platform's local URLs connect: no TLS (sslmode=disable) and no GSSAPI negotiation.
    {
      env: { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: "disable", PGGSSENCMODE: "disable" },
      maxBuffer: 64 << 20,
      timeout: (seconds + 120) * 1000,
    },
  );
  // Each log line: client id, transaction no, latency (µs), script no, epoch s, µs.
  const latencies = fs
    .readdirSync(logDir)
    .flatMap((f) => fs.readFileSync(path.join(logDir, f), "utf8").trim().split("\n"))
    .filter(Boolean)
    .map((l) => Number(l.split(" ")[2]) / 1000);
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  return { tps, p95Ms: percentile(latencies, 95), failed };
}

async function main(): Promise<void> {
  const [major = "16", secondsArg = "10", ...clientArgs] = process.argv.slice(2);
  const seconds = Number(secondsArg);
  const clientCounts = (clientArgs.length ? clientArgs : ["100", "1000"]).map(Number);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-pooler-"));
  fs.chmodSync(dir, 0o755);
  const server = new LocalPostgres({
    name: "pg",
    version: major,
    host: "127.0.0.1",
    port: await freePort(),
    adminUser: "platform_admin",
    adminPassword: "bench",
    root: dir,
    projectDir: root,
  });
  const pooler = new LocalPooler({
    name: "pg",
    dir: path.join(dir, "pg", "pooler"),
    port: await freePort(),
    serverHost: "127.0.0.1",
    serverPort: server.opts.port,
    mode: "transaction",
    maxClientConnections: Math.max(...clientCounts) + 100,
    defaultPoolSize: POOL,
    runAs: asServerUser(),
    projectDir: root,
  });
  const results: Result[] = [];
  try {
    await server.start();
    const c = await server.superuserClient();
    await c.query(`CREATE ROLE ${LOGIN} LOGIN PASSWORD '${scramVerifier(PASSWORD, LOGIN)}'`);
    await c.query(`CREATE DATABASE ${DATABASE} OWNER ${LOGIN}`);
    await c.query("ALTER SYSTEM SET max_connections = 1100");
    await c.end();
    await server.stop();
    await server.start();
    await run(
      path.join(server.bin, "pgbench"),
      ["-i", "-s", "10", "-q", "-h", "127.0.0.1", "-p", String(server.opts.port), "-U", LOGIN, DATABASE],
      {
        env: { ...process.env, PGPASSWORD: PASSWORD },
      },
    );
    pooler.configure([{ database: DATABASE, login: LOGIN, verifier: scramVerifier(PASSWORD, LOGIN), mode: "transaction", size: POOL }]);
    await pooler.start();
    const postmaster = Number(fs.readFileSync(path.join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    const loads = [
      ...clientCounts.map((n) => ({ load: `-C, ${n} clients`, args: ["-C", "-c", String(n)] })),
      { load: "steady, 100 clients", args: ["-c", "100"] },
    ];
    for (const { load, args } of loads) {
      for (const [via, port] of [
        ["direct", server.opts.port],
        ["pooled", pooler.opts.port],
      ] as const) {
        let backends = 0;
        const sampler = await server.superuserClient();
        let sampling = true;
        const sampled = (async () => {
          while (sampling) {
            const { rows } = await sampler.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1", [LOGIN]);
            backends = Math.max(backends, rows[0].n as number);
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        const cpuBefore = serverCpu(postmaster);
        const r = await pgbench(server, port, args, seconds, path.join(dir, "log"));
        const cpuSeconds = serverCpu(postmaster) - cpuBefore;
        sampling = false;
        await sampled;
        await sampler.end();
        results.push({ load, via, ...r, backends, cpuSeconds });
        console.error(
          `${load} ${via}: ${r.tps.toFixed(0)} tps, p95 ${r.p95Ms.toFixed(1)} ms, ${backends} backends, server CPU ${cpuSeconds.toFixed(1)} s`,
        );
      }
    }
  } finally {
    await pooler.stop();
    await server.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `PostgreSQL ${major}, pgbench -S (select-only, scale 10) for ${seconds} s per run, PgBouncer transaction mode, pool ${POOL}, ${os.cpus().length} cores`,
  );
  console.log("| load | via | transactions/s | p95 latency | server backends (max) | server CPU | failed |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results)
    console.log(
      `| ${r.load} | ${r.via} | ${r.tps.toFixed(0)} | ${r.p95Ms.toFixed(1)} ms | ${r.backends} | ${r.cpuSeconds.toFixed(1)} s | ${r.failed} |`,
    );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
