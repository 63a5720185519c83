/**
 * The four renderings of `db-platform stats`: a terminal table, Markdown, JSON (the StatsReport,
 * schema version 1, docs/stats.md) and a self-contained HTML page with charts (inline SVG, no
 * script, no network): time share, latency, connections and size per service, and the pooler's
 * clients per pooled service.
 */
import Table from "cli-table3";
import escapeHtml from "escape-html";
import { archiveLine } from "../archive/status";
import { formatBytes } from "../local/local";
import type { ServiceStats, StatsReport } from "./model";

export const STATS_FORMATS = ["text", "md", "json", "html"] as const;
export type StatsFormat = (typeof STATS_FORMATS)[number];

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
const conns = (s: ServiceStats) => {
  const c = s.connections;
  return `${c.total}${c.limit === null ? "" : `/${c.limit}`} (${c.active} active, ${c.idle} idle, ${c.idleInTransaction} idle in tx)`;
};

/** A pooled service's pool: clients active and waiting, server connections of the pool size, longest wait, transactions per second. */
const pool = (s: ServiceStats) => {
  const p = s.pool;
  if (!p) return "-";
  return `${p.clientsActive} active, ${p.clientsWaiting} waiting; server ${p.serverActive + p.serverIdle}/${p.size}; wait ${p.maxWaitSeconds.toFixed(1)} s; ${p.transactionsPerSecond.toFixed(1)} tx/s`;
};

const COLUMNS = [
  "#",
  "service",
  "server/database",
  "share",
  "calls",
  "q/s",
  "mean ms",
  "p50/p95/p99 ms (est.)",
  "slow",
  "connections",
  "pool",
  "rows r/w",
  "size",
  "xid age",
];

function row(s: ServiceStats): string[] {
  const q = s.queries;
  return [
    String(s.rank),
    s.service,
    `${s.server}/${s.database}: ${s.schemas.join(", ")}`,
    pct(q.share),
    String(q.calls),
    q.perSecond.toFixed(1),
    ms(q.meanMs),
    `${ms(q.p50Ms)}/${ms(q.p95Ms)}/${ms(q.p99Ms)}`,
    String(q.slowCalls),
    conns(s),
    pool(s),
    `${s.storage.rowsRead}/${s.storage.rowsWritten}`,
    formatBytes(s.storage.tableBytes + s.storage.indexBytes),
    String(s.xidAge),
  ];
}

function notes(s: ServiceStats): string[] {
  const out: string[] = [];
  for (const st of s.slowest)
    out.push(`slowest: ${ms(st.meanMs)} ms mean, ${st.calls} call(s): ${st.query.replace(/\s+/g, " ").slice(0, 160)}`);
  for (const i of s.unusedIndexes) out.push(`unused index ${i.index} on ${i.table} (${formatBytes(i.bytes)}, never scanned)`);
  for (const m of s.missingIndexes)
    out.push(`index candidate: ${m.table}: ${m.seqScans} sequential scans reading ${m.rowsPerSeqScan} rows each (${m.liveRows} rows)`);
  if (s.pool) {
    const p = s.pool;
    out.push(
      `pool (${p.mode}, ${p.poolers.join(", ") || "no pooler read"}): ${p.transactions} transaction(s), ${p.queries} quer${p.queries === 1 ? "y" : "ies"}, ${p.queriesPerSecond.toFixed(1)} q/s, clients waited ${p.waitMs.toFixed(0)} ms in all` +
        (p.sharedWith.length ? `; counted with ${p.sharedWith.join(", ")} (PgBouncer counts per database)` : ""),
    );
    for (const u of p.unread) out.push(`pool: ${u}`);
  }
  if (s.replica)
    out.push(
      `reader ${s.replica.name}: ${formatBytes(s.replica.lagBytes)} behind${s.replica.lagSeconds === null ? "" : ` (${s.replica.lagSeconds.toFixed(1)} s)`}`,
    );
  return out;
}

function windowLines(r: StatsReport): string[] {
  return [...serverLines(r), ...(r.archives ?? []).map((a) => archiveLine(a))];
}

