/**
 * `backup list|restore|drill --region <dr>` on the prod stack (backups.storage s3, replicaRegion
 * eu-west-1): the backups read from the bucket's replica alone. The DR region's S3 endpoint is a
 * real S3-compatible server on 127.0.0.1 (MinIO, given to the AWS SDK as AWS_ENDPOINT_URL_S3)
 * holding only the replica bucket, `<bucket>-eu-west-1`, with the keys S3 replication writes
 * there; the source bucket does not exist on it, so any read of the source would fail. The
 * restore goes into a real PostgreSQL 16.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../../operations/backup/runner";
import { BackupStorage, type BackupManifest } from "../../operations/backup/storage";
import { freePort } from "../../operations/local/ports";
import { LocalPostgres, postgresBinDir } from "../../operations/local/postgres";
import { LocalS3 } from "../../operations/local/s3";
import { runCli } from "../helpers/cli";
import { ROOT } from "../helpers/synth";

const SOURCE = "db-platform-prod-backups-123456789012";
const REPLICA = `${SOURCE}-eu-west-1`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-replica-region-"));
fs.chmodSync(root, 0o755);
let server: LocalPostgres;
let s3: LocalS3;
let manifest: BackupManifest;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  s3 = new LocalS3({ dir: path.join(root, "s3"), port: await freePort(), projectDir: ROOT });
  await s3.start([REPLICA]);
  server = new LocalPostgres({
    name: "pg",
    version: "16",
    host: "127.0.0.1",
    port: await freePort(),
    adminUser: "platform_admin",
    adminPassword: "replica-admin-password",
    root,
    projectDir: ROOT,
  });
  await server.start();
  const c = await server.superuserClient();
  try {
    await c.query("CREATE ROLE orders_owner NOLOGIN");
    await c.query("CREATE DATABASE orders_db OWNER orders_owner");
    // As the platform's admin is on a server it applied: a member of the service's owner role.
    await c.query("GRANT orders_owner TO platform_admin");
  } finally {
    await c.end();
  }
  const db = await server.superuserClient("orders_db");
  try {
    await db.query("SET ROLE orders_owner; CREATE SCHEMA orders; CREATE TABLE orders.orders (id serial PRIMARY KEY, item int)");
    await db.query("INSERT INTO orders.orders (item) SELECT g FROM generate_series(1, 300) g");
  } finally {
    await db.end();
  }
  // What S3 replication has put into the replica: prod's keys, prod/orders/<id>.dump and .manifest.json.
  const replica = new BackupStorage({ bucket: REPLICA, environment: "prod", client: s3.clientConfig() });
  try {
    manifest = await runBackup(
      replica,
      {
        service: "orders",
        server: "main",
        database: "orders_db",
        schemas: ["orders"],
        serverMajor: "16",
        connection: { host: server.socketDir, port: server.opts.port, user: "postgres" },
        dumpedAs: "postgres",
      },
      { stack: "prod", environment: "prod", clientTools: (major) => postgresBinDir(major, ROOT) },
    );
  } finally {
    replica.s3.destroy();
  }
  const { accessKeyId, secretAccessKey } = s3.credentials();
  env = {
    DB_PLATFORM_BACKUP_BUCKET: SOURCE,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: "eu-central-1",
  };
}, 180_000);

afterAll(async () => {
  await server?.destroy();
  await s3?.destroy();
  fs.rmSync(root, { recursive: true, force: true });
}, 60_000);

const admin = (database: string) => `postgresql://platform_admin:replica-admin-password@127.0.0.1:${server.opts.port}/${database}`;

describe("the DR region's restore path: the backups read from the replica alone", () => {
  it("lists the replica's backups", () => {
    const r = runCli(["backup", "list", "--stack", "prod", "--service", "orders", "--region", "eu-west-1", "--json"], env);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as BackupManifest[]).map((m) => [m.id, m.service, m.dump.key])).toEqual([
      [manifest.id, "orders", `prod/orders/${manifest.id}.dump`],
    ]);
  });

  it("restores from the replica into a new database, checked against its manifest", () => {
    const target = admin("orders_from_dr");
    const r = runCli(
      ["backup", "restore", "--stack", "prod", "--service", "orders", "--latest", "--region", "eu-west-1", "--target", target],
      env,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`orders: restored backup ${manifest.id} into orders_from_dr as orders_owner: 1 table(s), 300 row(s)`);
  });

  it("drills from the replica", () => {
    const r = runCli(
      [
        "backup",
        "drill",
        "--stack",
        "prod",
        "--service",
        "orders",
        "--region",
        "eu-west-1",
        "--scratch-url",
        `main=${admin("postgres")}`,
        "--json",
      ],
      env,
    );
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ ok: boolean; rows: number }>)[0]).toMatchObject({ ok: true, rows: 300 });
  });

  it("reads nothing from the source region: without --region the source bucket is asked, and it is not there", () => {
    const r = runCli(["backup", "list", "--stack", "prod", "--service", "orders"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NoSuchBucket|does not exist/);
  });

  it.each([
    [["--stack", "prod", "--region", "us-east-1"], "--region us-east-1: stack prod replicates its backups to eu-west-1 only"],
    [
      ["--stack", "dev", "--region", "eu-west-1"],
      "--region eu-west-1: stack dev keeps its backups in its local S3 server, which has no replica",
    ],
  ])("refuses %j", (args, message) => {
    const r = runCli(["backup", "list", ...args], env);
    expect([r.code, r.stderr.trim()]).toEqual([2, `db-platform backup: ${message}`]);
  });
});
