/**
 * The refresh after an RDS major upgrade (operations/upgrade/rds.ts refreshDatabases) on a real
 * PostgreSQL 16 as a non-superuser admin, as the RDS master user is: an extension older than the
 * build's default is updated and reported, one already current is left alone, and ANALYZE runs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { LocalPostgres } from "../../operations/local/postgres";
import { refreshDatabases } from "../../operations/upgrade/rds";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-refresh-"));
fs.chmodSync(root, 0o755);
let server: LocalPostgres;
let admin: string;

beforeAll(async () => {
  const port = await freePort();
  server = new LocalPostgres({
    name: "pg",
    version: "16",
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: "s3cret-admin",
    root,
    projectDir: ROOT,
  });
  await server.start();
  admin = `postgresql://platform_admin:s3cret-admin@127.0.0.1:${port}/postgres`;
  const c = new Client({ connectionString: admin });
  await c.connect();
  await c.query("CREATE DATABASE old_db");
  await c.query("CREATE DATABASE current_db");
  await c.end();
  for (const [db, sql] of [
    ["old_db", "CREATE EXTENSION pg_trgm VERSION '1.3'; CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 1000) g"],
    ["current_db", "CREATE EXTENSION pg_trgm"],
  ]) {
    const d = new Client({ connectionString: admin.replace(/\/postgres$/, `/${db}`) });
    await d.connect();
    await d.query(sql);
    await d.end();
  }
}, 120_000);

afterAll(async () => {
  await server?.destroy();
  fs.rmSync(root, { recursive: true, force: true });
}, 60_000);

it("updates the extensions the build ships newer, as the non-superuser admin, and analyzes", async () => {
  expect(await refreshDatabases(admin, ["old_db", "current_db"])).toEqual(["old_db.pg_trgm 1.3 → 1.6"]);
  const c = new Client({ connectionString: admin.replace(/\/postgres$/, "/old_db") });
  await c.connect();
  try {
    expect((await c.query("SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'")).rows[0].extversion).toBe("1.6");
    expect(
      (await c.query("SELECT last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 't'")).rows[0].analyzed,
    ).toBe(true);
  } finally {
    await c.end();
  }
  expect(await refreshDatabases(admin, ["old_db", "current_db"])).toEqual([]);
});
