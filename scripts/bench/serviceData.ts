/**
 * A benchmark's service data: database `svc` owned by a login, schema `svc` with one table of
 * ~1 KiB rows of distinct hex stored uncompressed, `gb` GiB of it (scripts/bench/upgrade.ts,
 * scripts/bench/pointInTime.ts).
 */
import type { LocalPostgres } from "../../operations/local/postgres";

/** Create the login, its database and table, and fill it; the number of rows. */
export async function fillService(server: LocalPostgres, gb: number, LOGIN: { user: string; password: string }): Promise<number> {
  const c = await server.superuserClient();
  await c.query(`CREATE ROLE ${LOGIN.user} LOGIN PASSWORD '${LOGIN.password}'`);
  await c.query(`CREATE DATABASE svc OWNER ${LOGIN.user}`);
  await c.end();
  const s = await server.superuserClient("svc");
  await s.query(
    `SET ROLE ${LOGIN.user}; CREATE SCHEMA svc; CREATE TABLE svc.items (id bigint PRIMARY KEY, body text NOT NULL); ALTER TABLE svc.items ALTER COLUMN body SET STORAGE PLAIN`,
  );
  // ~1 KiB a row of distinct hex, stored as it is (STORAGE PLAIN: no compression): gb × 2^20 rows.
  const rows = Math.round(gb * 1024 * 1024);
  for (let from = 1; from <= rows; from += 100_000) {
    await s.query(
      `INSERT INTO svc.items SELECT i, (SELECT string_agg(md5(i::text || '-' || g), '') FROM generate_series(1, 31) g) FROM generate_series($1::bigint, $2::bigint) i`,
      [from, Math.min(rows, from + 99_999)],
    );
  }
  const size = Number((await s.query("SELECT pg_database_size('svc') AS b")).rows[0].b);
  await s.end();
  console.error(`svc: ${(size / 2 ** 30).toFixed(2)} GiB on disk`);
  return rows;
}
