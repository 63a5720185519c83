/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * `db-platform audit` as a command on a real PostgreSQL 16 holding the dev stack: exit codes
 * (0 clean, 1 high, 2 critical, 3 could not run), every format, the HTML page in headless
 * Chromium (screenshot, no page errors, coloured cells) and the Markdown rendered to a table.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { marked } from "marked";
import { afterAll, beforeAll, describe as describeAll, expect, it } from "vitest";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { inChromium } from "../helpers/browser";
import { runCli } from "../helpers/cli";
import type { AuditReport } from "../../operations/audit/model";
import { type AppliedStack, FIXTURE_ADMIN_PASSWORD, startAppliedDevStack } from "../helpers/appliedDevStack";

// What PostgreSQL allows is what the real engine applied: without it these are skipped, saying why.
const describe = ENGINE.ready ? describeAll : describeAll.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

let fixture: AppliedStack;
const out = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-audit-cli-"));

const audit = (...args: string[]) => runCli(["audit", ...args]);

beforeAll(async () => {
  if (!ENGINE.ready) return;
  fixture = await startAppliedDevStack("auditcli", { s3: true });
  // A clean stack has fresh backups: the audit checks each service's latest one against the RPO.
  fixture.backUp();
}, 180_000);

afterAll(async () => {
  await fixture?.cleanup();
  fs.rmSync(out, { recursive: true, force: true });
}, 60_000);