function serverLines(r: StatsReport): string[] {
  return r.servers.map(
    (w) =>
      `server ${w.server} (PostgreSQL ${w.version}${w.replicasRead.length ? `, with replica ${w.replicasRead.join(", ")}` : ""}): ${w.kind === "sampled" ? "sampled" : "since the statistics reset"} ${w.from} → ${w.to} (${w.seconds.toFixed(1)} s)` +
      (w.statementsMissing ? `; no statement statistics: ${w.statementsMissing}` : "") +
      (w.unattributed.calls > 0 ? `; ${w.unattributed.calls} call(s) by roles of no service` : ""),
  );
}

function text(r: StatsReport): string {
  const t = new Table({ head: COLUMNS, style: { head: [], border: [] } });
  for (const s of r.services) t.push(row(s));
  const details = r.services.flatMap((s) => notes(s).map((n) => `  ${s.service}: ${n}`));
  return `${[`stack ${r.stack}: ${r.services.length} service(s), read in ${r.durationMs.toFixed(0)} ms`, ...windowLines(r)].join("\n")}\n\n${t.toString()}\n${details.length ? `\n${details.join("\n")}\n` : ""}`;
}

const mdCell = (s: string) => escapeHtml(s).replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

function markdown(r: StatsReport): string {
  const lines = [`## Per-service statistics: stack ${r.stack}`, "", ...windowLines(r).map((l) => `- ${mdCell(l)}`), ""];
  lines.push(`| ${COLUMNS.join(" | ")} |`, `|${COLUMNS.map(() => " --- ").join("|")}|`);
  for (const s of r.services) lines.push(`| ${row(s).map(mdCell).join(" | ")} |`);
  for (const s of r.services) {
    const n = notes(s);
    if (n.length === 0) continue;
    lines.push("", `### ${mdCell(s.service)}`, "", ...n.map((x) => `- ${mdCell(x)}`));
  }
  return `${lines.join("\n")}\n`;
}

interface Bar {
  readonly label: string;
  readonly parts: ReadonlyArray<{ readonly value: number; readonly cls: string; readonly title: string }>;
  readonly note: string;
}

/** A horizontal bar chart: one row per service, stacked parts, scaled to the largest total. */
function chart(title: string, bars: readonly Bar[], legend: ReadonlyArray<[string, string]>): string {
  const e = escapeHtml;
  const width = 420;
  const max = Math.max(1e-9, ...bars.map((b) => b.parts.reduce((n, p) => n + p.value, 0)));
  const rows = bars.map((b, i) => {
    let x = 0;
    const rects = b.parts.map((p) => {
      const w = (p.value / max) * width;
      const rect = `<rect class="${p.cls}" x="${(160 + x).toFixed(1)}" y="${i * 26 + 4}" width="${w.toFixed(1)}" height="18"><title>${e(p.title)}</title></rect>`;
      x += w;
      return rect;
    });
    return `<text x="0" y="${i * 26 + 18}">${e(b.label)}</text>${rects.join("")}<text x="${(166 + x).toFixed(1)}" y="${i * 26 + 18}" class="note">${e(b.note)}</text>`;
  });
  const keys = legend.map(([cls, name]) => `<span class="key ${cls}"></span>${e(name)}`).join(" ");
  return `<figure><figcaption>${e(title)}</figcaption><svg role="img" aria-label="${e(title)}" width="760" height="${bars.length * 26 + 8}">${rows.join("")}</svg><div class="legend">${keys}</div></figure>`;
}

