/**
 * `db-platform backup` on a real PostgreSQL 16 holding the dev stack (applied through the real
 * Pulumi engine and provider plugins) and a real S3-compatible server (MinIO, 127.0.0.1):
 * run, list, restore and drill as commands, the manifest as the commit marker, and the dump
 * taken with each service's read-only login.
 */
import { GetObjectCommand, ListObjectVersionsCommand, S3Client } from "@aws-sdk/client-s3";
import { Client } from "pg";
import { afterAll, beforeAll, describe as describeAll, expect, it } from "vitest";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { runBackupTask, runCli } from "../helpers/cli";
import type { RunOutcome, DrillOutcome } from "../../operations/backup/command";
import type { BackupManifest } from "../../operations/backup/storage";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";

// What PostgreSQL allows is what the real engine applied: without it these are skipped, saying why.
const describe = ENGINE.ready ? describeAll : describeAll.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

const STACK = "backuptest";
let dev: AppliedStack;

const cli = (...args: string[]) => runCli(["backup", ...args]);

const SERVICES = ["inventory", "orders", "payments", "profile", "sv-sdk"];

beforeAll(async () => {
  if (!ENGINE.ready) return;
  dev = await startAppliedDevStack(STACK, { s3: true });
  await dev.sql("inventory_db", "INSERT INTO inventory.items (name) SELECT 'item ' || g FROM generate_series(1, 1000) g");
  await dev.sql("orders_db", "INSERT INTO orders.orders (item) SELECT g FROM generate_series(1, 250) g");
  await dev.sql("platform", "INSERT INTO payments.payments (amount) SELECT g * 1.5 FROM generate_series(1, 40) g");
  await dev.sql("sv_sdk_db", "INSERT INTO auth.users DEFAULT VALUES; INSERT INTO audit.events VALUES (now()), (now())");
}, 300_000);

afterAll(async () => {
  await dev?.cleanup();
}, 60_000);

