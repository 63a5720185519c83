/** The report renderings and exit codes on hand-made reports: escaping, ordering, exit codes. */
import { marked } from "marked";
import { describe, expect, it } from "vitest";
import { type AuditFinding, type AuditReport, type AuditRule } from "../../operations/audit/model";
import { auditRule } from "../../operations/audit/rules";
import { exitCodeOf, MOVE_STATES, render } from "../../operations/audit/report";

function finding(rule: AuditRule, object: string, extra: Partial<AuditFinding> = {}): AuditFinding {
  return {
    severity: auditRule(rule).severity,
    rule,
    server: "main",
    object,
    services: [],
    message: `about ${object}`,
    fix: "do it",
    ...extra,
  };
}

function report(findings: AuditFinding[], moves: AuditReport["moves"] = []): AuditReport {
  const summary = { critical: 0, high: 0, medium: 0, low: 0 };
  for (const f of findings) summary[f.severity]++;
  return {
    version: 1,
    stack: "s",
    generatedAt: "2026-11-24T00:00:00.000Z",
    durationMs: 5,
    servers: [{ name: "main", version: "16.4", databases: 2, collectMs: 3 }],
    summary,
    findings,
    matrix: {
      columns: [{ label: "main/a_db", service: "a" }],
      rows: [
        { subject: "a", cells: ["owner"] },
        { subject: "PUBLIC", cells: ["none"] },
      ],
    },
    moves,
  };
}

describe("a move in progress", () => {
  const moving = report(
    [],
    [
      {
        service: "a",
        from: "schemas in database p on server main",
        to: "database a_db on server main",
        phase: "serve",
        state: MOVE_STATES.serve,
      },
    ],
  );

  it("is stated in every format, not reported as a finding", async () => {
    const line =
      "service a is moving from schemas in database p on server main to database a_db on server main (phase serve): the new place serves";
    expect(render(moving, "text")).toContain(line);
    expect(await marked.parse(render(moving, "md"))).toContain(line);
    expect(render(moving, "html")).toContain(`<p class="move">${line}`);
    expect(JSON.parse(render(moving, "json")).moves).toEqual(moving.moves);
    expect(exitCodeOf(moving)).toBe(0);
  });
});

describe("exit codes", () => {
  it.each([
    [[], 0],
    [[finding("password-expiry", "role x")], 0],
    [[finding("unmanaged-role", "role x")], 0],
    [[finding("drift", "db"), finding("unmanaged-role", "role x")], 1],
    [[finding("inspection-failed", "db")], 1],
    [[finding("drift", "db"), finding("backdoor", "db extension dblink")], 2],
  ] as Array<[AuditFinding[], number]>)("%j -> %i", (findings, code) => {
    expect(exitCodeOf(report(findings))).toBe(code);
  });
});

describe("Markdown", () => {
  it("keeps hostile names inside their cell and out of the HTML", async () => {
    const md = render(report([finding("unmanaged-role", "role a|b<script>alert(1)</script>", { fix: 'DROP ROLE "a|b";' })]), "md");
    const html = await marked.parse(md);
    expect(html).not.toContain("<script>");
    const row = /<tr>\s*<td>medium<\/td>[\s\S]*?<\/tr>/.exec(html)?.[0] ?? "";
    expect(row.match(/<td>/g)).toHaveLength(7);
    expect(row).toContain("role a|b&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(row).toContain("<code>DROP ROLE &quot;a&#124;b&quot;;</code>");
  });
});

describe("JSON", () => {
  it("is the report itself, keys in the documented order", () => {
    const r = report([finding("drift", "db")]);
    const parsed = JSON.parse(render(r, "json"));
    expect(parsed).toEqual(r);
    expect(Object.keys(parsed.findings[0])).toEqual(["severity", "rule", "server", "object", "services", "message", "fix"]);
  });
});

describe("HTML", () => {
  it("escapes every name and carries no script, link or external resource", () => {
    const html = render(report([finding("unmanaged-role", `role "><img src=x onerror=alert(1)>`)]), "html");
    expect(html).toContain("role &quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(html).not.toMatch(/<img|<script|<link|https?:\/\//);
  });
});
