/**
 * The statistics model without a server: literal scrubbing, the latency estimate, and
 * attribution of statements, sessions and tables to services (by role and by database and
 * schema, so services sharing a database are told apart), over a window of two snapshots; and
 * the CloudWatch data the metrics publisher makes of a report.
 */
import { describe, expect, it } from "vitest";
import { loadSpec } from "../../components/spec";
import { type Snapshot, type StatementRow, type TableRow, withReplica } from "../../operations/stats/collect";
import { buildStats, mixtureQuantile, scrubLiterals } from "../../operations/stats/model";
import { serviceMetricData } from "../../operations/stats/publish";
import { devValues, input } from "../helpers/config";

describe("scrubLiterals", () => {
  it.each([
    ["SELECT * FROM t WHERE token = 'sk_live_abc'", "SELECT * FROM t WHERE token = ?"],
    ["SELECT E'it''s \\n secret', U&'d\\0061t', B'101', X'ff'", "SELECT ?, ?, ?, ?"],
    ["SELECT $$secret body$$, $fn$ other $fn$", "SELECT ?, ?"],
    ["SELECT 42, 3.14, .5, 1e10 FROM t1 WHERE c2 = $1", "SELECT ?, ?, ?, ? FROM t1 WHERE c2 = $1"],
    ["SELECT $1 AS token /* key sk_live_abc */ -- and 'more'", "SELECT $1 AS token  "],
    ['SELECT "col 1", "it\'s" FROM "t\'x"', 'SELECT "col 1", "it\'s" FROM "t\'x"'],
    ["ALTER ROLE app PASSWORD 'unterminated", "ALTER ROLE app PASSWORD ?"],
  ])("%s", (sql, scrubbed) => {
    expect(scrubLiterals(sql)).toBe(scrubbed);
  });
});

describe("mixtureQuantile", () => {
  it("is the normal's quantile for one statement", () => {
    const d = [{ weight: 100, mean: 10, sd: 2, min: 0, max: 100 }];
    expect(mixtureQuantile(d, 0.5)).toBeCloseTo(10, 3);
    expect(mixtureQuantile(d, 0.95)).toBeCloseTo(13.29, 1);
  });
  it("weights statements by calls and stays within their min and max", () => {
    const d = [
      { weight: 90, mean: 1, sd: 0, min: 1, max: 1 },
      { weight: 10, mean: 150, sd: 20, min: 120, max: 180 },
    ];
    expect(mixtureQuantile(d, 0.5)).toBeCloseTo(1, 3);
    expect(mixtureQuantile(d, 0.95)).toBeGreaterThan(120);
    expect(mixtureQuantile(d, 0.99)).toBeLessThanOrEqual(180);
  });
});

const statement = (role: string, queryid: string, calls: number, meanMs: number): StatementRow => ({
  role,
  database: "platform",
  queryid,
  calls,
  totalMs: calls * meanMs,
  meanMs,
  stddevMs: 0,
  minMs: meanMs,
  maxMs: meanMs,
  rows: calls,
  query: "SELECT $1",
});
const table = (schema: string, inserted: number, seqScan = 0): TableRow => ({
  database: "platform",
  schema,
  name: "t",
  liveRows: inserted,
  seqScan,
  seqRowsRead: 0,
  idxScan: 0,
  idxRowsFetched: 0,
  inserted,
  updated: 0,
  deleted: 0,
  tableBytes: 8192,
  indexBytes: 0,
  xidAge: 10,
});
const snapshot = (at: number, statements: StatementRow[], tables: TableRow[]): Snapshot => ({
  server: "local",
  takenAt: new Date(at),
  version: "16.4",
  statementsSince: new Date(0),
  statements,
  sessions: [
    { role: "payments_app", database: "platform", state: "active" },
    { role: "profile_readonly", database: "platform", state: "idle in transaction" },
    { role: "platform_admin", database: "postgres", state: "idle" },
  ],
  connectionLimits: new Map(),
  databases: [],
  tables,
  indexes: [],
  replicas: [],
});

