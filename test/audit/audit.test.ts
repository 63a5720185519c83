/**
 * `db-platform audit` on a real PostgreSQL 16: the dev stack applied through the real Pulumi
 * engine and provider plugins as the non-superuser admin (test/helpers/appliedDevStack.ts),
 * services get tables, sequences and functions, and the audit must find nothing. Then each change a
 * person could make behind the platform's back, with plain SQL as a superuser, must be reported
 * with exactly the right severity, rule, object and subject, and disappear once undone.
 */
import * as fs from "node:fs";
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Client } from "pg";
import { afterAll, beforeAll, describe as describeAll, expect, it } from "vitest";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import type { AuditFinding, AuditReport } from "../../operations/audit/model";
import { backupFindings } from "../../operations/audit/backups";
import { AUDIT_SESSION_OPTIONS, runAudit } from "../../operations/audit/run";
import { loadSpec } from "../../components/spec";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import { ROOT } from "../helpers/synth";
import type { LocalServerSpec } from "../../components/spec";
import { localRoot } from "../../operations/local/local";
import { localPoolers } from "../../operations/local/pools";

// What PostgreSQL allows is what the real engine applied: without it these are skipped, saying why.
const describe = ENGINE.ready ? describeAll : describeAll.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

let fixture: AppliedStack;
const sql = (database: string, text: string) => fixture.sql(database, text);

function audit(extra: { passwordMaxAgeDays?: number; service?: string } = {}): Promise<AuditReport> {
  const { file, stack, stateFile: state } = fixture;
  return runAudit({ file, stack, project: "db-platform", projectDir: ROOT, state, ...extra });
}

const brief = (f: AuditFinding) => ({ severity: f.severity, rule: f.rule, object: f.object, subject: f.subject });

beforeAll(async () => {
  if (!ENGINE.ready) return;
  // Pooled as the dev stack is: orders and payments through the PgBouncer beside the server.
  fixture = await startAppliedDevStack("audittest", { s3: true, pooler: ["orders", "payments"] });
  // A clean stack has fresh backups: the audit checks each service's latest one against the RPO.
  fixture.backUp();
}, 180_000);

afterAll(async () => {
  await fixture?.cleanup();
}, 60_000);

describe("audit of a clean dev stack", () => {
  it("finds nothing, and reads every database of the server", async () => {
    const report = await audit();
    expect(report.findings.map(brief)).toEqual([]);
    expect(report.summary).toEqual({ critical: 0, high: 0, medium: 0, low: 0 });
    expect(report.servers).toEqual([
      { name: "local", version: expect.stringMatching(/^16\./), databases: 5, collectMs: expect.any(Number) },
    ]);
  });

  it("shows each service owning its own area and reaching no other, PUBLIC nothing", async () => {
    const { matrix } = await audit();
    expect(matrix.columns).toEqual([
      { label: "local/inventory_db", service: "inventory" },
      { label: "local/orders_db", service: "orders" },
      { label: "local/sv_sdk_db", service: "sv-sdk" },
      { label: "local/platform/payments", service: "payments" },
      { label: "local/platform/profile", service: "profile" },
    ]);
    for (const row of matrix.rows) {
      const expected = matrix.columns.map((c) => (c.service === row.subject ? "owner" : "none"));
      expect({ subject: row.subject, cells: row.cells }).toEqual({ subject: row.subject, cells: expected });
    }
    expect(matrix.rows.map((r) => r.subject)).toEqual(["inventory", "orders", "payments", "profile", "sv-sdk", "PUBLIC"]);
  });
});

interface Case {
  readonly name: string;
  readonly apply: Array<[string, string]>;
  readonly undo: Array<[string, string]>;
  readonly expected: ReturnType<typeof brief>[];
}

