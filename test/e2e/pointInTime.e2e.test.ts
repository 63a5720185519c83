/**
 * Point-in-time recovery of one service (docs/point-in-time.md), end to end on PostgreSQL 15-18:
 * the dev stack applied through the real engine with its local S3 server (MinIO), the local
 * server archiving its WAL with barman-cloud from its first start and a base backup taken then.
 * Rows are written to a service every 500 ms, a bad DELETE lands at a moment, and more rows
 * after it; `restore --to-time` just before the DELETE brings back every row written up to then
 * and none after, into a new database (orders: a database of its own) and in place (payments: a
 * schema in a database it shares with profile), its neighbours' data unchanged and the audit
 * clean; the isolation matrix (test/helpers/isolationMatrix.ts) holds after both restores, and no
 * other service's login connects to the restored copy; a drill to that moment passes; the
 * refusals change nothing.
 */
import { Client } from "pg";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { schemaHash, tableCounts } from "../../operations/backup/snapshot";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import { localArchive, localRoot } from "../../operations/local/local";
import { runCli } from "../helpers/cli";
import { ROOT } from "../helpers/synth";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { type Check, connectChecks, FUTURE_CHECKS, PRIVILEGE_CHECKS, runMatrix } from "../helpers/isolationMatrix";

const VERSIONS = ["15", "16", "17", "18"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!ENGINE.ready) {
  describe.skip("point-in-time recovery on PostgreSQL 15-18", () => {
    it(SKIPPED_BECAUSE, () => undefined);
  });
}

