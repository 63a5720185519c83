/**
 * The migration tools and ORMs that service teams run against their URLs, run for real: Alembic
 * with SQLAlchemy on psycopg and Django (in the virtual environment scripts/clients/venv.sh makes
 * once), Drizzle ORM on postgres.js, node-pg-migrate and Knex (npm dev dependencies). Each runs
 * the project in test/clients/ with a login's URL, exactly as a team's CI or application would.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { and, count, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import { integer, numeric, pgSchema, serial, text } from "drizzle-orm/pg-core";
import knex, { type Knex } from "knex";
import postgres from "postgres";
import { ROOT } from "./synth";

const CLIENTS = path.join(ROOT, "test", "clients");
let venvBin: string | undefined;

/** The Python clients' bin folder (made once, cached). */
export function pythonBin(): string {
  venvBin ??= execFileSync("bash", [path.join(ROOT, "scripts", "clients", "venv.sh"), "--quiet"], { encoding: "utf8" }).trim();
  return venvBin;
}

export interface ToolRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[], env: Record<string, string>): ToolRun {
  const r = spawnSync(command, args, { cwd: CLIENTS, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

function ok(what: string, r: ToolRun): ToolRun {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `alembic upgrade head` with the migrations URL; alembic_version in `versionSchema`. */
export function alembicUpgrade(url: string, versionSchema: string): ToolRun {
  return run(path.join(pythonBin(), "alembic"), ["-c", "alembic/alembic.ini", "upgrade", "head"], {
    DATABASE_URL: url,
    VERSION_TABLE_SCHEMA: versionSchema,
  });
}

/** `python -m django migrate` of contrib.auth and the notes app. */
export function djangoMigrate(url: string): ToolRun {
  return run(path.join(pythonBin(), "python"), ["-m", "django", "migrate", "--settings=clientsite.settings", "--no-input"], {
    DATABASE_URL: url,
    PYTHONPATH: path.join(CLIENTS, "django"),
  });
}

/** What the application or a reader does through SQLAlchemy or Django (test/clients/python/client.py); its JSON. */
export function pythonClient(command: string, url: string, pooled = false): Record<string, unknown> {
  const env = { DATABASE_URL: url, ...(pooled ? { DB_POOL_MODE: "transaction" } : {}) };
  const r = ok(`client.py ${command}`, run(path.join(pythonBin(), "python"), ["python/client.py", command], env));
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
}

/** node-pg-migrate up, its objects and its pgmigrations table in `schema`. */
export function pgMigrateUp(url: string, schema: string): ToolRun {
  const bin = path.join(ROOT, "node_modules", "node-pg-migrate", "bin", "node-pg-migrate.js");
  return run(process.execPath, [bin, "up", "-m", "pgmigrate", "--schema", schema, "--no-verbose"], { DATABASE_URL: url });
}

/** A Knex instance on a login's URL, unqualified names resolving to `schema`. */
export function knexOn(url: string, schema: string): Knex {
  return knex({ client: "pg", connection: url, searchPath: [schema], pool: { min: 0, max: 2 } });
}

/** Knex's migrate.latest, knex_migrations in `schema`; the migrations it ran (empty: nothing to do). */
export async function knexMigrate(url: string, schema: string): Promise<string[]> {
  const db = knexOn(url, schema);
  try {
    const [, ran] = (await db.migrate.latest({
      directory: path.join(CLIENTS, "knex"),
      schemaName: schema,
      loadExtensions: [".cjs"],
    })) as [number, string[]];
    return ran;
  } finally {
    await db.destroy();
  }
}

/** The Drizzle migrations folder for one schema (test/clients/drizzle/README.md). */
function drizzleFolder(schema: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `drizzle-${schema}-`));
  const source = path.join(CLIENTS, "drizzle");
  fs.mkdirSync(path.join(dir, "meta"));
  fs.copyFileSync(path.join(source, "meta", "_journal.json"), path.join(dir, "meta", "_journal.json"));
  for (const f of fs.readdirSync(source).filter((f) => f.endsWith(".sql"))) {
    fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(source, f), "utf8").replaceAll("__SCHEMA__", schema));
  }
  return dir;
}