function html(r: StatsReport): string {
  const e = escapeHtml;
  const s = r.services;
  const charts = [
    chart(
      "Time the server spent per service",
      s.map((x) => ({
        label: x.service,
        parts: [{ value: x.queries.share, cls: "a", title: pct(x.queries.share) }],
        note: `${pct(x.queries.share)}, ${x.queries.calls} calls`,
      })),
      [["a", "share of statement time"]],
    ),
    chart(
      "Latency per service (ms, estimated percentiles)",
      s.flatMap((x) => [
        {
          label: `${x.service} p50`,
          parts: [{ value: x.queries.p50Ms, cls: "a", title: `p50 ${ms(x.queries.p50Ms)} ms` }],
          note: `${ms(x.queries.p50Ms)} ms`,
        },
        {
          label: `${x.service} p95`,
          parts: [{ value: x.queries.p95Ms, cls: "b", title: `p95 ${ms(x.queries.p95Ms)} ms` }],
          note: `${ms(x.queries.p95Ms)} ms`,
        },
        {
          label: `${x.service} p99`,
          parts: [{ value: x.queries.p99Ms, cls: "c", title: `p99 ${ms(x.queries.p99Ms)} ms` }],
          note: `${ms(x.queries.p99Ms)} ms`,
        },
      ]),
      [
        ["a", "p50"],
        ["b", "p95"],
        ["c", "p99"],
      ],
    ),
    chart(
      "Connections per service",
      s.map((x) => ({
        label: x.service,
        parts: [
          { value: x.connections.active, cls: "a", title: `${x.connections.active} active` },
          { value: x.connections.idle, cls: "b", title: `${x.connections.idle} idle` },
          { value: x.connections.idleInTransaction, cls: "c", title: `${x.connections.idleInTransaction} idle in transaction` },
        ],
        note: `${x.connections.total}${x.connections.limit === null ? "" : ` of ${x.connections.limit}`}`,
      })),
      [
        ["a", "active"],
        ["b", "idle"],
        ["c", "idle in transaction"],
      ],
    ),
    chart(
      "Size per service",
      s.map((x) => ({
        label: x.service,
        parts: [
          { value: x.storage.tableBytes, cls: "a", title: `tables ${formatBytes(x.storage.tableBytes)}` },
          { value: x.storage.indexBytes, cls: "b", title: `indexes ${formatBytes(x.storage.indexBytes)}` },
        ],
        note: formatBytes(x.storage.tableBytes + x.storage.indexBytes),
      })),
      [
        ["a", "tables"],
        ["b", "indexes"],
      ],
    ),
  ];
  const pooled = s.filter((x) => x.pool);
  if (pooled.length > 0) {
    charts.push(
      chart(
        "Pooler clients per pooled service",
        pooled.map((x) => {
          const p = x.pool as NonNullable<ServiceStats["pool"]>;
          return {
            label: x.service,
            parts: [
              { value: p.clientsActive, cls: "a", title: `${p.clientsActive} active` },
              { value: p.clientsWaiting, cls: "c", title: `${p.clientsWaiting} waiting` },
            ],
            note: `server ${p.serverActive + p.serverIdle} of ${p.size}, longest wait ${p.maxWaitSeconds.toFixed(1)} s, ${p.transactionsPerSecond.toFixed(1)} tx/s`,
          };
        }),
        [
          ["a", "active"],
          ["c", "waiting for a server connection"],
        ],
      ),
    );
  }
  const table = `<table><thead><tr>${COLUMNS.map((c) => `<th>${e(c)}</th>`).join("")}</tr></thead><tbody>${s
    .map(
      (x) =>
        `<tr>${row(x)
          .map((c) => `<td>${e(c)}</td>`)
          .join("")}</tr>`,
    )
    .join("")}</tbody></table>`;
  const details = s
    .filter((x) => notes(x).length > 0)
    .map(
      (x) =>
        `<h3>${e(x.service)}</h3><ul>${notes(x)
          .map((n) => `<li><code>${e(n)}</code></li>`)
          .join("")}</ul>`,
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>db-platform stats: ${e(r.stack)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:nth-child(2),td:nth-child(3){text-align:left}figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.4em}svg text{font-size:12px}svg .note{fill:#555}
.a{fill:#2b6cb0;background:#2b6cb0}.b{fill:#d69e2e;background:#d69e2e}.c{fill:#c53030;background:#c53030}.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
</style></head><body>
<h1>Per-service statistics: stack ${e(r.stack)}</h1>
<ul>${windowLines(r)
    .map((l) => `<li>${e(l)}</li>`)
    .join("")}</ul>
${charts.join("\n")}
${table}
${details}
</body></html>
`;
}

export function renderStats(r: StatsReport, format: StatsFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify({ version: 1, ...r }, null, 2)}\n`;
    case "md":
      return markdown(r);
    case "html":
      return html(r);
    default:
      return text(r);
  }
}
