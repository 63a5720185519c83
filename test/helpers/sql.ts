/** SQL for engine and e2e tests: behind the platform's back as a server's superuser, and as a service's login. */
import { Client } from "pg";
import type { LocalPostgres } from "../../operations/local/postgres";

/** Statements as the local server's bootstrap superuser; several statements answer with the last one's rows. */
export async function superuserSql(server: LocalPostgres, database: string, text: string): Promise<Array<Record<string, unknown>>> {
  const c = await server.superuserClient(database);
  try {
    const r = (await c.query(text)) as unknown as
      { rows: Array<Record<string, unknown>> } | Array<{ rows: Array<Record<string, unknown>> }>;
    return Array.isArray(r) ? (r.at(-1)?.rows ?? []) : r.rows;
  } finally {
    await c.end();
  }
}

/** Statements as a login (its URL) in a database: "ok", or the SQLSTATE the connection or the statement failed with. */
export async function attempt(url: string, database: string, sql?: string): Promise<string> {
  const target = new URL(url);
  target.pathname = `/${database}`;
  const c = new Client({ connectionString: target.toString() });
  try {
    await c.connect();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  try {
    if (sql) await c.query(sql);
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  } finally {
    await c.end();
  }
}

/** The data tests move: piper's users (an index, a view, a sequence) and notes' notes, written as each service's owner writes them. */
export async function fillPiper(server: LocalPostgres, database: string, rows: number): Promise<void> {
  await superuserSql(
    server,
    database,
    `SET ROLE piper_owner;
     CREATE TABLE piper.users (id serial PRIMARY KEY, name text NOT NULL, preferences jsonb);
     CREATE INDEX users_name ON piper.users (name);
     INSERT INTO piper.users (name, preferences) SELECT 'user' || i, jsonb_build_object('n', i) FROM generate_series(1, ${rows}) i;
     CREATE VIEW piper.recent AS SELECT id, name FROM piper.users WHERE id > ${rows - 10}`,
  );
}

export async function fillNotes(server: LocalPostgres, database: string): Promise<void> {
  await superuserSql(server, database, "SET ROLE notes_owner; CREATE TABLE notes.notes (id int); INSERT INTO notes.notes VALUES (1), (2)");
}
