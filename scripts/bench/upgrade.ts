/**
 * The downtime of a major upgrade of a local server, per pg_upgrade mode, against a plain dump
 * and restore of the same data on the same machine in the same run. For each size, one server of
 * the old major is filled with a service's table (owned by a service login, ~size of data), its
 * data folder copied once per method, and a prober connects as the service's own login over TCP
 * every 20 ms: the downtime is from the first refused connection to the first accepted one that
 * sees every row (for dump and restore, from the start of the dump: the service must stop writing
 * there). The methods run one after another, each on its own copy of the data:
 *   - pg_upgrade --copy and --link (operations/upgrade/cluster.ts, as `db-platform upgrade`
 *     runs it; --clone where the filesystem can clone files),
 *   - pg_dump -Fc of the stopped-for-writes server, a new cluster, pg_restore -j 2.
 * Usage: npm run bench:upgrade [-- <from> <to> <GB> …]   (defaults: 16 17 1 10)
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { freePort } from "../../operations/local/ports";
import { LocalPostgres } from "../../operations/local/postgres";
import { runPgUpgrade, sibling, switchFolders, type UpgradeMode } from "../../operations/upgrade/cluster";
import { fillService } from "./serviceData";

const ROOT = path.resolve(__dirname, "../..");
const LOGIN = { user: "bench_app", password: "bench-app-password" };
const fill = (server: LocalPostgres, gb: number) => fillService(server, gb, LOGIN);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects as the service login every 20 ms; `back(since)` is the downtime once every row is back. */
function prober(port: number, rows: number) {
  let firstRefused: number | undefined;
  let firstBack: number | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      const c = new Client({ host: "127.0.0.1", port, ...LOGIN, database: "svc", connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        const n = Number((await c.query("SELECT count(*) AS n FROM svc.items")).rows[0].n);
        if (firstRefused !== undefined && firstBack === undefined && n === rows) firstBack = Date.now();
      } catch {
        firstRefused ??= Date.now();
      } finally {
        await c.end().catch(() => undefined);
      }
      await sleep(20);
    }
  })();
  return {
    back: async (since?: number) => {
      while (firstBack === undefined) await sleep(20);
      running = false;
      await loop;
      return ((firstBack - (since ?? (firstRefused as number))) / 1000).toFixed(1);
    },
  };
}

const copyDir = (from: string, to: string) => execFileSync("cp", ["-a", from, to]);

async function viaPgUpgrade(base: LocalPostgres, to: string, mode: UpgradeMode, rows: number): Promise<string> {
  const probe = prober(base.opts.port, rows);
  await sleep(200);
  await runPgUpgrade(base, to, mode, () => undefined);
  switchFolders(base, base.opts.version, to);
  await sibling(base, to).start();
  return probe.back();
}

async function viaDumpRestore(base: LocalPostgres, to: string, rows: number): Promise<string> {
  const probe = prober(base.opts.port, rows);
  await sleep(200);
  // Writes stop here: the service is taken off, dumped, and restored into the new major.
  const since = Date.now();
  const dump = path.join(base.dir, "svc.dump");
  await base.tool("pg_dump", ["-Fc", "-h", base.socketDir, "-p", String(base.opts.port), "-U", "postgres", "-f", dump, "svc"], {
    timeoutMs: 7_200_000,
  });
  await base.stop();
  const next = sibling(base, to, `data-${to}`);
  await next.init();
  switchFolders(base, base.opts.version, to);
  const fresh = sibling(base, to);
  await fresh.start();
  const c = await fresh.superuserClient();
  await c.query(`CREATE ROLE ${LOGIN.user} LOGIN PASSWORD '${LOGIN.password}'`);
  await c.query(`CREATE DATABASE svc OWNER ${LOGIN.user}`);
  await c.end();
  await fresh.tool("pg_restore", ["-j", "2", "-h", fresh.socketDir, "-p", String(fresh.opts.port), "-U", "postgres", "-d", "svc", dump], {
    timeoutMs: 7_200_000,
  });
  return probe.back(since);
}

async function main(): Promise<void> {
  const [from = "16", to = "17", ...sizes] = process.argv.slice(2);
  const gbs = (sizes.length ? sizes : ["1", "10"]).map(Number);
  const rowsOut: string[] = ["| data | method | downtime (s) |", "| ---- | ------ | ------------ |"];
  for (const gb of gbs) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-upgrade-"));
    fs.chmodSync(dir, 0o755);
    const common = { version: from, host: "127.0.0.1", adminUser: "platform_admin", adminPassword: "bench", root: dir, projectDir: ROOT };
    try {
      const seed = new LocalPostgres({ ...common, name: "seed", port: await freePort() });
      await seed.start();
      const started = Date.now();
      const rows = await fill(seed, gb);
      await seed.stop();
      console.error(`${gb} GB: ${rows} rows written in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      const methods: Array<[string, (s: LocalPostgres) => Promise<string>]> = [
        ["pg_upgrade --copy", (s) => viaPgUpgrade(s, to, "copy", rows)],
        ["pg_upgrade --link", (s) => viaPgUpgrade(s, to, "link", rows)],
        ["pg_dump -Fc + pg_restore -j 2", (s) => viaDumpRestore(s, to, rows)],
      ];
      for (const [method, run] of methods) {
        const name = method.replace(/\W+/g, "-");
        fs.mkdirSync(path.join(dir, name), { mode: 0o755 });
        copyDir(seed.dataDir, path.join(dir, name, "data"));
        // The copy's own socket folder (its settings name the seed's).
        const socketDir = path.join(dir, name, "run");
        fs.mkdirSync(socketDir, { mode: 0o700 });
        fs.appendFileSync(path.join(dir, name, "data", "postgresql.conf"), `unix_socket_directories = '${socketDir}'\n`);
        if (process.getuid?.() === 0) execFileSync("chown", ["-R", "postgres:postgres", path.join(dir, name)]);
        const server = new LocalPostgres({ ...common, name, port: seed.opts.port });
        await server.start();
        const seconds = await run(server);
        rowsOut.push(`| ${gb} GB (${rows} rows) | ${method} | ${seconds} |`);
        console.error(rowsOut.at(-1));
        await sibling(server, to).destroy();
        fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`PostgreSQL ${from} → ${to}, ${os.cpus().length} cores\n${rowsOut.join("\n")}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