const CASES: Case[] = [
  {
    name: "a cross-database GRANT CONNECT",
    apply: [["postgres", "GRANT CONNECT ON DATABASE orders_db TO inventory_app"]],
    undo: [["postgres", "REVOKE CONNECT ON DATABASE orders_db FROM inventory_app"]],
    expected: [{ severity: "critical", rule: "cross-service-access", object: "orders_db", subject: "inventory_app" }],
  },
  {
    name: "a GRANT SELECT on another service's table (schema isolation, same database)",
    apply: [["platform", "GRANT SELECT ON payments.payments TO profile_app"]],
    undo: [["platform", "REVOKE SELECT ON payments.payments FROM profile_app"]],
    expected: [{ severity: "critical", rule: "cross-service-access", object: "platform/payments.payments", subject: "profile_app" }],
  },
  {
    name: "GRANT <other service's role> TO <role>",
    apply: [["postgres", "GRANT orders_owner TO inventory_app"]],
    undo: [["postgres", "REVOKE orders_owner FROM inventory_app"]],
    expected: [{ severity: "critical", rule: "cross-service-membership", object: "role orders_owner", subject: "inventory_app" }],
  },
  {
    name: "CONNECT re-granted to PUBLIC",
    apply: [["postgres", "GRANT CONNECT ON DATABASE inventory_db TO PUBLIC"]],
    undo: [["postgres", "REVOKE CONNECT ON DATABASE inventory_db FROM PUBLIC"]],
    expected: [{ severity: "critical", rule: "public-access", object: "inventory_db", subject: "PUBLIC" }],
  },
  {
    name: "CREATE on a shared database's public schema for PUBLIC",
    apply: [["platform", "GRANT CREATE ON SCHEMA public TO PUBLIC"]],
    undo: [["platform", "REVOKE CREATE ON SCHEMA public FROM PUBLIC"]],
    expected: [{ severity: "critical", rule: "public-access", object: "platform/public", subject: "PUBLIC" }],
  },
  {
    name: "ALTER ROLE … SUPERUSER",
    apply: [["postgres", "ALTER ROLE orders_app SUPERUSER"]],
    undo: [["postgres", "ALTER ROLE orders_app NOSUPERUSER"]],
    expected: [{ severity: "critical", rule: "powerful-role", object: "role orders_app", subject: "orders_app" }],
  },
  {
    name: "membership in a built-in role that reads every database",
    apply: [["postgres", "GRANT pg_read_all_data TO sv_sdk_readonly"]],
    undo: [["postgres", "REVOKE pg_read_all_data FROM sv_sdk_readonly"]],
    expected: [{ severity: "critical", rule: "powerful-role", object: "role pg_read_all_data", subject: "sv_sdk_readonly" }],
  },
  {
    name: "a new unmanaged role",
    apply: [["postgres", "CREATE ROLE intruder LOGIN PASSWORD 'intruder-password'"]],
    undo: [["postgres", "DROP ROLE intruder"]],
    expected: [{ severity: "medium", rule: "unmanaged-role", object: "role intruder", subject: "intruder" }],
  },
  {
    name: "a foreign server",
    apply: [["orders_db", "CREATE FOREIGN DATA WRAPPER audit_test_fdw; CREATE SERVER elsewhere FOREIGN DATA WRAPPER audit_test_fdw"]],
    undo: [["orders_db", "DROP SERVER elsewhere; DROP FOREIGN DATA WRAPPER audit_test_fdw"]],
    expected: [{ severity: "critical", rule: "backdoor", object: "orders_db foreign server elsewhere", subject: "postgres" }],
  },
  {
    name: "the dblink extension",
    apply: [["sv_sdk_db", "CREATE EXTENSION dblink SCHEMA auth"]],
    undo: [["sv_sdk_db", "DROP EXTENSION dblink"]],
    expected: [{ severity: "critical", rule: "backdoor", object: "sv_sdk_db extension dblink", subject: undefined }],
  },
  {
    name: "a subscription",
    apply: [
      [
        "orders_db",
        "CREATE SUBSCRIPTION pull_orders CONNECTION 'host=127.0.0.1 port=1 dbname=x' PUBLICATION p WITH (connect = false, enabled = false)",
      ],
    ],
    undo: [["orders_db", "ALTER SUBSCRIPTION pull_orders SET (slot_name = NONE); DROP SUBSCRIPTION pull_orders"]],
    expected: [{ severity: "critical", rule: "backdoor", object: "orders_db subscription pull_orders", subject: "postgres" }],
  },
  {
    name: "a privilege inside the service that nobody declared (drift)",
    apply: [["inventory_db", "GRANT INSERT ON inventory.items TO inventory_readonly"]],
    undo: [["inventory_db", "REVOKE INSERT ON inventory.items FROM inventory_readonly"]],
    expected: [{ severity: "high", rule: "drift", object: "inventory_db/inventory.items", subject: "inventory_readonly" }],
  },
  {
    name: "a declared privilege revoked (drift)",
    apply: [["orders_db", "REVOKE SELECT ON orders.orders FROM orders_readonly"]],
    undo: [["orders_db", "GRANT SELECT ON orders.orders TO orders_readonly"]],
    expected: [{ severity: "high", rule: "drift", object: "orders_db/orders.orders", subject: "orders_readonly" }],
  },
  {
    name: "access through an unmanaged role in between",
    apply: [
      ["postgres", "CREATE ROLE bridge NOLOGIN; GRANT bridge TO inventory_readonly"],
      ["orders_db", "GRANT SELECT ON orders.orders TO bridge"],
    ],
    undo: [
      ["orders_db", "REVOKE SELECT ON orders.orders FROM bridge"],
      ["postgres", "DROP ROLE bridge"],
    ],
    expected: [
      { severity: "critical", rule: "cross-service-access", object: "orders_db/orders.orders", subject: "inventory_readonly" },
      { severity: "high", rule: "drift", object: "role bridge", subject: "inventory_readonly" },
      { severity: "medium", rule: "unmanaged-role", object: "role bridge", subject: "bridge" },
    ],
  },
  {
    name: "default privileges that hand another service's role every new table",
    apply: [["platform", "ALTER DEFAULT PRIVILEGES FOR ROLE payments_owner IN SCHEMA payments GRANT SELECT ON TABLES TO profile_readonly"]],
    undo: [
      ["platform", "ALTER DEFAULT PRIVILEGES FOR ROLE payments_owner IN SCHEMA payments REVOKE SELECT ON TABLES FROM profile_readonly"],
    ],
    expected: [
      {
        severity: "critical",
        rule: "cross-service-access",
        object: "platform/payments default privileges of payments_owner on new tables",
        subject: "profile_readonly",
      },
    ],
  },
];

