/**
 * The audit report and its four renderings: a terminal table, Markdown (PR comments, tickets),
 * JSON (machines; schema version 1, docs/audit.md) and a self-contained HTML page.
 */
import Table from "cli-table3";
import escapeHtml from "escape-html";
import type { ServerAnalysis } from "./analyze";
import {
  ACCESS_LEVELS,
  type AccessLevel,
  type AccessMatrix,
  type AuditFinding,
  type AuditReport,
  type LiveServer,
  type MoveStatus,
  PUBLIC,
  SEVERITIES,
  type Severity,
} from "./model";

export const REPORT_FORMATS = ["text", "md", "json", "html"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Exit codes of `db-platform audit`. */
export const AUDIT_EXIT = { clean: 0, high: 1, critical: 2, couldNotRun: 3 } as const;

const bySeverity = (a: AuditFinding, b: AuditFinding) =>
  SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) ||
  a.server.localeCompare(b.server) ||
  a.rule.localeCompare(b.rule) ||
  a.object.localeCompare(b.object) ||
  (a.subject ?? "").localeCompare(b.subject ?? "");

export interface ServerResult {
  readonly live: LiveServer;
  readonly analysis: ServerAnalysis;
}

/** One report from every server's analysis; `service` keeps only what concerns that service. */
export function buildReport(args: {
  stack: string;
  results: readonly ServerResult[];
  /** Findings that come from outside the catalogs (backup freshness). */
  extraFindings?: readonly AuditFinding[];
  durationMs: number;
  service?: string;
  now?: Date;
  moves?: readonly MoveStatus[];
}): AuditReport {
  const keep = (f: AuditFinding) => !args.service || f.services.includes(args.service);
  const findings = args.results
    .flatMap((r) => r.analysis.findings)
    .concat(args.extraFindings ?? [])
    .filter(keep)
    .sort(bySeverity);
  const summary = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length])) as Record<
    Severity,
    number
  >;
  return {
    version: 1,
    stack: args.stack,
    generatedAt: (args.now ?? new Date()).toISOString(),
    durationMs: Math.round(args.durationMs),
    servers: args.results.map((r) => ({
      name: r.live.name,
      version: r.live.version,
      databases: r.live.databases.length,
      collectMs: r.live.collectMs,
    })),
    summary,
    findings,
    matrix: buildMatrix(args.results, args.service),
    moves: (args.moves ?? []).filter((m) => !args.service || m.service === args.service),
  };
}

/** What a move's phase means (docs/data-moves.md). */
export const MOVE_STATES = {
  copy: "the new place is being created and filled; the old one serves",
  serve: "the new place serves; the old one is kept, unchanged, until move apply --confirm retires it",
  retire: "the old place is being dropped; the new one serves",
} as const;

const moveLine = (m: MoveStatus) => `service ${m.service} is moving from ${m.from} to ${m.to} (phase ${m.phase}): ${m.state}`;

function buildMatrix(results: readonly ServerResult[], service?: string): AccessMatrix {
  const columns = results.flatMap((r) => r.analysis.areas);
  const subjects = new Set<string>();
  for (const r of results) for (const s of r.analysis.access.keys()) if (s !== PUBLIC) subjects.add(s);
  const rowSubjects = [...[...subjects].sort().filter((s) => !service || s === service), PUBLIC];
  const level = (subject: string, label: string): AccessLevel => {
    for (const r of results) {
      const l = r.analysis.access.get(subject)?.get(label);
      if (l) return l;
    }
    return "none";
  };
  return {
    columns: columns.map((c) => ({ label: c.label, service: c.service })),
    rows: rowSubjects.map((subject) => ({ subject, cells: columns.map((c) => level(subject, c.label)) })),
  };
}

export function exitCodeOf(report: AuditReport): number {
  if (report.summary.critical > 0) return AUDIT_EXIT.critical;
  if (report.summary.high > 0) return AUDIT_EXIT.high;
  return AUDIT_EXIT.clean;
}