/**
 * Drizzle's migrate() on postgres.js for one schema, its bookkeeping table in `migrationsSchema`
 * (Drizzle's default: a schema `drizzle`). Resolves to the error's message, or undefined.
 */
export async function drizzleMigrate(url: string, schema: string, migrationsSchema: string | undefined): Promise<string | undefined> {
  const client = postgres(url, { max: 1, onnotice: () => undefined });
  const folder = drizzleFolder(schema);
  try {
    await migrate(drizzle(client), { migrationsFolder: folder, ...(migrationsSchema ? { migrationsSchema } : {}) });
    return undefined;
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause;
    return cause?.message ?? (e as Error).message;
  } finally {
    await client.end();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * postgres.js through a transaction-mode PgBouncer: no named prepared statements (PgBouncer 1.18
 * does not carry them from one server connection to the next; docs/pooling.md).
 */
const transactionPooled = (pooled: boolean) => (pooled ? { prepare: false } : {});

/** The tables Drizzle's migrations make, as the application declares them with pgSchema(). */
export function drizzleTables(schema: string) {
  const s = pgSchema(schema);
  const kind = s.enum("dz_kind", ["credit", "debit"]);
  return {
    accounts: s.table("dz_accounts", { id: integer().primaryKey().generatedAlwaysAsIdentity(), name: text().notNull() }),
    entries: s.table("dz_entries", {
      id: serial().primaryKey(),
      accountId: integer("account_id").notNull(),
      kind: kind().notNull(),
      amount: numeric({ precision: 12, scale: 2 }).notNull(),
    }),
  };
}

/** The application on postgres.js: one transaction writing an account and an entry in each schema; the rows it then sees. */
export async function drizzleApp(url: string, schemas: readonly string[], pooled = false): Promise<Record<string, number>> {
  const client = postgres(url, { max: 1, onnotice: () => undefined, ...transactionPooled(pooled) });
  try {
    const db = drizzle(client);
    await db.transaction(async (tx) => {
      for (const schema of schemas) {
        const t = drizzleTables(schema);
        const [account] = await tx
          .insert(t.accounts)
          .values({ name: `${schema} account` })
          .returning({ id: t.accounts.id });
        await tx.insert(t.entries).values({ accountId: account.id, kind: "credit", amount: "10.50" });
      }
    });
    const seen: Record<string, number> = {};
    for (const schema of schemas) {
      const t = drizzleTables(schema);
      const [row] = await db
        .select({ n: count() })
        .from(t.entries)
        .innerJoin(t.accounts, eq(t.entries.accountId, t.accounts.id))
        .where(and(eq(t.entries.kind, "credit"), sql`${t.entries.amount} > 0`));
      seen[schema] = row.n;
    }
    return seen;
  } finally {
    await client.end();
  }
}

/** A reader on postgres.js: the entries it sees per schema, and the SQLSTATE of a write it must be refused. */
export async function drizzleRead(
  url: string,
  schemas: readonly string[],
  pooled = false,
): Promise<{ seen: Record<string, number>; write?: string }> {
  const client = postgres(url, { max: 1, onnotice: () => undefined, ...transactionPooled(pooled) });
  try {
    const db = drizzle(client);
    const seen: Record<string, number> = {};
    for (const schema of schemas) {
      const [row] = await db.select({ n: count() }).from(drizzleTables(schema).entries);
      seen[schema] = row.n;
    }
    const write = await db
      .insert(drizzleTables(schemas[0]).accounts)
      .values({ name: "reader" })
      .then(() => undefined)
      .catch((e: { cause?: { code?: string }; code?: string }) => e.cause?.code ?? e.code ?? String(e));
    return { seen, write };
  } finally {
    await client.end();
  }
}