describe("backup run, list, drill on the dev stack", () => {
  let first: RunOutcome[];

  it("backs up every service with its own read-only login, manifest last", () => {
    const r = cli("run", "--stack", STACK, "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    first = JSON.parse(r.stdout) as RunOutcome[];
    expect(first.map((o) => [o.service, o.ok])).toEqual(SERVICES.map((s) => [s, true]));
    const inventory = first[0].manifest as BackupManifest;
    expect(inventory).toMatchObject({
      format: "db-platform-backup/1",
      stack: STACK,
      environment: "dev",
      service: "inventory",
      server: "local",
      database: "inventory_db",
      schemas: ["inventory"],
      dumpedAs: "inventory_readonly",
      tables: [{ schema: "inventory", name: "items", rows: 1000 }],
    });
    expect(inventory.serverVersion).toMatch(/^16\./);
    expect(inventory.dump.key).toBe(`dev/inventory/${inventory.id}.dump`);
    expect(inventory.dump.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(inventory.schemaHash).toMatch(/^[0-9a-f]{64}$/);
    const payments = first[2].manifest as BackupManifest;
    expect(payments).toMatchObject({ database: "platform", schemas: ["payments"], dumpedAs: "payments_readonly" });
    expect(payments.tables).toEqual([{ schema: "payments", name: "payments", rows: 40 }]);
    const svSdk = first[4].manifest as BackupManifest;
    expect(svSdk.tables).toEqual([
      { schema: "audit", name: "events", rows: 2 },
      { schema: "auth", name: "users", rows: 1 },
    ]);
  });

  it("stores the dump and the manifest in the versioned bucket, the dump's bytes matching the manifest", async () => {
    const s3 = new S3Client((dev.s3 as NonNullable<AppliedStack["s3"]>).clientConfig());
    try {
      const m = first[1].manifest as BackupManifest;
      const obj = await s3.send(new GetObjectCommand({ Bucket: "db-platform-dev-backups", Key: m.dump.key, ChecksumMode: "ENABLED" }));
      // The server checked each part's CRC32 on upload and keeps it: the object carries a checksum.
      expect(obj.ChecksumCRC32).toMatch(/^[A-Za-z0-9+/=]+(-\d+)?$/);
      const bytes = Buffer.from(await (obj.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      expect(bytes.length).toBe(m.dump.bytes);
      expect(bytes.subarray(0, 5).toString()).toBe("PGDMP");
      const { createHash } = await import("node:crypto");
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(m.dump.sha256);
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: "db-platform-dev-backups", Prefix: "dev/orders/" }));
      expect(versions.Versions?.every((v) => v.VersionId && v.VersionId !== "null")).toBe(true);
    } finally {
      s3.destroy();
    }
  });

  it("runs the dump with the read-only login's privileges, not the superuser's", async () => {
    // A table the read-only login cannot read makes its service's dump fail: proof of whose privileges it uses.
    await dev.sql(
      "orders_db",
      "SET ROLE orders_owner; CREATE TABLE orders.secret (x int); REVOKE SELECT ON orders.secret FROM orders_readonly; RESET ROLE",
    );
    try {
      const r = cli("run", "--stack", STACK, "--service", "orders");
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/backup of orders failed, no manifest written: .*permission denied for table secret/);
    } finally {
      await dev.sql("orders_db", "DROP TABLE orders.secret");
    }
  });

  it("lists the committed backups", () => {
    const r = cli("list", "--stack", STACK, "--json");
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as BackupManifest[];
    expect(list.map((m) => m.id)).toEqual(first.map((o) => o.manifest?.id));
    const text = cli("list", "--stack", STACK, "--service", "orders");
    expect(text.stdout).toContain(first[1].manifest?.id);
    expect(text.stdout.trimEnd().split("\n").at(-1)).toBe("1 backup(s)");
  });

  it("drills every service: restored into a scratch database, counts and schema hash match, RTO measured, scratch dropped", async () => {
    const r = cli("drill", "--stack", STACK, "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const drills = JSON.parse(r.stdout) as DrillOutcome[];
    expect(drills.map((d) => [d.service, d.ok, d.backup])).toEqual(SERVICES.map((s, i) => [s, true, first[i].manifest?.id]));
    expect(drills.map((d) => d.rows)).toEqual([1000, 250, 40, 0, 3]);
    for (const d of drills) expect(d.rtoSeconds).toBeGreaterThan(0);
    const c = await dev.server.superuserClient();
    try {
      const left = await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'drill\\_%'");
      expect(left.rows).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it("restores one service into a new database, and refuses a non-empty one without --overwrite", async () => {
    const r = cli("restore", "--stack", STACK, "--service", "orders", "--latest", "--target", adminUrl("restored_orders"));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^orders: restored backup \S+ into restored_orders as orders_owner: 1 table\(s\), 250 row\(s\), row counts and schema hash match the manifest/,
    );
    const again = cli("restore", "--stack", STACK, "--service", "orders", "--target", adminUrl("restored_orders"));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /the target database restored_orders is not empty \(orders\.orders, orders\.orders_id_seq\); restore into a new or empty database, or pass --overwrite/,
    );
    const unknown = cli("restore", "--stack", STACK, "--service", "orders", "--backup", "20200101T000000Z-0000", "--target", adminUrl("x"));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `db-platform backup: service orders has no backup 20200101T000000Z-0000 (latest: ${first[1].manifest?.id})\n`,
    );
    const over = cli("restore", "--stack", STACK, "--service", "orders", "--target", adminUrl("restored_orders"), "--overwrite");
    expect(over.code).toBe(0);
    const c = new Client({
      host: "127.0.0.1",
      port: dev.server.opts.port,
      user: "platform_admin",
      password: "audit-admin-password",
      database: "restored_orders",
    });
    await c.connect();
    try {
      expect((await c.query("SELECT count(*)::int AS n FROM orders.orders")).rows[0].n).toBe(250);
    } finally {
      await c.end();
    }
  });
});

/** The admin login over TCP: it may create databases (CREATEDB), like a restore operator. */
function adminUrl(database: string): string {
  return `postgresql://platform_admin:audit-admin-password@127.0.0.1:${dev.server.opts.port}/${database}`;
}

describe("restore into the service's own database", () => {
  it("restores as the owner role into the database pulumi up created: schema, grants and default privileges kept", async () => {
    // A freshly provisioned service database: the platform's schema, no tables yet.
    await dev.sql("orders_db", "DROP TABLE orders.orders");
    const schemaOid = async () => {
      const c = await dev.server.superuserClient("orders_db");
      try {
        return (await c.query<{ oid: number }>("SELECT oid FROM pg_namespace WHERE nspname = 'orders'")).rows[0].oid;
      } finally {
        await c.end();
      }
    };
    const oid = await schemaOid();
    const r = cli("restore", "--stack", STACK, "--service", "orders", "--latest", "--target", adminUrl("orders_db"));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^orders: restored backup \S+ into orders_db as orders_owner: 1 table\(s\), 250 row\(s\)/);
    const c = await dev.server.superuserClient("orders_db");
    try {
      const { rows } = await c.query(
        `SELECT pg_get_userbyid(relowner) AS owner,
                has_table_privilege('orders_app', 'orders.orders', 'INSERT') AS app_writes,
                has_table_privilege('orders_readonly', 'orders.orders', 'SELECT') AS readonly_reads,
                has_table_privilege('orders_readonly', 'orders.orders', 'INSERT') AS readonly_writes,
                has_table_privilege('inventory_app', 'orders.orders', 'SELECT') AS other_service_reads,
                pg_has_role('platform_admin', 'orders_owner', 'SET') AS admin_still_acts_as_owner
         FROM pg_class WHERE oid = 'orders.orders'::regclass`,
      );
      expect(rows[0]).toEqual({
        owner: "orders_owner",
        app_writes: true,
        readonly_reads: true,
        readonly_writes: false,
        other_service_reads: false,
        // The platform's lasting membership (docs/isolation.md) survives the restore.
        admin_still_acts_as_owner: true,
      });
    } finally {
      await c.end();
    }
    const over = cli("restore", "--stack", STACK, "--service", "orders", "--latest", "--target", adminUrl("orders_db"), "--overwrite");
    expect(over.stderr).toBe("");
    expect(over.code).toBe(0);
    // The objects were replaced; the schema the platform created (with its grants) is the same one.
    expect(await schemaOid()).toBe(oid);
  });
});