export function render(report: AuditReport, format: ReportFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(report, null, 2)}\n`;
    case "md":
      return markdown(report);
    case "html":
      return html(report);
    case "text":
      return text(report);
  }
}

const summaryLine = (r: AuditReport) => `${r.findings.length} finding(s): ${SEVERITIES.map((s) => `${r.summary[s]} ${s}`).join(", ")}`;
const scopeLine = (r: AuditReport) =>
  `stack ${r.stack}: ${r.servers.map((s) => `${s.name} (PostgreSQL ${s.version}, ${s.databases} database(s), read in ${s.collectMs} ms)`).join("; ")}; audit took ${r.durationMs} ms`;

// ---------------------------------------------------------------- text

function text(r: AuditReport): string {
  const out: string[] = [scopeLine(r), ""];
  if (r.moves.length > 0) out.push(...r.moves.map(moveLine), "");
  if (r.findings.length > 0) {
    const t = new Table({ head: ["#", "severity", "rule", "server", "object", "subject"], style: { head: [], border: [] } });
    r.findings.forEach((f, i) => t.push([String(i + 1), f.severity, f.rule, f.server, f.object, f.subject ?? ""]));
    out.push(t.toString(), "");
    r.findings.forEach((f, i) => out.push(`[${i + 1}] ${f.message}`, `    fix: ${f.fix}`));
    out.push("");
  }
  const m = new Table({ head: ["access", ...r.matrix.columns.map((c) => c.label)], style: { head: [], border: [] } });
  for (const row of r.matrix.rows) m.push([row.subject, ...row.cells]);
  out.push(m.toString(), "", summaryLine(r), "");
  return out.join("\n");
}

// ---------------------------------------------------------------- Markdown

/** Table-safe and HTML-safe: role and object names are anyone's to choose. */
const mdCell = (s: string) => escapeHtml(s).replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
const mdCode = (s: string) => `<code>${escapeHtml(s).replace(/\|/g, "&#124;")}</code>`;

function markdown(r: AuditReport): string {
  const out = [`## db-platform audit: stack ${mdCell(r.stack)}`, "", mdCell(scopeLine(r)), "", `**${summaryLine(r)}**`, ""];
  if (r.moves.length > 0) out.push(...r.moves.map((m) => `- ${mdCell(moveLine(m))}`), "");
  if (r.findings.length > 0) {
    out.push("| Severity | Rule | Server | Object | Subject | Finding | Suggested fix |", "|---|---|---|---|---|---|---|");
    for (const f of r.findings) {
      out.push(
        `| ${f.severity} | ${f.rule} | ${mdCell(f.server)} | ${mdCell(f.object)} | ${mdCell(f.subject ?? "")} | ${mdCell(f.message)} | ${mdCode(f.fix)} |`,
      );
    }
    out.push("");
  }
  out.push("### Access matrix", "");
  out.push(`| Service | ${r.matrix.columns.map((c) => mdCell(c.label)).join(" | ")} |`);
  out.push(`|---|${r.matrix.columns.map(() => "---").join("|")}|`);
  for (const row of r.matrix.rows) out.push(`| ${mdCell(row.subject)} | ${row.cells.join(" | ")} |`);
  out.push("", `Levels, weakest first: ${ACCESS_LEVELS.join(", ")}. Generated ${r.generatedAt}.`, "");
  return out.join("\n");
}

// ---------------------------------------------------------------- HTML

const LEVEL_COLOURS: Record<AccessLevel, string> = {
  none: "#f4f4f4",
  connect: "#dbeafe",
  read: "#fef3c7",
  write: "#fdba74",
  owner: "#f87171",
};
const SEVERITY_COLOURS: Record<Severity, string> = { critical: "#b91c1c", high: "#c2410c", medium: "#a16207", low: "#4b5563" };

function html(r: AuditReport): string {
  const e = (s: string) => escapeHtml(s);
  const cell = (row: string, col: { label: string; service: string }, level: AccessLevel) => {
    // Off the diagonal, anything above none is the finding the matrix exists to show.
    const own = row === col.service;
    return `<td class="lvl lvl-${level}${!own && level !== "none" ? " alert" : ""}" title="${e(`${row} on ${col.label}: ${level}`)}">${level}</td>`;
  };
  const findings =
    r.findings.length === 0
      ? `<p class="clean">No findings: the databases allow exactly what the stack declares.</p>`
      : `<table class="findings"><thead><tr><th>Severity</th><th>Rule</th><th>Server</th><th>Object</th><th>Subject</th><th>Finding</th><th>Suggested fix</th></tr></thead><tbody>
${r.findings
  .map(
    (f) =>
      `<tr><td class="sev sev-${f.severity}">${f.severity}</td><td>${e(f.rule)}</td><td>${e(f.server)}</td><td>${e(f.object)}</td><td>${e(f.subject ?? "")}</td><td>${e(f.message)}</td><td><code>${e(f.fix)}</code></td></tr>`,
  )
  .join("\n")}
</tbody></table>`;
  const css = [
    "body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#111}",
    "table{border-collapse:collapse;margin:1rem 0}",
    "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}",
    "th{background:#eee}",
    "td.lvl{text-align:center;min-width:5rem}",
    "td.alert{outline:3px solid #b91c1c;outline-offset:-3px;font-weight:bold}",
    ...ACCESS_LEVELS.map((l) => `.lvl-${l}{background:${LEVEL_COLOURS[l]}}`),
    ...SEVERITIES.map((s) => `.sev-${s}{color:#fff;background:${SEVERITY_COLOURS[s]};font-weight:bold}`),
    ".clean{color:#166534;font-weight:bold}",
    "code{white-space:pre-wrap}",
  ].join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>db-platform audit: ${e(r.stack)}</title>
<style>
${css}
</style>
</head>
<body>
<h1>db-platform audit: stack ${e(r.stack)}</h1>
<p>${e(scopeLine(r))}</p>
<p class="summary"><strong>${e(summaryLine(r))}</strong></p>
${r.moves.map((m) => `<p class="move">${e(moveLine(m))}</p>`).join("\n")}
<h2>Access matrix</h2>
<p>Rows: every role of a service (with what they reach through memberships and PUBLIC); columns: each service's database or schemas. Levels, weakest first: ${ACCESS_LEVELS.map((l) => `<span class="lvl-${l}">${l}</span>`).join(", ")}. A framed cell is access outside the service's own area.</p>
<table class="matrix"><thead><tr><th>service</th>${r.matrix.columns.map((c) => `<th>${e(c.label)}</th>`).join("")}</tr></thead><tbody>
${r.matrix.rows.map((row) => `<tr><th>${e(row.subject)}</th>${row.cells.map((l, i) => cell(row.subject, r.matrix.columns[i], l)).join("")}</tr>`).join("\n")}
</tbody></table>
<h2>Findings</h2>
${findings}
<p><small>Generated ${e(r.generatedAt)} by db-platform audit (report schema version ${r.version}).</small></p>
</body>
</html>
`;
}
