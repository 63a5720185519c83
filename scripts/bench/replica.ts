/**
 * Replica lag of a local streaming standby under a small write load: a PostgreSQL primary and a
 * standby cloned with pg_basebackup -R (the tooling `db-platform local start` uses), in a
 * temporary folder on free loopback ports. Writers insert at a fixed rate for a fixed time while
 * a sampler reads pg_stat_replication every 100 ms, and a prober measures how long a committed
 * row takes to become visible on the standby.
 * Usage: npm run bench:replica [-- <major> <writes per second> <seconds>]   (defaults: 16 200 10)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { freePort } from "../../operations/local/ports";
import { LocalPostgres } from "../../operations/local/postgres";

const root = path.resolve(__dirname, "../..");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const [major = "16", rateArg = "200", secondsArg = "10"] = process.argv.slice(2);
  const rate = Number(rateArg);
  const seconds = Number(secondsArg);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-replica-"));
  fs.chmodSync(dir, 0o755);
  const common = { version: major, host: "127.0.0.1", adminUser: "platform_admin", adminPassword: "bench", root: dir, projectDir: root };
  const primary = new LocalPostgres({ ...common, name: "primary", port: await freePort() });
  const standby = new LocalPostgres({ ...common, name: "standby", port: await freePort(), standbyOf: primary });
  try {
    await primary.start();
    await standby.start();
    const setup = await primary.superuserClient();
    await setup.query("CREATE TABLE writes (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())");
    await setup.query("GRANT SELECT ON writes TO platform_admin");
    await setup.end();

    const writers = await Promise.all([0, 1, 2, 3].map(() => primary.superuserClient()));
    const sampler = await primary.superuserClient();
    const reader = new Client({
      host: "127.0.0.1",
      port: standby.opts.port,
      user: "platform_admin",
      password: "bench",
      database: "postgres",
    });
    await reader.connect();

    const lagBytes: number[] = [];
    const replayMs: number[] = [];
    const visibleMs: number[] = [];
    let writes = 0;
    const end = Date.now() + seconds * 1000;

    const writeLoop = async (c: Client, share: number) => {
      const interval = 1000 / share;
      let next = Date.now();
      while (Date.now() < end) {
        await c.query("INSERT INTO writes (payload) VALUES (repeat('x', 200))");
        writes++;
        next += interval;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
      }
    };
    const sampleLoop = async () => {
      while (Date.now() < end) {
        const r = await sampler.query(
          "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS bytes, extract(epoch FROM replay_lag) * 1000 AS ms FROM pg_stat_replication WHERE application_name = 'standby'",
        );
        if (r.rows[0]) {
          lagBytes.push(Number(r.rows[0].bytes));
          if (r.rows[0].ms !== null) replayMs.push(Number(r.rows[0].ms));
        }
        await sleep(100);
      }
    };
    const probeLoop = async () => {
      const probe = await primary.superuserClient();
      while (Date.now() < end) {
        const { rows } = await probe.query("INSERT INTO writes (payload) VALUES ('probe') RETURNING id");
        const committed = process.hrtime.bigint();
        while ((await reader.query("SELECT 1 FROM writes WHERE id = $1", [rows[0].id])).rowCount === 0) await sleep(1);
        visibleMs.push(Number(process.hrtime.bigint() - committed) / 1e6);
        await sleep(250);
      }
      await probe.end();
    };
    const started = Date.now();
    await Promise.all([...writers.map((c) => writeLoop(c, rate / writers.length)), sampleLoop(), probeLoop()]);
    const elapsed = (Date.now() - started) / 1000;
    await Promise.all([...writers.map((c) => c.end()), sampler.end(), reader.end()]);

    const fmt = (v: number) => (Number.isNaN(v) ? "n/a" : v.toFixed(2));
    console.log(
      `PostgreSQL ${major}: ${writes} single-row inserts in ${elapsed.toFixed(1)} s (${(writes / elapsed).toFixed(0)}/s target ${rate}/s)`,
    );
    console.log(
      `replay lag (pg_stat_replication.replay_lag, ${replayMs.length} samples): p50 ${fmt(percentile(replayMs, 50))} ms, p95 ${fmt(percentile(replayMs, 95))} ms, max ${fmt(Math.max(...replayMs))} ms`,
    );
    console.log(
      `unreplayed WAL (${lagBytes.length} samples): p50 ${percentile(lagBytes, 50)} B, p95 ${percentile(lagBytes, 95)} B, max ${Math.max(...lagBytes)} B`,
    );
    console.log(
      `commit-to-visible on the standby (${visibleMs.length} probes): p50 ${fmt(percentile(visibleMs, 50))} ms, p95 ${fmt(percentile(visibleMs, 95))} ms, max ${fmt(Math.max(...visibleMs))} ms`,
    );
  } finally {
    await standby.destroy().catch(() => undefined);
    await primary.destroy().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