describe("changes behind the platform's back", () => {
  it.each(CASES)("reports $name", async (c) => {
    for (const [db, text] of c.apply) await sql(db, text);
    try {
      const report = await audit();
      expect(report.findings.map(brief)).toEqual(c.expected);
      for (const f of report.findings) {
        expect(f.server).toBe("local");
        expect(f.message).not.toBe("");
        expect(f.fix).not.toBe("");
      }
    } finally {
      for (const [db, text] of c.undo) await sql(db, text);
    }
    expect((await audit()).findings.map(brief)).toEqual([]);
  });

  it("says which service's data another service reaches, in the matrix too", async () => {
    await sql("postgres", "GRANT orders_owner TO inventory_app");
    try {
      const report = await audit();
      const row = report.matrix.rows.find((r) => r.subject === "inventory");
      const col = report.matrix.columns.findIndex((c) => c.label === "local/orders_db");
      expect(row?.cells[col]).toBe("owner");
      expect(report.findings[0].services).toEqual(["inventory", "orders"]);
    } finally {
      await sql("postgres", "REVOKE orders_owner FROM inventory_app");
    }
  });

  it("--service keeps only the findings that concern that service", async () => {
    await sql("postgres", "GRANT CONNECT ON DATABASE orders_db TO inventory_app; CREATE ROLE stray NOLOGIN");
    try {
      expect((await audit({ service: "orders" })).findings.map(brief)).toEqual([
        { severity: "critical", rule: "cross-service-access", object: "orders_db", subject: "inventory_app" },
      ]);
      expect((await audit({ service: "payments" })).findings).toEqual([]);
    } finally {
      await sql("postgres", "REVOKE CONNECT ON DATABASE orders_db FROM inventory_app; DROP ROLE stray");
    }
  });
});

describe("password expiry, when a maximum age is configured", () => {
  it("reports every service login without a close enough expiry, and none once set", async () => {
    const logins = (await audit({ passwordMaxAgeDays: 90 })).findings;
    expect(new Set(logins.map((f) => `${f.severity} ${f.rule}`))).toEqual(new Set(["low password-expiry"]));
    expect(logins.map((f) => f.subject).sort()).toEqual(
      [
        "db_platform_monitor",
        "inventory_app",
        "inventory_migrator",
        "inventory_readonly",
        "orders_app",
        "orders_migrator",
        "orders_readonly",
        "payments_app",
        "payments_migrator",
        "payments_readonly",
        "profile_app",
        "profile_migrator",
        "profile_readonly",
        "sv_sdk_app",
        "sv_sdk_auditor",
        "sv_sdk_migrator",
        "sv_sdk_readonly",
      ].sort(),
    );
    const soon = new Date(Date.now() + 30 * 86_400_000).toISOString();
    await sql("postgres", `ALTER ROLE orders_app VALID UNTIL '${soon}'`);
    try {
      const after = await audit({ passwordMaxAgeDays: 90 });
      expect(after.findings.map((f) => f.subject)).not.toContain("orders_app");
      expect(after.findings).toHaveLength(16);
    } finally {
      await sql("postgres", "ALTER ROLE orders_app VALID UNTIL 'infinity'");
    }
  });
});

describe("read-only sessions", () => {
  it("reads the catalogs in sessions that cannot write", async () => {
    const c = new Client({
      host: fixture.server.socketDir,
      port: fixture.server.opts.port,
      user: "postgres",
      database: "postgres",
      options: AUDIT_SESSION_OPTIONS,
    });
    await c.connect();
    try {
      await expect(c.query("CREATE ROLE nope")).rejects.toThrow(/read-only transaction/);
    } finally {
      await c.end();
    }
  });
});