describe("buildStats", () => {
  const spec = loadSpec(input(devValues()));

  it("attributes by role and by schema in a shared database, ranks by time, and leaves other roles unattributed", () => {
    const snap = snapshot(
      10_000,
      [statement("payments_app", "1", 100, 2), statement("profile_app", "2", 300, 0.1), statement("platform_admin", "3", 7, 1)],
      [table("payments", 50), table("profile", 5)],
    );
    const r = buildStats("dev", spec, new Map([["local", snap]]));
    expect(r.services.slice(0, 2).map((s) => [s.service, s.rank, s.queries.calls, s.queries.totalMs])).toEqual([
      ["payments", 1, 100, 200],
      ["profile", 2, 300, 30],
    ]);
    const payments = r.services[0];
    expect(payments.queries.share).toBeCloseTo(200 / 230, 6);
    expect(payments.queries.perSecond).toBeCloseTo(10, 6);
    expect(payments.storage.rowsWritten).toBe(50);
    expect(payments.connections).toMatchObject({ active: 1, total: 1, limit: null });
    expect(r.services[1].connections).toMatchObject({ idleInTransaction: 1, total: 1 });
    expect(r.servers[0]).toMatchObject({ kind: "since reset", seconds: 10, unattributed: { calls: 7, totalMs: 7 } });
  });

  it("counts only what ran between two snapshots", () => {
    const before = snapshot(10_000, [statement("payments_app", "1", 100, 2)], [table("payments", 50, 3)]);
    const after = snapshot(
      12_000,
      [statement("payments_app", "1", 100, 2), statement("profile_app", "2", 40, 1)],
      [table("payments", 80, 3)],
    );
    const r = buildStats("dev", spec, new Map([["local", after]]), new Map([["local", before]]));
    expect(r.servers[0]).toMatchObject({ kind: "sampled", seconds: 2 });
    expect(r.services[0]).toMatchObject({ service: "profile", queries: { calls: 40, perSecond: 20 } });
    const payments = r.services.find((s) => s.service === "payments");
    expect(payments?.queries.calls).toBe(0);
    expect(payments?.storage.rowsWritten).toBe(30);
  });
});

describe("withReplica", () => {
  it("adds the replica's statements apart, its sessions, and its scans; sizes and writes stay the primary's", () => {
    const primary = snapshot(10_000, [statement("payments_app", "1", 10, 1)], [table("payments", 50, 3)]);
    const index = { database: "platform", schema: "payments", table: "t", name: "t_pkey", scans: 0, bytes: 8192, enforces: false };
    const replica = {
      ...snapshot(10_000, [statement("payments_readonly", "1", 7, 2)], [{ ...table("payments", 0, 4), tableBytes: 1 }]),
      indexes: [{ ...index, scans: 9 }],
    };
    const merged = withReplica({ ...primary, indexes: [index] }, replica, "local-ro");
    expect(merged.statements.map((s) => [s.role, s.queryid, s.calls])).toEqual([
      ["payments_app", "1", 10],
      ["payments_readonly", "local-ro:1", 7],
    ]);
    expect(merged.sessions).toHaveLength(6);
    expect(merged.tables[0]).toMatchObject({ seqScan: 7, inserted: 50, tableBytes: 8192 });
    expect(merged.indexes[0].scans).toBe(9);
    const r = buildStats("dev", loadSpec(input(devValues())), new Map([["local", merged]]));
    expect(r.servers[0].replicasRead).toEqual(["local-ro"]);
    expect(r.services.find((x) => x.service === "payments")?.unusedIndexes).toEqual([]);
  });
});

describe("serviceMetricData (what the publisher sends)", () => {
  const spec = loadSpec(input(devValues()));

  it("sends per service its connections, saturation, rate and latency at the window's end, and one heartbeat per server", () => {
    const limits = new Map([
      ["payments_app", 100],
      ["payments_readonly", 20],
      ["payments_migrator", 5],
    ]);
    const before = snapshot(10_000, [], []);
    const after = { ...snapshot(12_000, [statement("payments_app", "1", 40, 250)], []), connectionLimits: limits };
    const report = { ...buildStats("dev", spec, new Map([["local", after]]), new Map([["local", before]])), durationMs: 1 };
    const data = serviceMetricData(report, "dev");
    const at = new Date(12_000);
    expect(data[0]).toEqual({
      MetricName: "PublisherRuns",
      Dimensions: [
        { Name: "Environment", Value: "dev" },
        { Name: "Server", Value: "local" },
      ],
      Value: 1,
      Unit: "Count",
      Timestamp: at,
    });
    const of = (service: string) =>
      Object.fromEntries(
        data
          .filter((d) => d.Dimensions?.some((x) => x.Name === "Service" && x.Value === service))
          .map((d) => [d.MetricName, [d.Value, d.Unit]]),
      );
    expect(of("payments")).toEqual({
      Connections: [1, "Count"],
      ConnectionSaturation: [(100 * 1) / 125, "Percent"],
      IdleInTransaction: [0, "Count"],
      QueriesPerSecond: [20, "Count/Second"],
      SlowCalls: [40, "Count"],
      TransactionIdAge: [0, "Count"],
      LatencyMean: [250, "Milliseconds"],
      LatencyP95: [250, "Milliseconds"],
      LatencyP99: [250, "Milliseconds"],
    });
    // profile ran nothing in the window, and one of its logins is unlimited here: no latency, no saturation.
    expect(Object.keys(of("profile")).sort()).toEqual([
      "Connections",
      "IdleInTransaction",
      "QueriesPerSecond",
      "SlowCalls",
      "TransactionIdAge",
    ]);
    expect(of("profile").IdleInTransaction).toEqual([1, "Count"]);
    for (const d of data.slice(1)) {
      expect(d.Dimensions?.map((x) => x.Name)).toEqual(["Environment", "Server", "Service"]);
      expect(d.Timestamp).toEqual(at);
    }
    expect(new Set(data.slice(1).map((d) => d.Dimensions?.[2].Value))).toEqual(new Set(spec.services.map((s) => s.name)));
  });
});
