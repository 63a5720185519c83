/**
 * The isolation matrix of the dev stack's services (test/helpers/appliedDevStack.ts), shared by the
 * end-to-end suites that must prove it holds: after `up` and through the pooler
 * (test/e2e/isolation.e2e.test.ts), after two rotations, and after a point-in-time restore in place
 * (test/e2e/pointInTime.e2e.test.ts). Every cell is a statement by one service's login that must
 * succeed or fail with PostgreSQL's "insufficient privilege" (42501).
 */
import { attempt } from "./sql";

export const DENIED = "42501";
/** PgBouncer's refusal of a login it does not admit to a database (its HBA file, or a failed authentication). */
export const REFUSED_BY_POOLER = "08P01";
/** The logins whose URLs go through the pooler when their service has a pool. */
export const POOLED = new Set(["app", "readonly"]);
export type Outcome = "ok" | string;

export const SERVICES: Record<string, { database: string; logins: string[] }> = {
  inventory: { database: "inventory_db", logins: ["app", "readonly", "migrator"] },
  orders: { database: "orders_db", logins: ["app", "readonly", "migrator"] },
  payments: { database: "platform", logins: ["app", "readonly", "migrator"] },
  profile: { database: "platform", logins: ["app", "readonly", "migrator"] },
  "sv-sdk": { database: "sv_sdk_db", logins: ["app", "readonly", "migrator", "auditor"] },
};
export const DATABASES = ["inventory_db", "orders_db", "platform", "sv_sdk_db"];

/** One cell: who, where, what, and what PostgreSQL must answer. */
export interface Check {
  readonly service: string;
  readonly login: string;
  readonly database: string;
  readonly sql?: string;
  readonly expect: Outcome;
  readonly what: string;
}

export function connectChecks(): Check[] {
  const out: Check[] = [];
  for (const [service, s] of Object.entries(SERVICES)) {
    for (const login of s.logins) {
      for (const database of DATABASES) {
        out.push({ service, login, database, expect: database === s.database ? "ok" : DENIED, what: "connect" });
      }
    }
  }
  return out;
}

/** Within each service: read, write, create, temporary tables, sequences, functions, scoped roles. */
export const PRIVILEGE_CHECKS: Check[] = [
  // read and write
  {
    service: "inventory",
    login: "app",
    database: "inventory_db",
    sql: "INSERT INTO inventory.items (name) VALUES ('a')",
    expect: "ok",
    what: "write",
  },
  { service: "inventory", login: "app", database: "inventory_db", sql: "SELECT * FROM inventory.items", expect: "ok", what: "read" },
  { service: "inventory", login: "readonly", database: "inventory_db", sql: "SELECT * FROM inventory.items", expect: "ok", what: "read" },
  {
    service: "inventory",
    login: "readonly",
    database: "inventory_db",
    sql: "INSERT INTO inventory.items (name) VALUES ('b')",
    expect: DENIED,
    what: "write",
  },
  { service: "inventory", login: "readonly", database: "inventory_db", sql: "DELETE FROM inventory.items", expect: DENIED, what: "write" },
  {
    service: "payments",
    login: "app",
    database: "platform",
    sql: "INSERT INTO payments.payments (amount) VALUES (1)",
    expect: "ok",
    what: "write",
  },
  { service: "payments", login: "readonly", database: "platform", sql: "SELECT * FROM payments.payments", expect: "ok", what: "read" },
  // create: only the migrator (as the owner role)
  {
    service: "inventory",
    login: "app",
    database: "inventory_db",
    sql: "CREATE TABLE inventory.by_app (x int)",
    expect: DENIED,
    what: "create",
  },
  {
    service: "inventory",
    login: "readonly",
    database: "inventory_db",
    sql: "CREATE TABLE inventory.by_ro (x int)",
    expect: DENIED,
    what: "create",
  },
  {
    service: "inventory",
    login: "app",
    database: "inventory_db",
    sql: "CREATE TABLE public.by_app (x int)",
    expect: DENIED,
    what: "create in public",
  },
  { service: "inventory", login: "app", database: "inventory_db", sql: "CREATE SCHEMA rogue", expect: DENIED, what: "create schema" },
  {
    service: "payments",
    login: "migrator",
    database: "platform",
    sql: "CREATE TABLE payments.migrated (x int)",
    expect: "ok",
    what: "migrate",
  },
  {
    service: "payments",
    login: "migrator",
    database: "platform",
    sql: "CREATE TABLE public.rogue (x int)",
    expect: DENIED,
    what: "create in public",
  },
  // temporary tables
  {
    service: "inventory",
    login: "app",
    database: "inventory_db",
    sql: "CREATE TEMP TABLE t (x int)",
    expect: DENIED,
    what: "temporary table",
  },
  {
    service: "inventory",
    login: "readonly",
    database: "inventory_db",
    sql: "CREATE TEMP TABLE t (x int)",
    expect: DENIED,
    what: "temporary table",
  },
  { service: "payments", login: "app", database: "platform", sql: "CREATE TEMP TABLE t (x int)", expect: DENIED, what: "temporary table" },
  // sequences
  { service: "orders", login: "app", database: "orders_db", sql: "SELECT nextval('orders.orders_id_seq')", expect: "ok", what: "sequence" },
  {
    service: "orders",
    login: "readonly",
    database: "orders_db",
    sql: "SELECT nextval('orders.orders_id_seq')",
    expect: DENIED,
    what: "sequence",
  },
  // functions: writers only (PUBLIC's default EXECUTE is revoked)
  { service: "inventory", login: "app", database: "inventory_db", sql: "SELECT inventory.item_count()", expect: "ok", what: "function" },
  {
    service: "inventory",
    login: "readonly",
    database: "inventory_db",
    sql: "SELECT inventory.item_count()",
    expect: DENIED,
    what: "function",
  },
  // scoped roles: the auditor reads audit only
  { service: "sv-sdk", login: "auditor", database: "sv_sdk_db", sql: "SELECT * FROM audit.events", expect: "ok", what: "scoped read" },
  { service: "sv-sdk", login: "auditor", database: "sv_sdk_db", sql: "SELECT * FROM auth.users", expect: DENIED, what: "scoped read" },
  {
    service: "sv-sdk",
    login: "auditor",
    database: "sv_sdk_db",
    sql: "INSERT INTO audit.events VALUES (now())",
    expect: DENIED,
    what: "scoped write",
  },
  { service: "sv-sdk", login: "readonly", database: "sv_sdk_db", sql: "SELECT * FROM auth.users", expect: "ok", what: "read all schemas" },
  // neighbours' schemas in the shared database
  {
    service: "payments",
    login: "app",
    database: "platform",
    sql: "SELECT * FROM profile.profiles",
    expect: DENIED,
    what: "neighbour read",
  },
  {
    service: "profile",
    login: "app",
    database: "platform",
    sql: "SELECT * FROM payments.payments",
    expect: DENIED,
    what: "neighbour read",
  },
  {
    service: "profile",
    login: "readonly",
    database: "platform",
    sql: "SELECT * FROM payments.payments",
    expect: DENIED,
    what: "neighbour read",
  },
  {
    service: "profile",
    login: "migrator",
    database: "platform",
    sql: "CREATE TABLE payments.intruder (x int)",
    expect: DENIED,
    what: "neighbour create",
  },
  {
    service: "profile",
    login: "migrator",
    database: "platform",
    sql: "DROP TABLE payments.payments",
    expect: DENIED,
    what: "neighbour drop",
  },
];