describe("a stack that is not applied", () => {
  it("fails the service with a clear message naming the database and login, and a hint", async () => {
    await dev.sql("postgres", "ALTER DATABASE sv_sdk_db RENAME TO sv_sdk_db_moved");
    try {
      const r = cli("run", "--stack", STACK, "--service", "sv-sdk");
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^db-platform backup: cannot connect to \S+\/run:\d+\/sv_sdk_db as postgres \(SET ROLE sv_sdk_readonly\): database "sv_sdk_db" does not exist \(is the stack applied to this server\? pulumi up\)$/m,
      );
    } finally {
      await dev.sql("postgres", "ALTER DATABASE sv_sdk_db_moved RENAME TO sv_sdk_db");
    }
  });
});

describe("backup run --server", () => {
  it("runs only that server's services (what each scheduled ECS task runs); an unknown server is refused", () => {
    const r = cli("run", "--stack", STACK, "--server", "local", "--service", "orders", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as RunOutcome[]).map((o) => [o.service, o.ok])).toEqual([["orders", true]]);
    const bad = cli("run", "--stack", STACK, "--server", "main");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("db-platform backup: --server main: no such server (local)\n");
  });
});

describe("the backup runner's container entrypoint (bin/backup-task.js)", () => {
  it("backs up its server's services and prints what `backup run --server --json` prints", () => {
    const task = runBackupTask({ DB_PLATFORM_STACK: STACK, DB_PLATFORM_SERVER: "local" });
    expect(task.stderr).toBe("");
    expect(task.code).toBe(0);
    const fromTask = JSON.parse(task.stdout) as RunOutcome[];
    const fromCli = JSON.parse(cli("run", "--stack", STACK, "--server", "local", "--json").stdout) as RunOutcome[];
    // Same services, same shape; only the backup ids, times and sizes differ between two runs.
    const shape = (o: RunOutcome) => ({
      service: o.service,
      ok: o.ok,
      keys: Object.keys(o).sort(),
      manifest: Object.keys(o.manifest ?? {}).sort(),
    });
    expect(fromTask.map(shape)).toEqual(fromCli.map(shape));
    expect(fromTask.map((o) => o.service)).toEqual(SERVICES);
    expect(fromTask.map((o) => o.manifest?.dumpedAs)).toEqual(SERVICES.map((s) => `${s.replace(/-/g, "_")}_readonly`));
  });

  it("refuses to run without its stack and server, or for a server the stack lacks (exit 2)", () => {
    const none = runBackupTask({ DB_PLATFORM_STACK: "", DB_PLATFORM_SERVER: "" });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      "db-platform backup task: DB_PLATFORM_STACK and DB_PLATFORM_SERVER not set (the task definition sets them: stack name, server name)\n",
    );
    const bad = runBackupTask({ DB_PLATFORM_STACK: STACK, DB_PLATFORM_SERVER: "main" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("db-platform backup: --server main: no such server (local)\n");
    const noStack = runBackupTask({ DB_PLATFORM_STACK: "nosuchstack", DB_PLATFORM_SERVER: "local" });
    expect(noStack.code).toBe(2);
    expect(noStack.stdout).toBe("");
  });
});
