/**
 * Audit and stats speed on one local PostgreSQL 16 with N databases: a stack of N services
 * (database isolation, app/readonly/migrator logins each) is synthesized, applied with the
 * provider's SQL (scripts/bench/catalogFill.ts, a bench-only catalog filler), every service gets a table and a sequence, and
 * `db-platform audit --format json` (or with --stats, `db-platform stats --format json`, after a
 * few statements per service) runs against it as a command, cold, in a fresh process.
 * Usage: npm run bench:audit [-- <databases> <concurrency>]   (defaults: 1000 8; goal < 10 s)
 *        npm run bench:stats [-- <databases> <concurrency>]   (defaults: 200 8; goal: one snapshot < 2 s)
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import pLimit from "p-limit";
import { stringify } from "yaml";
import type { AuditReport } from "../../operations/audit/model";
import type { StatsReport } from "../../operations/stats/model";
import { localRoot } from "../../operations/local/local";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synth } from "../../operations/stack/synth";
import { LocalPostgres } from "../../operations/local/postgres";
import { materialize } from "./catalogFill";
import { freePort } from "../../operations/local/ports";

const ROOT = path.resolve(__dirname, "../..");
const STACK = "auditbench";

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

async function main(): Promise<void> {
  const stats = process.argv[2] === "--stats";
  const args = process.argv.slice(stats ? 3 : 2);
  const databases = Number(args[0] ?? (stats ? 200 : 1000));
  const concurrency = Number(args[1] ?? 8);
  const port = await freePort();
  const file = path.join(ROOT, `Pulumi.${STACK}.yaml`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-audit-"));
  const services = Object.fromEntries(
    Array.from({ length: databases }, (_, i) => [`svc${String(i).padStart(4, "0")}`, { server: "local" }]),
  );
  fs.writeFileSync(
    file,
    stringify({
      config: {
        "db-platform:environment": "dev",
        "db-platform:servers": { local: { hosting: "local", version: "16", port } },
        "db-platform:services": services,
        "db-platform:adminPasswords": { local: { secure: "v1:bench" } },
      },
    }),
  );
  const server = new LocalPostgres({
    name: "local",
    version: "16",
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: "bench-admin-password",
    root: localRoot(ROOT, STACK),
    projectDir: ROOT,
  });
  try {
    let t = performance.now();
    const resources = await synth(readConfigFile(file), "db-platform", STACK);
    const state = path.join(tmp, "synth.json");
    fs.writeFileSync(state, JSON.stringify(resources));
    console.log(`synthesized ${databases} services: ${resources.length} resources in ${seconds(t)} s`);

    t = performance.now();
    await server.start();
    const admin = await server.superuserClient();
    // Setup speed only: the audit below reads catalogs, which durability settings do not touch.
    await admin.query("ALTER SYSTEM SET fsync = off");
    await admin.query("ALTER SYSTEM SET synchronous_commit = off");
    await admin.query("SELECT pg_reload_conf()");
    await admin.end();
    await materialize(resources, "platform_admin", (db) => server.superuserClient(db));
    const limit = pLimit(4);
    await Promise.all(
      Object.keys(services).map((svc) =>
        limit(async () => {
          const c = await server.superuserClient(`${svc}_db`);
          await c.query(`SET ROLE ${svc}_owner; CREATE TABLE ${svc}.items (id serial PRIMARY KEY, name text); RESET ROLE`);
          // Something for the statement statistics to attribute: a few statements as the service's app login.
          if (stats)
            await c.query(
              `SET ROLE ${svc}_app; INSERT INTO ${svc}.items (name) VALUES ('x'); SELECT count(*) FROM ${svc}.items; RESET ROLE`,
            );
          await c.end();
        }),
      ),
    );
    console.log(`applied the stack to PostgreSQL 16 (${databases} databases, ${databases * 4} roles) in ${seconds(t)} s`);

    if (stats) {
      await timeStats(databases, concurrency);
      return;
    }
    const runs: number[] = [];
    let report: AuditReport | undefined;
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      const r = spawnSync(
        process.execPath,
        [
          path.join(ROOT, "bin/db-platform.js"),
          "audit",
          "--stack",
          STACK,
          "--state",
          state,
          "--format",
          "json",
          "--concurrency",
          String(concurrency),
        ],
        { cwd: ROOT, encoding: "utf8", maxBuffer: 1 << 30 },
      );
      runs.push((performance.now() - t) / 1000);
      if (r.status !== 0) throw new Error(`audit exited ${r.status}: ${r.stderr}${r.stdout.slice(0, 2000)}`);
      report = JSON.parse(r.stdout) as AuditReport;
    }
    const s = report?.servers[0];
    console.log(
      `audit of ${s?.databases} databases (concurrency ${concurrency}): ${runs.map((x) => `${x.toFixed(2)} s`).join(", ")} wall per command run; ` +
        `catalog reading ${s?.collectMs} ms, whole audit ${report?.durationMs} ms in the last run; ${report?.findings.length} finding(s); goal < 10 s`,
    );
  } finally {
    await server.destroy().catch(() => undefined);
    fs.rmSync(localRoot(ROOT, STACK), { recursive: true, force: true });
    fs.rmSync(file, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** `db-platform stats --format json` three times, cold: wall time per command and the snapshot's own time. */
async function timeStats(databases: number, concurrency: number): Promise<void> {
  const runs: number[] = [];
  let report: StatsReport | undefined;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const args = ["stats", "--stack", STACK, "--format", "json", "--concurrency", String(concurrency)];
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin/db-platform.js"), ...args], {
      cwd: ROOT,
      encoding: "utf8",
      maxBuffer: 1 << 30,
    });
    runs.push((performance.now() - t) / 1000);
    if (r.status !== 0) throw new Error(`stats exited ${r.status}: ${r.stderr}${r.stdout.slice(0, 2000)}`);
    report = JSON.parse(r.stdout) as StatsReport;
  }
  const busy = report?.services.filter((s) => s.queries.calls > 0).length;
  console.log(
    `stats of ${report?.services.length} services in ${databases} databases (concurrency ${concurrency}): ${runs.map((x) => `${x.toFixed(2)} s`).join(", ")} wall per command run; ` +
      `snapshot and report ${report?.durationMs.toFixed(0)} ms in the last run; ${busy} service(s) with statements; goal: snapshot < 2 s`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