describe("backup freshness", () => {
  const ctx = () => ({ spec: loadSpec(readConfigFile(fixture.file)), stack: fixture.stack, projectDir: ROOT });

  it("reports a service whose backups are gone (no manifest), high, naming its prefix", async () => {
    const s3 = new S3Client((fixture.s3 as NonNullable<AppliedStack["s3"]>).clientConfig());
    try {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: "db-platform-dev-backups", Prefix: "dev/orders/" }));
      for (const o of listed.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: "db-platform-dev-backups", Key: o.Key }));
      const report = await audit();
      expect(report.findings.map((f) => [f.severity, f.rule, f.object, f.services, f.message])).toEqual([
        [
          "high",
          "backup-freshness",
          "s3://db-platform-dev-backups/dev/orders/",
          ["orders"],
          "orders has no backup (no manifest under s3://db-platform-dev-backups/dev/orders/)",
        ],
      ]);
    } finally {
      s3.destroy();
      fixture.backUp("orders");
    }
    expect((await audit()).findings).toEqual([]);
  });

  it("reads the pooler's files: a login it admits that the stack does not pool there, a trusted line, an admin user", async () => {
    const pooler = localPoolers(fixture.ctx.spec.servers[0] as LocalServerSpec, localRoot(ROOT, fixture.stack), ROOT).get("local");
    if (!pooler) throw new Error("no pooler beside local");
    const saved = [pooler.hbaFile, pooler.authFile, pooler.configFile].map((f) => [f, fs.readFileSync(f, "utf8")] as const);
    try {
      // payments' app login to orders' database, anyone from anywhere, an undeclared login, a console admin.
      fs.appendFileSync(pooler.hbaFile, "host orders_db payments_app 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 trust\n");
      fs.appendFileSync(pooler.authFile, '"intruder" "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"\n');
      fs.writeFileSync(pooler.configFile, fs.readFileSync(pooler.configFile, "utf8").replace("admin_users =", "admin_users = intruder"));
      const found = (await audit()).findings.filter((f) => f.rule === "pooler-admission");
      const rows = found.map((f) => [f.severity, f.object, f.subject, f.services]).sort((a, b) => String(a[1]).localeCompare(String(b[1])));
      expect(rows).toEqual([
        ["critical", "pooler local: auth file intruder", "intruder", []],
        ["critical", "pooler local: config admin_users", undefined, []],
        ["critical", 'pooler local: hba "host all all 0.0.0.0/0 trust"', "all", []],
        ["critical", 'pooler local: hba "host orders_db payments_app 127.0.0.1/32 scram-sha-256"', "payments_app", []],
      ]);
      expect(found.find((f) => f.subject === "payments_app")?.message).toBe(
        `the pooler beside local (${pooler.hbaFile}) admits payments_app to orders_db (host, scram-sha-256), which the stack does not pool there`,
      );
    } finally {
      for (const [f, text] of saved) fs.writeFileSync(f, text);
    }
    expect((await audit()).findings).toEqual([]);
  });

  it("reports every backup older than the RPO (24 h on the dev stack)", async () => {
    const tomorrow = new Date(Date.now() + 25 * 3600_000);
    const findings = await backupFindings(ctx(), ctx().spec.services, tomorrow);
    expect(findings.map((f) => [f.severity, f.rule, f.services[0]])).toEqual(
      ["inventory", "orders", "payments", "profile", "sv-sdk"].map((s) => ["high", "backup-freshness", s]),
    );
    expect(findings[0].message).toMatch(/^the latest backup of inventory \(\S+\) is 25\.\d h old, older than the RPO of 24 h$/);
    expect(await backupFindings(ctx(), ctx().spec.services, new Date(Date.now() + 23 * 3600_000))).toEqual([]);
  });

  it("reports backups it cannot check when the storage is down; --no-backups skips the check", async () => {
    const s3 = fixture.s3 as NonNullable<AppliedStack["s3"]>;
    await s3.stop();
    try {
      const findings = await backupFindings(ctx(), ctx().spec.services.slice(0, 1));
      expect(findings.map((f) => [f.severity, f.rule, f.object])).toEqual([["high", "backup-freshness", "backups/inventory"]]);
      expect(findings[0].message).toContain("the local S3 server of stack audittest is not running");
      const { file, stack, stateFile: state } = fixture;
      expect((await runAudit({ file, stack, project: "db-platform", projectDir: ROOT, state, backups: false })).findings).toEqual([]);
    } finally {
      await s3.start(["db-platform-dev-backups"]);
    }
  });
});
