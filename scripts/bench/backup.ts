/**
 * Backup throughput and memory on one local PostgreSQL 16 and the local S3 server (MinIO), both
 * on this machine: `db-platform backup run` (pg_dump streamed through SHA-256 into a multipart
 * upload, plus row counts and schema hash) against plain `pg_dump -Fc -f file` on the same
 * database, same schema, same role, in the same run; the runner's peak RSS at two sizes.
 * The service's table is filled with rows that are part random, part repetitive (~1 KB each).
 * Usage: npm run bench:backup [-- <small MiB> <large MiB>]   (defaults: 256 1100; goal: ratio >= 0.9, memory flat)
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
import { formatBytes } from "../../operations/local/local";
import { postgresBinDir } from "../../operations/local/postgres";
import { startAppliedDevStack } from "../../test/helpers/appliedDevStack";

const ROOT = path.resolve(__dirname, "../..");
const STACK = "benchbackup";
const MiB = 1024 * 1024;

interface Measured {
  readonly seconds: number;
  /** Peak resident memory of the measured process, bytes (from /proc, sampled every 20 ms). */
  readonly peakRss: number;
  readonly stdout: string;
}

/** Run a command, sampling its VmHWM (peak RSS, monotonic) until it exits. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let peak = 0;
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const sample = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        // exited between samples
      }
    }, 20);
    child.on("close", (code) => {
      clearInterval(sample);
      if (code !== 0) reject(new Error(`${path.basename(cmd)} ${args.join(" ")} exited ${code}: ${stderr}`));
      else resolve({ seconds: (performance.now() - t) / 1000, peakRss: peak, stdout });
    });
  });
}

async function main(): Promise<void> {
  const smallMiB = Number(process.argv[2] ?? 256);
  const largeMiB = Number(process.argv[3] ?? 1100);
  const dev = await startAppliedDevStack(STACK, { s3: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-backup-"));
  const pgDump = path.join(postgresBinDir("16", ROOT), "pg_dump");
  try {
    const admin = await dev.server.superuserClient("inventory_db");
    // Setup speed only; the dumps below read, they do not commit.
    await admin.query("ALTER SYSTEM SET fsync = off");
    await admin.query("ALTER SYSTEM SET synchronous_commit = off");
    await admin.query("SELECT pg_reload_conf()");
    const size = async () => Number((await admin.query<{ n: string }>("SELECT pg_database_size('inventory_db') AS n")).rows[0].n);
    const fillTo = async (mib: number) => {
      const t = performance.now();
      while ((await size()) < mib * MiB) {
        await admin.query(
          `INSERT INTO inventory.items (name)
           SELECT encode(inventory.gen_random_bytes(512), 'base64') || repeat(md5(g::text), 8) FROM generate_series(1, 50000) g`,
        );
      }
      await admin.query("VACUUM ANALYZE inventory.items");
      const rows = (await admin.query<{ n: string }>("SELECT count(*) AS n FROM inventory.items")).rows[0].n;
      console.log(`inventory_db: ${formatBytes(await size())}, ${rows} rows (filled in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
    };

    const plain = () =>
      measure(pgDump, [
        "-h",
        dev.server.socketDir,
        "-p",
        String(dev.server.opts.port),
        "-U",
        LOCAL_BOOTSTRAP_SUPERUSER,
        "-d",
        "inventory_db",
        "--format=custom",
        "--role=inventory_readonly",
        "--schema=inventory",
        "-f",
        path.join(tmp, "plain.dump"),
      ]);
    const runner = () =>
      measure(process.execPath, [
        path.join(ROOT, "bin/db-platform.js"),
        "backup",
        "run",
        "--stack",
        STACK,
        "--service",
        "inventory",
        "--json",
      ]);

    for (const [label, mib] of [
      ["small", smallMiB],
      ["large", largeMiB],
    ] as const) {
      await fillTo(mib);
      const dbBytes = await size();
      // Alternate, twice each, and keep each one's best: the two share 2 cores with PostgreSQL and MinIO.
      const p: Measured[] = [];
      const r: Measured[] = [];
      for (let i = 0; i < 2; i++) {
        p.push(await plain());
        r.push(await runner());
      }
      const bestPlain = Math.min(...p.map((x) => x.seconds));
      const bestRunner = Math.min(...r.map((x) => x.seconds));
      const dumpBytes = fs.statSync(path.join(tmp, "plain.dump")).size;
      const manifest = (JSON.parse(r[r.length - 1].stdout) as Array<{ manifest: { dump: { bytes: number } } }>)[0].manifest;
      console.log(
        `${label}: database ${formatBytes(dbBytes)}, dump ${formatBytes(dumpBytes)} (runner's ${formatBytes(manifest.dump.bytes)}); ` +
          `pg_dump -Fc > file ${bestPlain.toFixed(1)} s (${formatBytes(dbBytes / bestPlain)}/s of database), ` +
          `backup run to S3 ${bestRunner.toFixed(1)} s (${formatBytes(dbBytes / bestRunner)}/s); ` +
          `throughput ratio ${(bestPlain / bestRunner).toFixed(2)}x (goal >= 0.9); ` +
          `runner peak RSS ${formatBytes(Math.max(...r.map((x) => x.peakRss)))} (node; pg_dump's own: ${formatBytes(Math.max(...p.map((x) => x.peakRss)))})`,
      );
    }
    await admin.end();
  } finally {
    await dev.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
