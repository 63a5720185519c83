/**
 * The client suite: the migration tools and ORMs service teams run against the URLs the platform
 * hands them — Alembic with SQLAlchemy (psycopg), Django's migrate and ORM, Drizzle ORM on
 * postgres.js, node-pg-migrate and Knex — on a dev-shaped stack applied by the real engine and
 * provider plugins as a non-superuser admin, on PostgreSQL 15, 16, 17 and 18, for each isolation
 * shape: a database of its own (inventory), a schema in a shared database (payments, with
 * createSchemas; profile, without), several schemas with scoped roles (sv-sdk). Each tool
 * migrates as the migrator, its objects are used by the app login, read by the read-only login
 * on the streaming standby once replayed (and never written), a second migrate changes nothing,
 * and no login of another service reaches any of it. Then what a migrator must not do to another
 * service's schemas, and what becomes of a schema a service creates itself (docs/service-teams.md).
 * Run by `npm run test:e2e`; skipped, saying why, where the engine or the plugins are missing.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSpec } from "../../components/spec";
import { schemaHash } from "../../operations/backup/snapshot";
import { upStack } from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import {
  alembicUpgrade,
  djangoMigrate,
  drizzleApp,
  drizzleMigrate,
  drizzleRead,
  knexMigrate,
  knexOn,
  pgMigrateUp,
  pythonClient,
} from "../helpers/clients";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { attempt, superuserSql } from "../helpers/sql";

const DENIED = "42501";
/** What a standby answers to any write: cannot execute … in a read-only transaction. */
const READ_ONLY = "25006";

interface Shape {
  readonly shape: string;
  readonly service: string;
  readonly database: string;
  readonly schemas: readonly string[];
}
const SHAPES: readonly Shape[] = [
  { shape: "own database", service: "inventory", database: "inventory_db", schemas: ["inventory"] },
  { shape: "schema in a shared database", service: "payments", database: "platform", schemas: ["payments"] },
  { shape: "several schemas, scoped roles", service: "sv-sdk", database: "sv_sdk_db", schemas: ["auth", "email", "audit", "permissions"] },
];
/** The second tenant of `platform`, without createSchemas: Django beside payments', and Drizzle's refusal. */
const PROFILE: Shape = {
  shape: "schema in a shared database, without createSchemas",
  service: "profile",
  database: "platform",
  schemas: ["profile"],
};
const LOGINS: Record<string, string[]> = {
  inventory: ["app", "readonly", "migrator"],
  orders: ["app", "readonly", "migrator"],
  payments: ["app", "readonly", "migrator"],
  profile: ["app", "readonly", "migrator"],
  "sv-sdk": ["app", "readonly", "migrator", "auditor"],
};

const VERSIONS = ["15", "16", "17", "18"];
/** Services whose app and read-only logins go through PgBouncer (transaction mode): a shared database and several schemas. */
const POOLED = ["payments", "sv-sdk"];

if (!ENGINE.ready) {
  describe.skip("the client suite on PostgreSQL 15-18", () => {
    it(SKIPPED_BECAUSE, () => undefined);
  });
}