describe.runIf(ENGINE.ready).each(VERSIONS)("point-in-time recovery of one service on PostgreSQL %s", (version) => {
  let stack: AppliedStack;
  /** The moment just before the bad DELETEs, and the rows written up to it. */
  let before: Date;
  const kept: Record<string, number[]> = {};
  const measured: string[] = [];

  async function one<T>(url: string, sql: string): Promise<T[]> {
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(sql)).rows as T[];
    } finally {
      await c.end();
    }
  }
  const ids = async (url: string, table: string) =>
    (await one<{ id: number }>(url, `SELECT id FROM ${table} ORDER BY id`)).map((r) => r.id);
  async function asSuperuser<T>(database: string, f: (c: Client) => Promise<T>): Promise<T> {
    const c = await stack.server.superuserClient(database);
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  }
  const rowsOf = (database: string, schemas: string[]) =>
    asSuperuser(database, async (c) => (await tableCounts(c, schemas)).reduce((n, t) => n + t.rows, 0));
  /** Row counts and schema hash of a service's schemas, as the bootstrap superuser sees them. */
  const stateOf = (database: string, schemas: string[]) =>
    asSuperuser(database, async (c) => JSON.stringify({ counts: await tableCounts(c, schemas), hash: await schemaHash(c, schemas) }));
  const cli = (args: string[]) => runCli([...args, "--stack", stack.stack]);
  /** The matrix's cells through each login's direct URL (this stack has no pooler). */
  const direct = (k: Check) => ({ url: stack.directUrl(k.service, k.login), pooled: false });

  beforeAll(async () => {
    stack = await startAppliedDevStack(`pitr-${version}`, { s3: true, version });
    const tables: Record<string, string> = { orders: "orders.orders", payments: "payments.payments" };
    // Writes every 500 ms by each service's app login, then the moment, then the bad DELETE and more writes.
    for (let i = 0; i < 8; i++) {
      await one(stack.directUrl("orders", "app"), "INSERT INTO orders.orders (item) VALUES (1)");
      await one(stack.directUrl("payments", "app"), "INSERT INTO payments.payments (amount) VALUES (1)");
      await sleep(500);
    }
    for (const [service, table] of Object.entries(tables)) kept[service] = await ids(stack.directUrl(service, "app"), table);
    await sleep(200);
    before = new Date();
    await sleep(800);
    for (const [service, table] of Object.entries(tables)) {
      await one(stack.directUrl(service, "app"), `DELETE FROM ${table}`);
      await one(stack.directUrl(service, "app"), `INSERT INTO ${table} DEFAULT VALUES`);
    }
  }, 600_000);

  afterAll(async () => {
    await stack?.cleanup();
    if (measured.length) console.log(`PostgreSQL ${version}: ${measured.join("; ")}`);
  }, 300_000);

  it("archives from the first start, compressed and encrypted at rest: local status names the archive, and a base backup exists", async () => {
    const status = cli(["local", "status"]);
    expect(status.stdout).toMatch(/local: archiving to s3:\/\/db-platform-dev-backups\/dev\/_archive every 60 s at most \(last 0000000/);
    expect(status.stdout).not.toContain("FAILING");
    const s3 = new S3Client(stack.s3!.clientConfig());
    try {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: "db-platform-dev-backups", Prefix: "dev/_archive/" }));
      const keys = (listed.Contents ?? []).map((o) => o.Key as string);
      const wal = keys.find((k) => /\/wals\/[0-9A-F]{16}\/[0-9A-F]{24}\.gz$/.test(k));
      const base = keys.find((k) => /\/base\/\d{8}T\d{6}\/data\.tar\.gz$/.test(k));
      // The retention's deletions give their space back: older versions under the archive expire.
      const lifecycle = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: "db-platform-dev-backups" }));
      expect(lifecycle.Rules?.map((r) => [r.Filter?.Prefix, r.NoncurrentVersionExpiration?.NoncurrentDays])).toEqual([
        ["dev/_archive/", 1],
      ]);
      for (const key of [wal, base]) {
        expect(key).toBeTruthy();
        const head = await s3.send(new HeadObjectCommand({ Bucket: "db-platform-dev-backups", Key: key }));
        expect(head.ServerSideEncryption).toBe("AES256");
      }
    } finally {
      s3.destroy();
    }
  });

  it("restores orders into a new database as it was just before the bad DELETE: every row up to then, none after", async () => {
    const neighbours = await Promise.all([stateOf("inventory_db", ["inventory"]), stateOf("platform", ["payments", "profile"])]);
    const r = cli(["restore", "--service", "orders", "--to-time", before.toISOString(), "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      into: string;
      restore: { restoredAs: string; rows: number };
      neighbours: Array<{ service: string; unchanged: boolean }>;
      lastTransactionAt: string;
      recoverySeconds: number;
      seconds: number;
    };
    expect(out.into).toMatch(/^orders_at_\d{8}t\d{6}$/);
    expect(out.restore.restoredAs).toBe("orders_owner");
    expect(out.neighbours.map((n) => [n.service, n.unchanged])).toEqual([
      ["inventory", true],
      ["payments", true],
      ["profile", true],
      ["sv-sdk", true],
    ]);
    // The restored copy: exactly the rows written before the moment; the live one still has the DELETE's result.
    const c = await stack.server.superuserClient(out.into);
    try {
      const rows = (await c.query("SELECT id FROM orders.orders ORDER BY id")).rows.map((x) => x.id as number);
      expect(rows).toEqual(kept.orders);
      const owner = await c.query("SELECT tableowner FROM pg_tables WHERE schemaname = 'orders' AND tablename = 'orders'");
      expect(owner.rows[0].tableowner).toBe("orders_owner");
    } finally {
      await c.end();
    }
    expect(await ids(stack.directUrl("orders", "app"), "orders.orders")).toHaveLength(1);
    expect(await Promise.all([stateOf("inventory_db", ["inventory"]), stateOf("platform", ["payments", "profile"])])).toEqual(neighbours);
    const rpo = (before.getTime() - Date.parse(out.lastTransactionAt)) / 1000;
    expect(rpo).toBeGreaterThanOrEqual(0);
    expect(rpo).toBeLessThan(2);
    measured.push(
      `new database: recovery ${out.recoverySeconds.toFixed(1)} s, total ${out.seconds.toFixed(1)} s, last transaction ${rpo.toFixed(2)} s before the moment`,
    );
    // The copy is as closed as the service's own database: no login of another service connects to it.
    const closed = await runMatrix(
      connectChecks()
        .filter((k) => k.service !== "orders" && k.database === "orders_db")
        .map((k) => ({ ...k, database: out.into })),
      direct,
    );
    expect(closed.got).toEqual(closed.want);
    await stack.sql("postgres", `DROP DATABASE ${out.into} WITH (FORCE)`);
  });

  it("restores payments in place (a schema of the shared database): its rows back, profile's untouched, its data before backed up, the audit clean", async () => {
    const profile = await stateOf("platform", ["profile"]);
    const unconfirmed = cli(["restore", "--service", "payments", "--to-time", before.toISOString(), "--in-place"]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain(`confirm with --confirm pitr-${version}/payments`);
    const r = cli([
      "restore",
      "--service",
      "payments",
      "--to-time",
      before.toISOString(),
      "--in-place",
      "--confirm",
      `pitr-${version}/payments`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/payments: restored into platform \(in place\) as payments_owner: 1 table\(s\), 8 row\(s\)/);
    expect(r.stdout).toMatch(/neighbours on the server: inventory, orders, profile, sv-sdk unchanged/);
    const backupBefore = /its data before the restore is backup (\S+)/.exec(r.stdout)?.[1];
    expect(backupBefore).toBeTruthy();
    expect(cli(["backup", "list", "--service", "payments"]).stdout).toContain(backupBefore as string);
    // The service's own logins use it as before: the grants held.
    expect(await ids(stack.directUrl("payments", "app"), "payments.payments")).toEqual(kept.payments);
    await one(stack.directUrl("payments", "app"), "INSERT INTO payments.payments (amount) VALUES (2)");
    expect(await stateOf("platform", ["profile"])).toBe(profile);
    const audit = JSON.parse(cli(["audit", "--format", "json", "--no-backups"]).stdout) as {
      findings: Array<{ rule: string; object: string }>;
    };
    expect(audit.findings.map((f) => `${f.rule} ${f.object}`)).toEqual([]);
  });

  it("after both restores: the isolation matrix holds, every login of every service reaching exactly what it reached before", async () => {
    const r = await runMatrix([...connectChecks(), ...PRIVILEGE_CHECKS, ...FUTURE_CHECKS], direct);
    expect(r.got).toEqual(r.want);
    measured.push(`isolation matrix after the restores: ${r.passed.length} cells`);
  });

  it("drills a point-in-time restore of every service to the moment", () => {
    const r = cli(["backup", "drill", "--to-time", before.toISOString(), "--json"]);
    expect(r.code).toBe(0);
    const drilled = JSON.parse(r.stdout) as Array<{ service: string; ok: boolean; rows: number; rtoSeconds: number }>;
    expect(drilled.map((d) => [d.service, d.ok])).toEqual(["inventory", "orders", "payments", "profile", "sv-sdk"].map((s) => [s, true]));
    expect(drilled.find((d) => d.service === "orders")?.rows).toBe(kept.orders.length);
    measured.push(`drill of 5 services: ${drilled.map((d) => `${d.service} ${d.rtoSeconds.toFixed(1)} s`).join(", ")}`);
  });

  if (version === "16")
    it("refuses, changing nothing: a time in the future or without its zone, before the first base backup, before the service existed, past a gap of the archive, a scratch server that cannot start, another restore while an in-place one is unfinished", async () => {
      const live = await stateOf("orders_db", ["orders"]);
      const future = cli(["restore", "--service", "orders", "--to-time", new Date(Date.now() + 3_600_000).toISOString()]);
      expect([future.code, future.stderr]).toEqual([2, expect.stringContaining("is in the future")]);
      const noZone = cli(["restore", "--service", "orders", "--to-time", "2026-12-04 14:02"]);
      expect([noZone.code, noZone.stderr]).toEqual([2, expect.stringContaining("give the time zone")]);
      const early = cli(["restore", "--service", "orders", "--to-time", "2020-01-01T00:00:00Z"]);
      expect([early.code, early.stderr]).toEqual([1, expect.stringContaining("is before the oldest base backup of server local ended")]);
      const drill = JSON.parse(
        cli(["backup", "drill", "--to-time", "2020-01-01T00:00:00Z", "--service", "orders", "--json"]).stdout,
      ) as Array<{ ok: boolean }>;
      expect(drill[0].ok).toBe(false);
      // An in-place restore killed while replacing: any other restore of the service is refused until it is finished.
      const work = path.join(localRoot(ROOT, stack.stack), "recovery");
      const journal = { toTime: "2026-01-01T00:00:00.000Z", phase: "replacing", blocked: [], backupBeforeReplace: "20260101T000000Z-abcd" };
      fs.writeFileSync(path.join(work, "payments.json"), JSON.stringify(journal));
      const interrupted = cli(["restore", "--service", "payments", "--to-time", before.toISOString()]);
      expect([interrupted.code, interrupted.stderr]).toEqual([
        2,
        expect.stringContaining(
          "an in-place restore of payments to 2026-01-01T00:00:00.000Z was interrupted while it replaced the service's data",
        ),
      ]);
      fs.rmSync(path.join(work, "payments.json"));
      // Killed before it replaced anything, with the logins refused: the next run gives them back first.
      await stack.sql("postgres", "ALTER ROLE profile_app NOLOGIN");
      fs.writeFileSync(path.join(work, "profile.json"), JSON.stringify({ ...journal, phase: "backed-up", blocked: ["profile_app"] }));
      const settled = cli(["restore", "--service", "profile", "--to-time", before.toISOString(), "--json"]);
      expect(settled.code).toBe(0);
      expect(await one(stack.directUrl("profile", "app"), "SELECT 1 AS one")).toEqual([{ one: 1 }]);
      expect(fs.existsSync(path.join(work, "profile.json"))).toBe(false);
      await stack.sql("postgres", `DROP DATABASE ${(JSON.parse(settled.stdout) as { into: string }).into} WITH (FORCE)`);
      // A moment after the last write (nothing committed since): the restore's own commit ends the recovery there.
      await sleep(1000);
      const latest = cli(["restore", "--service", "orders", "--to-time", new Date().toISOString(), "--json"]);
      expect(latest.code).toBe(0);
      const latestInto = (JSON.parse(latest.stdout) as { into: string; restore: { rows: number } }).into;
      // Every row orders has now: the one after the DELETE, and the matrix's row in orders.later.
      const rowsNow = await rowsOf("orders_db", ["orders"]);
      expect(rowsNow).toBe(2);
      expect((JSON.parse(latest.stdout) as { restore: { rows: number } }).restore.rows).toBe(rowsNow);
      await stack.sql("postgres", `DROP DATABASE ${latestInto} WITH (FORCE)`);
      const [first] = await localArchive(stack.ctx.spec, stack.server, stack.stack, ROOT)!.baseBackups();
      // The base backup was taken at the first start, before `up` created the services' databases.
      const notYet = cli(["restore", "--service", "orders", "--to-time", new Date(Date.parse(first.endTime) + 500).toISOString()]);
      expect([notYet.code, notYet.stderr]).toEqual([1, expect.stringContaining("service orders did not exist at")]);
      // A gap: the segment right after the base backup gone from the archive.
      const s3 = new S3Client(stack.s3!.clientConfig());
      try {
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: "db-platform-dev-backups", Prefix: "dev/_archive/" }));
        const next = (listed.Contents ?? [])
          .map((o) => o.Key as string)
          .filter((k) => /\/wals\/[0-9A-F]{16}\/[0-9A-F]{24}(\.gz)?$/.test(k))
          .sort()
          .find((k) => /([0-9A-F]{24})(\.gz)?$/.exec(k)![1] > first.endWal);
        expect(next).toBeTruthy();
        await s3.send(new DeleteObjectCommand({ Bucket: "db-platform-dev-backups", Key: next }));
        const gap = cli(["restore", "--service", "orders", "--to-time", before.toISOString()]);
        expect([gap.code, gap.stderr]).toEqual([1, expect.stringContaining("the archive has no WAL up to that moment")]);
        // A scratch server that cannot start: a new base backup whose copy of the data lacks global/pg_control.
        const base = cli(["backup", "base"]);
        expect(base.code).toBe(0);
        const id = /base backup (\d{8}T\d{6})/.exec(base.stdout)![1];
        const key = (next as string).replace(/\/wals\/.*$/, `/base/${id}/data.tar.gz`);
        const work = fs.mkdtempSync(path.join(os.tmpdir(), "pitr-broken-"));
        try {
          const object = await s3.send(new GetObjectCommand({ Bucket: "db-platform-dev-backups", Key: key }));
          fs.writeFileSync(path.join(work, "data.tar.gz"), await object.Body!.transformToByteArray());
          execFileSync("gunzip", [path.join(work, "data.tar.gz")]);
          execFileSync("tar", ["--delete", "-f", path.join(work, "data.tar"), "global/pg_control"]);
          execFileSync("gzip", [path.join(work, "data.tar")]);
          const body = fs.readFileSync(path.join(work, "data.tar.gz"));
          await s3.send(new PutObjectCommand({ Bucket: "db-platform-dev-backups", Key: key, Body: body }));
        } finally {
          fs.rmSync(work, { recursive: true, force: true });
        }
        const broken = cli(["restore", "--service", "orders", "--to-time", new Date().toISOString()]);
        expect([broken.code, broken.stderr]).toEqual([1, expect.stringMatching(/the scratch server for .* did not start: .*pg_control/)]);
        const left = fs
          .readdirSync(path.join(localRoot(ROOT, stack.stack), "recovery"))
          .filter((e) => /^(recovery\.local\.|extract\.)/.test(e));
        expect(left).toEqual([]);
      } finally {
        s3.destroy();
      }
      expect(await stateOf("orders_db", ["orders"])).toBe(live);
      // Archiving that stops (the S3 server down) is an audit finding and shows in stats and local status.
      await stack.s3!.stop();
      try {
        await stack.sql("postgres", "SELECT pg_switch_wal()");
        await stack.sql("orders_db", "CREATE TABLE public.pitr_probe (); DROP TABLE public.pitr_probe");
        await stack.sql("postgres", "SELECT pg_switch_wal()");
        for (let i = 0; i < 100; i++) {
          const [row] = await one<{ n: number }>(stack.directUrl("orders", "app"), "SELECT failed_count::int AS n FROM pg_stat_archiver");
          if (row.n > 0) break;
          await sleep(200);
        }
        const audit = JSON.parse(cli(["audit", "--format", "json"]).stdout) as { findings: Array<{ rule: string; message: string }> };
        const archiving = audit.findings.filter((f) => f.rule === "archive-health").map((f) => f.message);
        // Also, depending on timing, the segments that pile up meanwhile.
        expect(archiving).toEqual(
          expect.arrayContaining([
            expect.stringMatching(
              /^server local cannot be recovered to a recent moment: archiving fails: the last attempt, of [0-9A-F]{24}, failed at /,
            ),
            expect.stringContaining(
              "server local cannot be recovered to a recent moment: its base backups could not be listed: barman-cloud-backup-list failed",
            ),
          ]),
        );
        expect(archiving.filter((m) => !/archiving fails|could not be listed|completed WAL segment\(s\) wait unarchived/.test(m))).toEqual(
          [],
        );
        expect(cli(["local", "status"]).stdout).toContain("FAILING since");
      } finally {
        await stack.s3!.start(["db-platform-dev-backups"]);
      }
      expect((await one<{ n: string }>(stack.directUrl("orders", "app"), "SELECT count(*)::text AS n FROM orders.orders"))[0].n).toBe("1");
    });
});