/** Objects the migrator creates after `up`: the default privileges must cover them. */
export const FUTURE_CHECKS: Check[] = [
  {
    service: "orders",
    login: "migrator",
    database: "orders_db",
    sql: "CREATE TABLE orders.later (id serial PRIMARY KEY, note text)",
    expect: "ok",
    what: "migrate",
  },
  {
    service: "orders",
    login: "app",
    database: "orders_db",
    sql: "INSERT INTO orders.later (note) VALUES ('x')",
    expect: "ok",
    what: "future write",
  },
  { service: "orders", login: "readonly", database: "orders_db", sql: "SELECT * FROM orders.later", expect: "ok", what: "future read" },
  {
    service: "orders",
    login: "readonly",
    database: "orders_db",
    sql: "INSERT INTO orders.later (note) VALUES ('y')",
    expect: DENIED,
    what: "future write",
  },
  {
    service: "inventory",
    login: "app",
    database: "orders_db",
    sql: "SELECT * FROM orders.later",
    expect: DENIED,
    what: "future neighbour",
  },
];

/**
 * Run the cells with `urlOf` giving each login's URL (direct, pooled, or a credential after
 * rotation): every cell's label with what it must answer, beside what it answered, so one
 * comparison shows every wrong cell at once.
 */
export async function runMatrix(
  checks: readonly Check[],
  urlOf: (check: Check) => { url: string; pooled: boolean },
  tag = "",
): Promise<{ got: string[]; want: string[]; passed: string[] }> {
  const got: string[] = [];
  const want: string[] = [];
  const passed: string[] = [];
  for (const check of checks) {
    const { url, pooled } = urlOf(check);
    const c = pooled && check.expect === DENIED && check.what === "connect" ? { ...check, expect: REFUSED_BY_POOLER } : check;
    const outcome = await attempt(url, c.database, c.sql);
    const label = `${c.service}_${c.login}${tag} ${c.what} in ${c.database}${c.sql ? `: ${c.sql}` : ""}${pooled ? " (pooled)" : ""}`;
    const ok = c.expect.split("|").includes(outcome);
    got.push(`${label} -> ${ok ? c.expect : outcome}`);
    want.push(`${label} -> ${c.expect}`);
    if (ok) passed.push(label);
  }
  return { got, want, passed };
}
