/**
 * Backup faults, each on real PostgreSQL 16 and the real S3-compatible server (MinIO), through
 * the command: the S3 server killed mid-upload, the dump's PostgreSQL connection terminated
 * mid-dump, the pg_dump process killed, and a corrupted dump object at restore. Each time: exit
 * 1 with a clear message, no manifest for the failed run, the previous backup still the latest
 * and restorable, a re-run that succeeds, and a drill proving not one row lost.
 *
 * The service gets ~100 MB of incompressible rows so a run lasts long enough to fail half-way;
 * the test strikes once the command reports 8 MiB or more uploaded (a part stored in the bucket).
 */
import { execFileSync, spawn } from "node:child_process";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe as describeAll, expect, it } from "vitest";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import type { DrillOutcome, RunOutcome } from "../../operations/backup/command";
import type { BackupManifest } from "../../operations/backup/storage";
import type { LocalS3 } from "../../operations/local/s3";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import { ROOT } from "../helpers/synth";

// What PostgreSQL allows is what the real engine applied: without it these are skipped, saying why.
const describe = ENGINE.ready ? describeAll : describeAll.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

const STACK = "backupfaults";
const BUCKET = "db-platform-dev-backups";
const ROWS = 100_000;
let dev: AppliedStack;
let s3: LocalS3;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI without blocking the test, so it can strike while the backup runs. */
function cli(...args: string[]): Promise<Result> {
  return start(...args).done;
}

function start(...args: string[]): { done: Promise<Result>; stderrMatches(re: RegExp): Promise<void> } {
  const child = spawn(process.execPath, ["bin/db-platform.js", "backup", ...args], { cwd: ROOT });
  let stdout = "";
  let stderr = "";
  let waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    const ready = waiters.filter((w) => w.re.test(stderr));
    waiters = waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  });
  const done = new Promise<Result>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return {
    done,
    stderrMatches: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        waiters.push({ re, resolve });
        void done.then(() => reject(new Error(`the command ended before stderr matched ${re}:\n${stderr}`)));
      }),
  };
}

/** A run of the service's backup, reporting progress every 50 ms, struck once 8 MiB or more reached S3. */
async function runStruckMidUpload(strike: () => Promise<unknown> | void): Promise<Result> {
  const run = start("run", "--stack", STACK, "--service", "inventory", "--progress", "0.05");
  await run.stderrMatches(/inventory: (\d{2,}|[89])\.\d MiB uploaded/);
  await strike();
  return run.done;
}

async function list(): Promise<BackupManifest[]> {
  const r = await cli("list", "--stack", STACK, "--service", "inventory", "--json");
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout) as BackupManifest[];
}

async function backupOk(): Promise<BackupManifest> {
  // No progress line is due within the run (default: one every 10 s, which a loaded machine crosses).
  const r = await cli("run", "--stack", STACK, "--service", "inventory", "--json", "--progress", "3600");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as RunOutcome[])[0].manifest as BackupManifest;
}

/** The drill restores the latest backup: every row of the live table must be there. */
async function drillLosesNothing(expected: BackupManifest): Promise<void> {
  const r = await cli("drill", "--stack", STACK, "--service", "inventory", "--json");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const [d] = JSON.parse(r.stdout) as DrillOutcome[];
  expect(d).toMatchObject({ service: "inventory", ok: true, backup: expected.id, rows: ROWS, tables: 1 });
}

/** After a failed run: no new manifest, the previous backup still the latest and restorable, a re-run works. */
async function recovered(before: BackupManifest[]): Promise<void> {
  const after = await list();
  expect(after.map((m) => m.id)).toEqual(before.map((m) => m.id));
  await drillLosesNothing(before[before.length - 1]);
  const rerun = await backupOk();
  expect(rerun.tables).toEqual([{ schema: "inventory", name: "items", rows: ROWS }]);
  await drillLosesNothing(rerun);
}