describe("db-platform audit", () => {
  it("exits 0 on a clean stack, with the documented JSON report", () => {
    const r = audit("--stack", "auditcli", "--format", "json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(Object.keys(report)).toEqual([
      "version",
      "stack",
      "generatedAt",
      "durationMs",
      "servers",
      "summary",
      "findings",
      "matrix",
      "moves",
    ]);
    expect(report).toMatchObject({
      version: 1,
      stack: "auditcli",
      findings: [],
      moves: [],
      summary: { critical: 0, high: 0, medium: 0, low: 0 },
    });
  });

  it("exits 2 on a critical finding and prints a table with the finding and its fix", async () => {
    await fixture.sql("postgres", "GRANT CONNECT ON DATABASE inventory_db TO PUBLIC");
    try {
      const r = audit("--stack", "auditcli");
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/│ 1 │ critical │ public-access │ local +│ inventory_db │ PUBLIC +│/);
      expect(r.stdout).toContain('fix: REVOKE CONNECT ON DATABASE "inventory_db" FROM PUBLIC;');
      expect(r.stdout).toMatch(/│ PUBLIC +│ connect +│ none/);
      expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("1 finding(s): 1 critical, 0 high, 0 medium, 0 low");
    } finally {
      await fixture.sql("postgres", "REVOKE CONNECT ON DATABASE inventory_db FROM PUBLIC");
    }
  });

  it("exits 1 when the worst finding is high", async () => {
    await fixture.sql("orders_db", "REVOKE SELECT ON orders.orders FROM orders_readonly");
    try {
      expect(audit("--stack", "auditcli", "--format", "json").code).toBe(1);
    } finally {
      await fixture.sql("orders_db", "GRANT SELECT ON orders.orders TO orders_readonly");
    }
  });

  it("renders Markdown that a Markdown renderer turns into tables", async () => {
    await fixture.sql("platform", "GRANT SELECT ON payments.payments TO profile_app");
    try {
      const r = audit("--stack", "auditcli", "--format", "md");
      expect(r.code).toBe(2);
      const html = await marked.parse(r.stdout);
      expect(html.match(/<table>/g)).toHaveLength(2);
      expect(html).toMatch(
        /<td>critical<\/td>\s*<td>cross-service-access<\/td>\s*<td>local<\/td>\s*<td>platform\/payments.payments<\/td>\s*<td>profile_app<\/td>/,
      );
      expect(html).toMatch(/<td>profile<\/td>\s*<td>none<\/td>\s*<td>none<\/td>\s*<td>none<\/td>\s*<td>read<\/td>\s*<td>owner<\/td>/);
    } finally {
      await fixture.sql("platform", "REVOKE SELECT ON payments.payments FROM profile_app");
    }
  });

  it("writes a self-contained HTML page that opens in headless Chromium without errors", async () => {
    const file = path.join(out, "audit.html");
    await fixture.sql("postgres", 'GRANT orders_owner TO inventory_app; CREATE ROLE "<script>alert(1)</script>" NOLOGIN');
    let r;
    try {
      r = audit("--stack", "auditcli", "--format", "html", "--out", file);
    } finally {
      await fixture.sql("postgres", 'REVOKE orders_owner FROM inventory_app; DROP ROLE "<script>alert(1)</script>"');
    }
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`${file}: 2 finding(s) (1 critical, 0 high, 1 medium, 0 low)\n`);
    const page = fs.readFileSync(file, "utf8");
    expect(page).not.toMatch(/<script|<link|src=|@import/);

    await inChromium(file, async ({ tab, errors, requests, screenshot: shot }) => {
      expect(fs.readFileSync(shot).subarray(1, 4).toString()).toBe("PNG");
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      expect(errors).toEqual([]);
      expect(requests).toEqual([`file://${file}`]);

      const cell = await tab.evaluate(() => {
        const rows = [...document.querySelectorAll("table.matrix tbody tr")];
        const heads = [...document.querySelectorAll("table.matrix thead th")].map((th) => th.textContent);
        const row = rows.find((tr) => tr.querySelector("th")?.textContent === "inventory") as HTMLTableRowElement;
        const td = row.cells[heads.indexOf("local/orders_db")];
        return { text: td.textContent, background: getComputedStyle(td).backgroundColor, framed: td.classList.contains("alert") };
      });
      expect(cell).toEqual({ text: "owner", background: "rgb(248, 113, 113)", framed: true });
      const findings = await tab.$$eval("table.findings tbody tr", (trs) => trs.map((tr) => tr.querySelector("td")?.textContent));
      expect(findings).toEqual(["critical", "medium"]);
      expect(await tab.$eval("table.findings", (t) => t.textContent)).toContain("<script>alert(1)</script>");
    });
  }, 120_000);

  it("reports databases the login cannot read (high), and exits 3 when the server cannot be reached", () => {
    // The admin is a member of every owner role: through it the audit reads every database.
    const admin = `local=postgresql://platform_admin:${FIXTURE_ADMIN_PASSWORD}@127.0.0.1:${fixture.server.opts.port}/postgres`;
    const clean = audit("--stack", "auditcli", "--format", "json", "--server-url", admin);
    expect((JSON.parse(clean.stdout) as AuditReport).findings).toEqual([]);
    expect(clean.code).toBe(0);
    // A service's own login reaches its database only: every other one is reported unreadable.
    const url = `local=${fixture.url("inventory", "readonly").replace(/\/inventory_db\?.*$/, "/postgres")}`;
    const r = audit("--stack", "auditcli", "--format", "json", "--server-url", url);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(report.findings.map((f) => `${f.severity} ${f.rule} ${f.object}`)).toEqual([
      "high inspection-failed orders_db",
      "high inspection-failed platform",
      "high inspection-failed sv_sdk_db",
    ]);
    expect(report.findings[0].message).toMatch(/permission denied for database "orders_db"/);

    const down = audit("--stack", "auditcli", "--server-url", "local=postgresql://nobody:x@127.0.0.1:1/postgres");
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/^db-platform audit: server local: cannot connect .*ECONNREFUSED/m);
  });

  it("exits 3 naming what is missing: an unknown service, a server it has no way to reach", () => {
    const unknown = audit("--stack", "auditcli", "--service", "nope");
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toBe(
      "db-platform audit: --service nope: stack auditcli has no such service (inventory, orders, payments, profile, sv-sdk)\n",
    );
    const rds = audit("--stack", "prod");
    expect(rds.code).toBe(3);
    expect(rds.stderr).toMatch(/^db-platform audit: server main \(hosting rds\): give --server-url main=postgresql:\/\//);
    const bad = audit("--stack", "auditcli", "--server-url", "local");
    expect(bad.code).toBe(3);
    expect(bad.stderr).toBe("db-platform audit: --server-url local: expected <server>=postgresql://user:password@host:port/database\n");
  });
});
