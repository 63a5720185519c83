/**
 * The isolation promise, end to end, on PostgreSQL 15, 16, 17 and 18: a dev-shaped stack applied
 * by the real Pulumi engine with the real PostgreSQL and random provider plugins and the policy
 * pack, as an admin that is not a superuser (as on RDS), then probed with the services' own
 * logins. Every cell of the matrix is a statement that must succeed or fail with PostgreSQL's
 * "insufficient privilege" (42501). Then a second preview must change nothing, a grant reaching
 * another service must be refused by the engine's preview (also through a second provider at the
 * same address), and `destroy` must leave no database, schema or role behind. Every service has a
 * pool, so the same matrix runs again through the server's PgBouncer with the pooled URLs: no
 * login reaches another service's database through it, nor a wrong password, the admin or an
 * undeclared login (docs/pooling.md). Then every login is rotated twice (docs/rotation.md) under a
 * client load on each, with no failed connection or query; the credential two rotations old is
 * refused, the matrix passes again for the current and the previous credential of every login,
 * directly and through the pooler, and the audit finds nothing.
 * Run by `npm run test:e2e`; skipped, saying why, where the engine or the plugins are missing.
 */
import * as postgresql from "@pulumi/postgresql";
import { LocalWorkspace, type OutputMap } from "@pulumi/pulumi/automation";
import * as fs from "node:fs";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineEnv } from "../../operations/local/local";
import { destroyStack, policyPackArgs, previewStack, upStack } from "../../operations/stack/stackApply";
import { runProgram } from "../../components/program";
import { loadSpec } from "../../components/spec";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { configFromPulumi } from "../../components/spec/pulumiConfig";
import { type AppliedStack, FIXTURE_ADMIN_PASSWORD, startAppliedDevStack } from "../helpers/appliedDevStack";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { attempt } from "../helpers/sql";
import {
  type Check,
  connectChecks,
  DATABASES,
  DENIED,
  FUTURE_CHECKS,
  POOLED,
  PRIVILEGE_CHECKS,
  REFUSED_BY_POOLER,
  runMatrix,
  SERVICES,
} from "../helpers/isolationMatrix";
import { credentialUrls, type LoginUrls, startLoad } from "../helpers/rotationLoad";
import { rotateApply } from "../../operations/rotate/rotate";
import { runAudit } from "../../operations/audit/run";
import { ROOT } from "../helpers/synth";