describe.runIf(ENGINE.ready).each(VERSIONS)("service teams' tools on PostgreSQL %s", (version) => {
  let stack: AppliedStack;
  const matrix: string[] = [];
  let started = 0;

  /** A login's URL: the app, the migrator, the read-only login on the reader, and on the primary. */
  const urls = (service: string) => {
    const reader = stack.url(service, "readonly");
    const primary = new URL(reader);
    primary.port = String(stack.server.opts.port);
    const app = stack.url(service, "app");
    // Through PgBouncer in transaction mode: the clients are configured for it (docs/pooling.md).
    const pooled = app !== stack.directUrl(service, "app");
    return { app, migrator: stack.url(service, "migrator"), reader, readonlyPrimary: primary.toString(), pooled };
  };
  const hashOf = async (s: Shape) => {
    const c = await stack.server.superuserClient(s.database);
    try {
      return await schemaHash(c, s.schemas);
    } finally {
      await c.end();
    }
  };
  /** Where a table is, as the superuser sees it (the other tenant's schemas of a shared database aside). */
  const schemasOf = async (s: Shape, table: string) =>
    (
      await superuserSql(
        stack.server,
        s.database,
        `SELECT table_schema AS s FROM information_schema.tables t JOIN pg_namespace n ON n.nspname = t.table_schema
          WHERE table_name = '${table}' AND NOT (pg_get_userbyid(n.nspowner) LIKE '%\\_owner' AND pg_get_userbyid(n.nspowner) <> '${s.service.replaceAll("-", "_")}_owner')
          ORDER BY 1`,
      )
    ).map((r) => r.s);

  /** Until the standby has replayed everything the primary has written so far. */
  async function replayed(s: Shape) {
    const { app, reader } = urls(s.service);
    const lsn = await one(app, s.database, "SELECT pg_current_wal_lsn()::text AS v");
    for (let i = 0; i < 300; i++) {
      if ((await one(reader, s.database, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS v`)) === true) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the standby did not replay ${lsn} within 30 s`);
  }

  /** Migrate twice (the second a no-op, the schemas' hash unchanged), then use and read. */
  async function migrateTwice(s: Shape, tool: string, migrate: () => Promise<void>, noop: () => Promise<void>) {
    await migrate();
    const hash = await hashOf(s);
    await noop();
    expect(await hashOf(s), `${tool}: a second migrate changes nothing`).toBe(hash);
  }

  beforeAll(async () => {
    started = Date.now();
    stack = await startAppliedDevStack(`clients-pg${version}`, {
      version,
      replica: true,
      s3: true,
      services: (services) => (services.payments.createSchemas = true),
      // The app and read-only logins of these through the PgBouncer beside each instance, the others direct.
      pooler: POOLED,
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.cleanup();
    console.log(`PostgreSQL ${version}: ${((Date.now() - started) / 1000).toFixed(0)} s\n  ${matrix.join("\n  ")}`);
  }, 300_000);

  it("hands the pooled services' app and reader URLs through the poolers, the others direct", () => {
    for (const s of [...SHAPES, PROFILE]) {
      const u = urls(s.service);
      expect(u.pooled, s.service).toBe(POOLED.includes(s.service));
      expect(stack.outputs.services.value[s.service].routing.app).toBe(u.pooled ? "pooler → primary" : "primary");
      expect(new URL(u.migrator).port).toBe(String(stack.server.opts.port));
    }
  });

  it.each(SHAPES)("Alembic + SQLAlchemy (psycopg), $shape ($service)", async (s) => {
    const u = urls(s.service);
    const upgrade = async () => {
      const r = alembicUpgrade(u.migrator, s.schemas[0]);
      expect(r.code, r.stderr).toBe(0);
    };
    await migrateTwice(s, "alembic", upgrade, upgrade);
    expect(await schemasOf(s, "alembic_version")).toEqual([s.schemas[0]]);
    const app = pythonClient("sqlalchemy-app", u.app, u.pooled);
    expect(app).toMatchObject({ total: 12.5, view: 12.5, touched: true, matview_rows: 0, schema: s.schemas[0] });
    await replayed(s);
    expect(pythonClient("sqlalchemy-read", u.reader, u.pooled)).toEqual({ orders: app.orders, totals: app.orders, write: READ_ONLY });
    expect(pythonClient("sqlalchemy-read", u.readonlyPrimary)).toMatchObject({ write: DENIED });
    matrix.push(`alembic+sqlalchemy ${s.service}${u.pooled ? " (app and reader through PgBouncer)" : ""}: ok`);
  });

  it.each([...SHAPES, PROFILE])("Django migrate and ORM, $shape ($service)", async (s) => {
    const u = urls(s.service);
    await migrateTwice(
      s,
      "django",
      async () => {
        const r = djangoMigrate(u.migrator);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("Applying auth.0001_initial... OK");
      },
      async () => {
        const r = djangoMigrate(u.migrator);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("No migrations to apply.");
      },
    );
    expect(await schemasOf(s, "django_migrations")).toEqual([s.schemas[0]]);
    const app = pythonClient("django-app", u.app, u.pooled);
    expect(app).toMatchObject({ notes: 1, schema: s.schemas[0] });
    await replayed(s);
    expect(pythonClient("django-read", u.reader, u.pooled)).toEqual({ users: app.users, notes: app.users, write: READ_ONLY });
    expect(pythonClient("django-read", u.readonlyPrimary)).toMatchObject({ write: DENIED });
    matrix.push(`django ${s.service}${u.pooled ? " (app and reader through PgBouncer)" : ""}: ok`);
  });

  it.each(SHAPES)("Drizzle ORM on postgres.js: migrate() per schema, a transaction across them, $shape ($service)", async (s) => {
    const u = urls(s.service);
    for (const schema of s.schemas) {
      await migrateTwice(
        s,
        "drizzle",
        async () => expect(await drizzleMigrate(u.migrator, schema, schema)).toBeUndefined(),
        async () => expect(await drizzleMigrate(u.migrator, schema, schema)).toBeUndefined(),
      );
    }
    for (const schema of s.schemas) {
      const [{ n }] = await superuserSql(stack.server, s.database, `SELECT count(*)::int AS n FROM ${schema}.__drizzle_migrations`);
      expect(n, `${schema}: two migrations recorded once`).toBe(2);
    }
    const seen = Object.fromEntries(s.schemas.map((schema) => [schema, 1]));
    expect(await drizzleApp(u.app, s.schemas, u.pooled)).toEqual(seen);
    await replayed(s);
    expect(await drizzleRead(u.reader, s.schemas, u.pooled)).toEqual({ seen, write: READ_ONLY });
    expect((await drizzleRead(u.readonlyPrimary, s.schemas)).write).toBe(DENIED);
    matrix.push(`drizzle ${s.service}${u.pooled ? " (app and reader through PgBouncer)" : ""}: ok`);
  });

  it("Drizzle cannot migrate a schema-isolated service without createSchemas: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database", async () => {
    const error = await drizzleMigrate(urls("profile").migrator, "profile", "profile");
    expect(error).toBe("permission denied for database platform");
    expect(await schemasOf(PROFILE, "dz_accounts")).toEqual([]);
    matrix.push("drizzle profile (no createSchemas): refused, as documented");
  });

  it.each(SHAPES)("node-pg-migrate, $shape ($service)", async (s) => {
    const u = urls(s.service);
    await migrateTwice(
      s,
      "node-pg-migrate",
      async () => {
        const r = pgMigrateUp(u.migrator, s.schemas[0]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("MIGRATION 1764662400000_tickets (UP)");
      },
      async () => {
        const r = pgMigrateUp(u.migrator, s.schemas[0]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain("No migrations to run!");
      },
    );
    expect(await schemasOf(s, "pgmigrations")).toEqual([s.schemas[0]]);
    const schema = s.schemas[0];
    await one(u.app, s.database, `INSERT INTO ${schema}.pgm_queues (name) VALUES ('support')`);
    await one(u.app, s.database, `INSERT INTO ${schema}.pgm_tickets (queue_id) SELECT id FROM ${schema}.pgm_queues`);
    expect(await one(u.app, s.database, `SELECT ${schema}.pgm_open_tickets(id) AS v FROM ${schema}.pgm_queues`)).toBe("1");
    await replayed(s);
    expect(await one(u.reader, s.database, `SELECT count(*)::int AS v FROM ${schema}.pgm_tickets`)).toBe(1);
    expect(await attempt(u.reader, s.database, `DELETE FROM ${schema}.pgm_tickets`)).toBe(READ_ONLY);
    expect(await attempt(u.readonlyPrimary, s.database, `DELETE FROM ${schema}.pgm_tickets`)).toBe(DENIED);
    matrix.push(`node-pg-migrate ${s.service}: ok`);
  });

  it.each(SHAPES)("Knex migrations and query builder, $shape ($service)", async (s) => {
    const u = urls(s.service);
    const schema = s.schemas[0];
    await migrateTwice(
      s,
      "knex",
      async () => expect(await knexMigrate(u.migrator, schema)).toEqual(["20251202000000_catalog.cjs"]),
      async () => expect(await knexMigrate(u.migrator, schema)).toEqual([]),
    );
    expect(await schemasOf(s, "knex_migrations")).toEqual([schema]);
    const app = knexOn(u.app, schema);
    try {
      const [product] = await app("kx_products")
        .insert({ sku: `sku-${version}` })
        .returning("id");
      await app("kx_prices").insert([
        { product_id: product.id, amount: 3, valid_from: "2026-01-01" },
        { product_id: product.id, amount: 4, valid_from: "2026-06-01" },
      ]);
      expect(await app("kx_current_prices").select("amount")).toEqual([{ amount: "4.00" }]);
    } finally {
      await app.destroy();
    }
    await replayed(s);
    const reader = knexOn(u.reader, schema);
    try {
      expect(await reader("kx_current_prices").count({ n: "*" })).toEqual([{ n: "1" }]);
      await expect(reader("kx_products").insert({ sku: "reader" })).rejects.toMatchObject({ code: READ_ONLY });
    } finally {
      await reader.destroy();
    }
    matrix.push(`knex ${s.service}: ok`);
  });

  it("lets no login of another service reach anything the tools made", async () => {
    let checked = 0;
    for (const s of [...SHAPES, PROFILE]) {
      const tables = await superuserSql(
        stack.server,
        s.database,
        `SELECT format('%I.%I', table_schema, table_name) AS t FROM information_schema.tables WHERE table_schema = ANY('{${s.schemas.join(",")}}') ORDER BY 1`,
      );
      expect(tables.length, `${s.service}: tables made by the tools`).toBeGreaterThan(5);
      for (const [other, logins] of Object.entries(LOGINS).filter(([o]) => o !== s.service)) {
        for (const login of logins) {
          // Directly the server refuses (42501); a pooled login's pooler refuses another database
          // before the server is asked (08P01), and in its own shared database the server refuses.
          const pooled = stack.url(other, login) !== stack.directUrl(other, login);
          const ownDatabase = [...SHAPES, PROFILE].find((x) => x.service === other)?.database ?? (other === "orders" ? "orders_db" : "");
          for (const { t } of tables) {
            const who = `${other}_${login} -> ${String(t)}`;
            const sql = `SELECT 1 FROM ${String(t)}`;
            expect(`${who}: ${await attempt(stack.directUrl(other, login), s.database, sql)}`).toBe(`${who}: ${DENIED}`);
            checked++;
            if (!pooled) continue;
            const refused = ownDatabase === s.database ? DENIED : "08P01";
            expect(`${who} (pooled): ${await attempt(stack.url(other, login), s.database, sql)}`).toBe(`${who} (pooled): ${refused}`);
            checked++;
          }
        }
      }
    }
    matrix.push(`no login of another service reaches the tools' objects: ${checked} attempts denied`);
  });

  it("leaves an audit without findings: every tool's objects are where the stack says", () => {
    const r = runCli(["audit", "--stack", stack.stack, "--format", "json", "--no-backups"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { findings: Array<{ rule: string; object: string }> };
    expect(report.findings.map((f) => `${f.rule} ${f.object}`)).toEqual([]);
  });

  it("refuses every way into another service's schema, for a migrator that may create schemas", async () => {
    const payments = urls("payments").migrator;
    const cases: Array<[string, string, string, string]> = [
      [payments, "platform", "CREATE SCHEMA profile", "42P06"],
      [payments, "platform", "CREATE SCHEMA IF NOT EXISTS profile; CREATE TABLE profile.mine (id int)", DENIED],
      [payments, "platform", "ALTER SCHEMA profile OWNER TO payments_owner", DENIED],
      [payments, "platform", "ALTER SCHEMA profile RENAME TO profile_old", DENIED],
      [payments, "platform", "ALTER SCHEMA payments RENAME TO profile", "42P06"],
      [payments, "platform", "DROP SCHEMA profile CASCADE", DENIED],
      [payments, "platform", "CREATE TABLE profile.mine (id int)", DENIED],
      [payments, "sv_sdk_db", "CREATE SCHEMA mine", DENIED],
      [payments, "inventory_db", "CREATE SCHEMA mine", DENIED],
      [urls("profile").migrator, "platform", "CREATE SCHEMA mine", DENIED],
      [urls("inventory").migrator, "platform", "CREATE SCHEMA mine", DENIED],
    ];
    for (const [url, database, sql, code] of cases) {
      expect(`${new URL(url).username} in ${database}: ${sql} -> ${await attempt(url, database, sql)}`).toBe(
        `${new URL(url).username} in ${database}: ${sql} -> ${code}`,
      );
    }
    const left = await superuserSql(
      stack.server,
      "platform",
      "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname IN ('profile', 'mine')",
    );
    expect(left).toEqual([{ nspname: "profile", owner: "profile_owner" }]);
    matrix.push(`takeover refusals: ${cases.length} statements refused`);
  });

  it("refuses, before anything is applied, to declare a schema that another service created first", async () => {
    await one(urls("payments").migrator, "platform", "CREATE SCHEMA ledger; CREATE TABLE ledger.entries (id int); SELECT 1 AS v");
    const audit = JSON.parse(runCli(["audit", "--stack", stack.stack, "--format", "json", "--no-backups"]).stdout) as {
      findings: Array<{ rule: string; severity: string; object: string; services: string[] }>;
    };
    expect(audit.findings.map((f) => [f.rule, f.severity, f.object, f.services])).toEqual([
      ["undeclared-schema", "high", "platform/ledger", ["payments"]],
    ]);
    const doc = parse(fs.readFileSync(stack.file, "utf8"));
    const before = structuredClone(doc);
    doc.config["db-platform:services"].ledger = { server: "local", isolation: "schema", database: "platform" };
    fs.writeFileSync(stack.file, stringify(doc));
    try {
      await expect(upStack({ ...stack.ctx, spec: loadSpec(readConfigFile(stack.file)) })).rejects.toThrow(
        "services.ledger.schemas: schema ledger already exists in database platform, with objects owned by payments_owner",
      );
      const roles = await superuserSql(stack.server, "postgres", "SELECT rolname FROM pg_roles WHERE rolname LIKE 'ledger%'");
      expect(roles, "nothing of ledger was applied").toEqual([]);
    } finally {
      fs.writeFileSync(stack.file, stringify(before));
      await one(urls("payments").migrator, "platform", "DROP SCHEMA ledger CASCADE; SELECT 1 AS v");
    }
  }, 300_000);

  it("treats a schema a service creates itself as its data: reported, never left behind by a backup or an export, adopted once declared", async () => {
    const orders = urls("orders");
    const ORDERS: Shape = { shape: "own database", service: "orders", database: "orders_db", schemas: ["orders"] };
    // Drizzle's default migrationsSchema: a schema "drizzle" in the service's own database.
    expect(await drizzleMigrate(orders.migrator, "orders", undefined)).toBeUndefined();
    const audit = () =>
      (
        JSON.parse(runCli(["audit", "--stack", stack.stack, "--format", "json", "--no-backups"]).stdout) as {
          findings: Array<{ rule: string; object: string; fix: string }>;
        }
      ).findings;
    expect(audit().map((f) => [f.rule, f.object, f.fix.split(")")[0]])).toEqual([
      ["undeclared-schema", "orders_db/drizzle", "declare it (services.orders.schemas: [..., drizzle]"],
    ]);
    const backup = runCli(["backup", "run", "--stack", stack.stack, "--service", "orders"]);
    expect(backup.code).toBe(1);
    expect(backup.stderr + backup.stdout).toContain(
      "backup of orders refused, nothing written: schema drizzle in database orders_db belongs to the service but is not declared",
    );
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "clients-export-"));
    const exported = runCli(["export", "--stack", stack.stack, "--service", "orders", "--to", out]);
    expect(exported.code).toBe(1);
    expect(fs.readdirSync(out)).toEqual([]);
    fs.rmSync(out, { recursive: true, force: true });

    const doc = parse(fs.readFileSync(stack.file, "utf8"));
    doc.config["db-platform:services"].orders.schemas = ["orders", "drizzle"];
    fs.writeFileSync(stack.file, stringify(doc));
    const { changes } = await upStack({ ...stack.ctx, spec: loadSpec(readConfigFile(stack.file)) });
    expect(changes.create).toBeGreaterThan(5);
    expect(audit()).toEqual([]);
    await replayed(ORDERS);
    expect(await one(orders.reader, "orders_db", "SELECT count(*)::int AS v FROM drizzle.__drizzle_migrations")).toBe(2);
    const manifest = runCli(["backup", "run", "--stack", stack.stack, "--service", "orders", "--json"]);
    expect(manifest.code, manifest.stderr).toBe(0);
    expect(manifest.stdout).toContain('"drizzle"');
    matrix.push("a schema of its own: audited, refused by backup and export, adopted once declared, then backed up");
  }, 300_000);
});

/** One statement's single value (`v`, or the first column), as a login. */
async function one(url: string, database: string, sql: string): Promise<unknown> {
  const target = new URL(url);
  target.pathname = `/${database}`;
  const c = new Client({ connectionString: target.toString() });
  await c.connect();
  try {
    const r = (await c.query(sql)) as unknown as { rows: Array<Record<string, unknown>> } | Array<{ rows: Array<Record<string, unknown>> }>;
    const rows = Array.isArray(r) ? (r.at(-1)?.rows ?? []) : r.rows;
    const row = rows[0] ?? {};
    return "v" in row ? row.v : Object.values(row)[0];
  } finally {
    await c.end();
  }
}
