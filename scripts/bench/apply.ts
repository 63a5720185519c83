/**
 * Apply speed: generated local stacks of N services (four in five with a database of their own,
 * the rest sharing one database by schema) applied with the commands a user runs (`db-platform up`
 * = `npm start -- --stack NAME`, a second `up`, `preview --expect-no-changes`, `destroy --yes`, each
 * its own process) through the real Pulumi engine and provider plugins on one local PostgreSQL 16,
 * against the floor of the same DDL run as plain SQL (written from the synthesized state,
 * scripts/bench/catalogFill.ts) on the same server in the same run.
 * Per size: resources, resources per service, `up` cold, `up` with nothing to change, `preview`,
 * `destroy`, peak memory of the engine's process tree, and the ratios to the floor.
 * Usage: npm run bench:apply [-- <services> …]   (default 10 50 200; needs the provider plugins)
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { escapeIdentifier } from "pg";
import { stringify } from "yaml";
import { DEV_PASSPHRASE, ensureEngine, localInstances, localRoot, localServers, stackWorkspace } from "../../operations/local/local";
import type { LocalPostgres } from "../../operations/local/postgres";
import { LOCAL_PARALLEL, missingPlugins, sdkPlugin } from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synth } from "../../operations/stack/synth";
import { loadSpec } from "../../components/spec";
import { freePort } from "../../operations/local/ports";
import { descendants, processes } from "../../operations/local/processes";
import { materialize, materializeSql } from "./catalogFill";

const ROOT = path.resolve(__dirname, "../..");
const ADMIN_PASSWORD = "bench-apply-admin-password";

/** Peak resident memory of this process and all its descendants (the engine, the plugins), sampled. */
class PeakMemory {
  peak = 0;
  private timer?: NodeJS.Timeout;

  start(): void {
    this.peak = 0;
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, treeRss(process.pid))), 200);
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}

function treeRss(root: number): number {
  const table = processes();
  return [...table.filter((p) => p.pid === root), ...descendants(root, table)].reduce((sum, p) => sum + p.rssBytes, 0);
}

function stackConfig(services: number, port: number): Record<string, unknown> {
  const entries: Array<[string, Record<string, unknown>]> = [];
  for (let i = 0; i < services; i++) {
    const name = `svc${String(i).padStart(3, "0")}`;
    entries.push([name, i % 5 === 4 ? { server: "local", isolation: "schema", database: "shared" } : { server: "local" }]);
  }
  return {
    config: {
      "db-platform:environment": "dev",
      "db-platform:servers": { local: { hosting: "local", version: "16", host: "127.0.0.1", port } },
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
  floorUp: number;
  floorDestroy: number;
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

async function measure(services: number): Promise<Row> {
  const stack = `bench-apply-${services}`;
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const port = await freePort();
  fs.writeFileSync(file, stringify(stackConfig(services, port)));
  const ws = await stackWorkspace(ROOT, stack);
  await ws.setConfig(stack, "db-platform:adminPasswords.local", { value: ADMIN_PASSWORD, secret: true }, true);
  const config = readConfigFile(file);
  const spec = loadSpec(config);
  const { primary: server } = localInstances(localServers(spec)[0], stack, ROOT, ADMIN_PASSWORD);
  const memory = new PeakMemory();
  try {
    await server.start();
    const resources = await synth(config, "db-platform", stack);
    const databases = [...new Set(materializeSql(resources, "platform_admin").map((s) => s.database))].filter((d) => d !== "postgres");
    const roles = resources.filter((r) => r.type === "postgresql:index/role:Role").map((r) => String(r.props.name));

    const [, floorUp] = await timed(() => materialize(resources, "platform_admin", (db) => server.superuserClient(db)));
    const [, floorDestroy] = await timed(() => dropAll(server, databases, roles));

    // The commands a user runs: `npm start -- --stack NAME`, a second one, preview, `npm run destroy -- --stack NAME`.
    memory.start();
    const [first, upCold] = await timed(() => cli(["up", "--stack", stack]));
    const peak = memory.stop();
    if (!/created \d+/.test(first)) throw new Error(`first up created nothing:\n${first}`);
    const [same, upSame] = await timed(() => cli(["up", "--stack", stack]));
    if (!/: no changes/.test(same)) throw new Error(`second up changed something:\n${same}`);
    const [, preview] = await timed(() => cli(["preview", "--stack", stack, "--expect-no-changes"]));
    const [, destroy] = await timed(() => cli(["destroy", "--stack", stack, "--yes"]));
    return {
      services,
      resources: resources.length,
      upCold,
      upSame,
      preview,
      destroy,
      peakMiB: peak / 1024 ** 2,
      floorUp,
      floorDestroy,
    };
  } finally {
    await server.destroy();
    await ws.removeStack(stack, { force: true }).catch(() => undefined);
    fs.rmSync(localRoot(ROOT, stack), { recursive: true, force: true });
    fs.rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  process.env.PULUMI_CONFIG_PASSPHRASE ??= DEV_PASSPHRASE;
  ensureEngine(ROOT);
  const missing = missingPlugins([sdkPlugin(ROOT, "postgresql"), sdkPlugin(ROOT, "random")]);
  if (missing.length > 0)
    throw new Error(`bench:apply needs the provider plugins: ${missing.map((p) => `${p.name} v${p.version}`).join(", ")}`);
  const cpu = execFileSync("nproc", { encoding: "utf8" }).trim();
  const overrides = ["PULUMI_SKIP_CHECKPOINTS", "PULUMI_PARALLEL"]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]}`);
  console.log(
    `bench:apply on ${cpu} cores, PostgreSQL 16, local file backend; local-stack engine settings (state saved once per operation, --parallel ${LOCAL_PARALLEL})${overrides.length > 0 ? `, overridden: ${overrides.join(" ")}` : ""}`,
  );
  console.log(
    "| services | resources | per service | up cold | up, no changes | preview | destroy | peak memory | SQL up | SQL destroy | up ÷ SQL | destroy ÷ SQL |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const n of sizes.length > 0 ? sizes : [10, 50, 200]) {
    const r = await measure(n);
    const s = (x: number) => `${x.toFixed(1)} s`;
    console.log(
      `| ${r.services} | ${r.resources} | ${(r.resources / r.services).toFixed(1)} | ${s(r.upCold)} | ${s(r.upSame)} | ${s(r.preview)} | ${s(r.destroy)} | ${r.peakMiB.toFixed(0)} MiB | ${s(r.floorUp)} | ${s(r.floorDestroy)} | ${(r.upCold / r.floorUp).toFixed(1)}× | ${(r.destroy / r.floorDestroy).toFixed(1)}× |`,
    );
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