beforeAll(async () => {
  if (!ENGINE.ready) return;
  dev = await startAppliedDevStack(STACK, { s3: true });
  s3 = dev.s3 as LocalS3;
  // Random bytes, base64: pg_dump's compression cannot shrink them much, so a dump is ~100 MB.
  await dev.sql(
    "inventory_db",
    `INSERT INTO inventory.items (name) SELECT encode(inventory.gen_random_bytes(1024), 'base64') FROM generate_series(1, ${ROWS})`,
  );
  await backupOk();
}, 300_000);

afterAll(async () => {
  await dev?.cleanup();
}, 60_000);

describe("backup faults", () => {
  it("the S3 server killed mid-upload", async () => {
    const before = await list();
    const r = await runStruckMidUpload(() => void process.kill(s3.pid() as number, "SIGKILL"));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^db-platform backup: backup of inventory failed, no manifest written: upload of s3:\/\/db-platform-dev-backups\/dev\/inventory\/\S+\.dump failed: /m,
    );
    expect(r.stdout).toMatch(/^inventory: FAILED after [\d.]+ s \(no manifest written; earlier backups unchanged\)$/m);
    await s3.start([BUCKET]);
    await recovered(before);
  }, 240_000);

  it("the dump's PostgreSQL connection terminated mid-dump", async () => {
    const before = await list();
    const r = await runStruckMidUpload(() =>
      dev.sql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND datname = 'inventory_db'",
      ),
    );
    expect(r.code).toBe(1);
    // libpq reports the termination either way, depending on whether the server's notice arrived first.
    expect(r.stderr).toMatch(
      /backup of inventory failed, no manifest written: pg_dump exited with code 1: .*(terminating connection due to administrator command|server closed the connection unexpectedly)/s,
    );
    await recovered(before);
  }, 240_000);

  it("the pg_dump process killed", async () => {
    const before = await list();
    // This server's pg_dump only (other test files dump their own servers at the same time).
    const r = await runStruckMidUpload(
      () => void execFileSync("pkill", ["-KILL", "-f", `pg_dump -h \\S+ -p ${dev.server.opts.port} .*-d inventory_db`]),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backup of inventory failed, no manifest written: pg_dump was killed \(SIGKILL\)/);
    await recovered(before);
  }, 240_000);

  it("a corrupted dump object: restore refuses it before touching the target, an earlier backup restores", async () => {
    const [previous, latest] = (await list()).slice(-2);
    const client = new S3Client(s3.clientConfig());
    try {
      const obj = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: latest.dump.key }));
      const bytes = Buffer.from(await (obj.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: latest.dump.key, Body: bytes }));
    } finally {
      client.destroy();
    }
    const target = `postgresql://platform_admin:audit-admin-password@127.0.0.1:${dev.server.opts.port}/corrupt_restore`;
    const r = await cli("restore", "--stack", STACK, "--service", "inventory", "--latest", "--target", target);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `db-platform backup: checksum mismatch: s3://${BUCKET}/${latest.dump.key} has ${latest.dump.bytes} bytes with sha256 `,
    );
    expect(r.stderr).toContain(`the manifest of backup ${latest.id} says ${latest.dump.bytes} bytes with sha256 ${latest.dump.sha256}`);
    expect(r.stderr).toContain("Nothing was restored.");
    const c = await dev.server.superuserClient();
    try {
      expect((await c.query("SELECT 1 FROM pg_database WHERE datname = 'corrupt_restore'")).rowCount).toBe(0);
    } finally {
      await c.end();
    }
    const drill = await cli("drill", "--stack", STACK, "--service", "inventory");
    expect(drill.code).toBe(1);
    expect(drill.stderr).toContain("checksum mismatch");

    const earlier = await cli("restore", "--stack", STACK, "--service", "inventory", "--backup", previous.id, "--target", target);
    expect(earlier.stderr).toBe("");
    expect(earlier.code).toBe(0);
    expect(earlier.stdout).toContain(`restored backup ${previous.id} into corrupt_restore as inventory_owner: 1 table(s), ${ROWS} row(s)`);

    const rerun = await backupOk();
    await drillLosesNothing(rerun);
  }, 240_000);
});