describe.each(["15", "16", "17", "18"])("PostgreSQL %s, applied by the real engine as a non-superuser admin", (version) => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }
  let stack: AppliedStack;
  /** The stack's outputs after the rotations. */
  let rotated: OutputMap;
  const passed: string[] = [];

  /**
   * Each check through the login's direct URL, or its pooled one (where PgBouncer refuses what it
   * must not pass: 08P01); with `urls`, those of a credential after rotation.
   */
  async function verify(checks: readonly Check[], via: "direct" | "pooled" = "direct", urls?: LoginUrls, tag = ""): Promise<void> {
    const urlOf = (service: string, login: string, pooled: boolean) =>
      urls ? urls(service, login, pooled) : pooled ? stack.url(service, login) : stack.directUrl(service, login);
    const r = await runMatrix(
      checks,
      (c) => {
        const pooled = via === "pooled" && POOLED.has(c.login);
        return { url: urlOf(c.service, c.login, pooled), pooled };
      },
      tag,
    );
    passed.push(...r.passed);
    expect(r.got).toEqual(r.want);
  }

  beforeAll(async () => {
    stack = await startAppliedDevStack(`e2e-pg${version}`, { version, pooler: true, poolSize: 8 });
  }, 600_000);

  afterAll(async () => {
    await stack?.cleanup();
    console.log(`PostgreSQL ${version}: ${passed.length} isolation checks passed`);
  }, 300_000);

  it("runs the requested major, and its admin is not a superuser", async () => {
    const c = await stack.server.superuserClient();
    try {
      const r = await c.query(
        "SELECT current_setting('server_version_num')::int / 10000 AS major, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'platform_admin'",
      );
      expect(r.rows[0]).toEqual({ major: Number(version), rolsuper: false, rolcreaterole: true, rolcreatedb: true });
    } finally {
      await c.end();
    }
  });

  it("lets every service login connect to its own database and to no other", async () => {
    await verify(connectChecks());
  });

  it("keeps PUBLIC out: a login of no service reaches no service database, nor the public schemas", async () => {
    await stack.sql("postgres", `CREATE ROLE outsider LOGIN PASSWORD 'outsider-password'`);
    try {
      for (const database of DATABASES) {
        const outcome = await attempt(`postgresql://outsider:outsider-password@127.0.0.1:${stack.server.opts.port}/postgres`, database);
        expect(`${database}: ${outcome}`).toBe(`${database}: ${DENIED}`);
        passed.push(`outsider connect ${database}`);
      }
      const c = await stack.server.superuserClient();
      try {
        const acl = await c.query(
          `SELECT datname, has_database_privilege('public', datname, 'CONNECT') AS connect,
                  has_database_privilege('public', datname, 'TEMPORARY') AS temp
             FROM pg_database WHERE datname = ANY($1) ORDER BY datname`,
          [DATABASES],
        );
        expect(acl.rows).toEqual(DATABASES.map((datname) => ({ datname, connect: false, temp: false })));
      } finally {
        await c.end();
      }
      for (const database of DATABASES) {
        const c2 = await stack.server.superuserClient(database);
        try {
          const r = await c2.query(
            "SELECT has_schema_privilege('public', 'public', 'USAGE') AS usage, has_schema_privilege('public', 'public', 'CREATE') AS create",
          );
          expect(r.rows[0]).toEqual({ usage: false, create: false });
          passed.push(`PUBLIC public schema ${database}`);
        } finally {
          await c2.end();
        }
      }
    } finally {
      await stack.sql("postgres", "DROP ROLE outsider");
    }
  });

  it("gives each login exactly its privileges: read, write, create, temporary tables, sequences, functions, scoped roles, neighbours", async () => {
    await verify(PRIVILEGE_CHECKS);
  });

  it("applies the default privileges to objects the migrator creates later", async () => {
    await verify(FUTURE_CHECKS);
  });

  it("through the pooler: each pooled login reaches its own database only, with exactly its privileges", async () => {
    const pooledUrl = new URL(stack.url("inventory", "app"));
    expect(Number(pooledUrl.port)).not.toBe(stack.server.opts.port);
    expect(new URL(stack.url("inventory", "migrator")).port).toBe(String(stack.server.opts.port));
    // The migrator and scoped logins connect directly: their checks ran above.
    const pooledOnly = (checks: readonly Check[]) => checks.filter((c) => POOLED.has(c.login));
    await verify(pooledOnly(connectChecks()), "pooled");
    await verify(pooledOnly(PRIVILEGE_CHECKS), "pooled");
  });

  it("through the pooler: a wrong password, the admin, an undeclared login and its console are refused", async () => {
    const at = (user: string, password: string, database: string) => {
      const u = new URL(stack.url("inventory", "app"));
      u.username = user;
      u.password = password;
      return attempt(u.toString(), database, "SELECT 1");
    };
    expect(await at("inventory_app", "not-its-password", "inventory_db")).toBe(REFUSED_BY_POOLER);
    expect(await at("platform_admin", FIXTURE_ADMIN_PASSWORD, "inventory_db")).toBe(REFUSED_BY_POOLER);
    expect(await at("platform_admin", FIXTURE_ADMIN_PASSWORD, "postgres")).toBe(REFUSED_BY_POOLER);
    const migrator = new URL(stack.directUrl("inventory", "migrator"));
    expect(await at("inventory_migrator", decodeURIComponent(migrator.password), "inventory_db")).toBe(REFUSED_BY_POOLER);
    const app = new URL(stack.url("inventory", "app"));
    expect(await at("inventory_app", decodeURIComponent(app.password), "pgbouncer")).toBe(REFUSED_BY_POOLER);
  });

  it("creates the allow-listed extension as the non-superuser admin", async () => {
    const outcome = await attempt(stack.url("inventory", "app"), "inventory_db", "SELECT inventory.digest('x', 'sha256')");
    expect(outcome).toBe("ok");
  });

  it("rotates every login twice with no failed connection or query under load, and refuses a credential two rotations old", async () => {
    const ctx = { file: stack.file, stack: stack.stack, project: "db-platform", projectDir: ROOT, progress: () => undefined };
    const first = credentialUrls(stack.outputs, "current");
    let published = first;
    const targets = Object.entries(SERVICES).flatMap(([service, s]) =>
      s.logins.map((login) => ({
        service,
        login,
        pooled: POOLED.has(login),
        // 20 through the pooler; a direct login holds what its connection limit leaves beside the new connections and the verification.
        held: POOLED.has(login) ? 20 : login === "migrator" ? 2 : 15,
      })),
    );
    const load = await startLoad(targets, () => published);
    const timings: string[] = [];
    let report: Awaited<ReturnType<typeof load.stop>>;
    try {
      for (const generation of [1, 2]) {
        await new Promise((r) => setTimeout(r, 1000));
        const started = performance.now();
        const r = await rotateApply(ctx);
        timings.push(`generation ${generation}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
        expect(r.plan.logins.map((l) => l.generation)).toEqual(targets.map(() => generation));
        rotated = r.outputs;
        published = credentialUrls(r.outputs, "current");
      }
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      // Also when a rotation fails: the held sessions would keep every later drop of a database from succeeding.
      report = await load.stop();
    }
    console.log(
      `PostgreSQL ${version}: rotation under load of ${targets.length} logins: ${report.connections} new connections, ${report.queries} queries on held ones, ${report.failures.length} failed; slowest connection ${report.slowestMs} ms; ${timings.join(", ")}`,
    );
    expect(report.failures).toEqual([]);
    expect(report.connections).toBeGreaterThan(targets.length * 20);
    const doc = parse(fs.readFileSync(stack.file, "utf8"));
    expect(doc.config["db-platform:services"].inventory.credentials.app).toEqual({ generation: 2, rotatedAt: expect.any(String) });
    // The credential from before both rotations: its password is gone (directly 28P01; the pooler refuses it, 08P01).
    for (const t of targets) {
      const direct = await attempt(first(t.service, t.login, false), SERVICES[t.service].database, "SELECT 1");
      expect(`${t.service} ${t.login}: ${direct}`).toBe(`${t.service} ${t.login}: 28P01`);
      if (t.pooled)
        expect(await attempt(first(t.service, t.login, true), SERVICES[t.service].database, "SELECT 1")).toBe(REFUSED_BY_POOLER);
    }
  }, 600_000);

  it("after two rotations: both credentials of every login reach exactly what the login reaches, directly and through the pooler", async () => {
    // The migrator's CREATE TABLE ran before: a second one reaches the name check, past the privilege check (42P07).
    const again = (checks: readonly Check[]) => checks.map((c) => (c.what === "migrate" ? { ...c, expect: "ok|42P07" } : c));
    const pooledOnly = (checks: readonly Check[]) => checks.filter((c) => POOLED.has(c.login));
    for (const which of ["current", "previous"] as const) {
      const urls = credentialUrls(rotated, which);
      await verify(connectChecks(), "direct", urls, ` (${which})`);
      await verify(again(PRIVILEGE_CHECKS), "direct", urls, ` (${which})`);
      await verify(pooledOnly(connectChecks()), "pooled", urls, ` (${which})`);
      await verify(pooledOnly(PRIVILEGE_CHECKS), "pooled", urls, ` (${which})`);
    }
    expect(new URL(credentialUrls(rotated, "current")("sv-sdk", "auditor", false)).username).toBe("sv_sdk_auditor");
    expect(new URL(credentialUrls(rotated, "previous")("sv-sdk", "auditor", false)).username).toBe("sv_sdk_auditor_alt");
  });

  it("after two rotations: the audit finds nothing", async () => {
    const report = await runAudit({ file: stack.file, stack: stack.stack, project: "db-platform", projectDir: ROOT, backups: false });
    expect(report.findings.map((f) => `${f.rule} ${f.object}: ${f.message}`)).toEqual([]);
  }, 300_000);

  it("changes nothing on a second preview with the policy pack", async () => {
    const changes = await previewStack(stack.ctx, true);
    expect(Object.keys(changes)).toEqual(["same"]);
    expect(changes.same).toBeGreaterThan(180);
  }, 300_000);

  it("refuses in the engine's preview a grant reaching another service, also through a second provider at the same address", async () => {
    const s = await LocalWorkspace.selectStack(
      {
        stackName: stack.stack,
        projectName: "db-platform",
        program: async () => {
          const outputs = runProgram(configFromPulumi());
          const sneaky = new postgresql.Provider("sneaky", {
            host: "127.0.0.1",
            port: stack.server.opts.port,
            username: "platform_admin",
            password: FIXTURE_ADMIN_PASSWORD,
            sslmode: "disable",
            superuser: false,
          });
          new postgresql.Grant(
            "inventory-into-orders",
            { database: "orders_db", role: "inventory_app", objectType: "database", privileges: ["CONNECT"] },
            { provider: sneaky },
          );
          return { environment: outputs.environment };
        },
      },
      { workDir: ROOT, envVars: engineEnv(ROOT, stack.stack) },
    );
    await expect(s.preview(policyPackArgs(ROOT, stack.stack))).rejects.toThrow(
      /no-cross-service-privileges[\s\S]*inventory_app[\s\S]*orders_db/,
    );
  }, 300_000);

  it("removes a service with its database (or its schema) and roles, and leaves its neighbours as they were", async () => {
    // orders has a database of its own; payments shares "platform" with profile by schema. Their
    // grants and default privileges go with the database or schema (not revoked one by one).
    // Their data may go only once each says so (allowDataLoss), in an up of its own: removing a
    // protected service is refused before anything is applied.
    const current = () => ({ ...stack.ctx, spec: loadSpec(readConfigFile(stack.file)) });
    const doc = parse(fs.readFileSync(stack.file, "utf8"));
    const services = doc.config["db-platform:services"];
    const { orders, payments } = services;
    delete services.orders;
    delete services.payments;
    fs.writeFileSync(stack.file, stringify(doc));
    await expect(upStack(current())).rejects.toThrow(
      /service orders: its database \(orders-db\)[\s\S]*service payments: its schema \(payments-schema-payments\)/,
    );
    doc.config["db-platform:services"] = {
      ...services,
      orders: { ...orders, allowDataLoss: true },
      payments: { ...payments, allowDataLoss: true },
    };
    fs.writeFileSync(stack.file, stringify(doc));
    await upStack(current());
    doc.config["db-platform:services"] = services;
    fs.writeFileSync(stack.file, stringify(doc));
    const { changes } = await upStack(current());
    expect(changes.create ?? 0).toBe(0);
    expect(changes.delete).toBeGreaterThan(40);
    const c = await stack.server.superuserClient("platform");
    try {
      const left = await c.query(
        `SELECT 'database ' || datname AS left FROM pg_database WHERE datname = 'orders_db'
         UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname ~ '^(orders|payments)_'
         UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname = 'payments'`,
      );
      expect(left.rows).toEqual([]);
    } finally {
      await c.end();
    }
    // The logins' credentials since the rotations above.
    const urls = credentialUrls(rotated, "current");
    await verify(
      connectChecks().filter((k) => k.service !== "orders" && k.service !== "payments" && k.database !== "orders_db"),
      "direct",
      urls,
    );
    expect(await attempt(urls("profile", "app", true), "platform", "INSERT INTO profile.profiles (email) VALUES ('x@example.com')")).toBe(
      "ok",
    );
    expect(await attempt(urls("inventory", "readonly", true), "inventory_db", "SELECT count(*) FROM inventory.items")).toBe("ok");
    expect((await previewStack(stack.ctx, true)).same).toBeGreaterThan(120);
  }, 300_000);

  it("destroys every database, schema and role, even after the service logins created objects", async () => {
    const changes = await destroyStack(stack.ctx);
    expect(changes.delete).toBeGreaterThan(120);
    const c = await stack.server.superuserClient();
    try {
      const left = await c.query(
        `SELECT 'database ' || datname AS left FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')
         UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname NOT IN ('postgres', 'platform_admin')`,
      );
      expect(left.rows).toEqual([]);
    } finally {
      await c.end();
    }
  }, 300_000);
});
