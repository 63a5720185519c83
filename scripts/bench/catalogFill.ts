/**
 * A synthesized stack's PostgreSQL resources as plain SQL, statement for statement what the
 * PostgreSQL provider issues for them (terraform-provider-postgresql:
 * CREATE ROLE with explicit attributes, GRANT for `roles`, CREATE DATABASE … OWNER, CREATE
 * SCHEMA … AUTHORIZATION, REVOKE ALL then GRANT for each Grant and DefaultPrivileges, CREATE
 * EXTENSION IF NOT EXISTS … SCHEMA).
 *
 * For benchmarks only: `bench:audit` fills a catalog with a thousand services' objects in
 * seconds so the audit's speed can be timed; `bench:apply` times it as the plain-SQL floor of
 * `pulumi up`. It proves nothing about what `pulumi up` leaves (it runs as the bootstrap
 * superuser): no test uses it; the audit's and the isolation's correctness are proven on stacks
 * applied through the real engine (test/helpers/appliedDevStack.ts, test/e2e).
 */
import type { Client } from "pg";
import { escapeIdentifier as q, escapeLiteral } from "pg";
import type { SynthResource } from "../../operations/stack/synth";
import { PG } from "../../policies/engine/graph";

const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);
const who = (role: string) => (role.toLowerCase() === "public" ? "PUBLIC" : q(role));

const ON: Record<string, (g: Record<string, unknown>) => string> = {
  database: (g) => `DATABASE ${q(String(g.database))}`,
  schema: (g) => `SCHEMA ${q(String(g.schema))}`,
  table: (g) => `ALL TABLES IN SCHEMA ${q(String(g.schema))}`,
  sequence: (g) => `ALL SEQUENCES IN SCHEMA ${q(String(g.schema))}`,
  function: (g) => `ALL FUNCTIONS IN SCHEMA ${q(String(g.schema))}`,
};
const DEFAULT_ON: Record<string, string> = { table: "TABLES", sequence: "SEQUENCES", function: "FUNCTIONS" };

/** Statements per database (`postgres` for cluster-wide ones), in the order the engine would apply them. */
export function materializeSql(resources: readonly SynthResource[], admin: string): Array<{ database: string; sql: string }> {
  const out: Array<{ database: string; sql: string }> = [];
  const on = (type: string) => resources.filter((r) => r.type === type);
  const roles = on(PG.role);
  for (const r of roles) {
    const p = r.props;
    const attrs = [
      p.login ? "LOGIN" : "NOLOGIN",
      p.superuser ? "SUPERUSER" : "NOSUPERUSER",
      p.createDatabase ? "CREATEDB" : "NOCREATEDB",
      p.createRole ? "CREATEROLE" : "NOCREATEROLE",
      p.replication ? "REPLICATION" : "NOREPLICATION",
      p.bypassRowLevelSecurity ? "BYPASSRLS" : "NOBYPASSRLS",
      p.inherit === false ? "NOINHERIT" : "INHERIT",
      p.connectionLimit !== undefined ? `CONNECTION LIMIT ${Number(p.connectionLimit)}` : "",
      p.login ? `PASSWORD ${escapeLiteral(`pw-${String(p.name)}`)}` : "",
    ];
    out.push({ database: "postgres", sql: `CREATE ROLE ${q(String(p.name))} ${attrs.filter(Boolean).join(" ")}` });
  }
  for (const r of roles) {
    for (const parent of list(r.props.roles)) out.push({ database: "postgres", sql: `GRANT ${q(parent)} TO ${q(String(r.props.name))}` });
    if (str(r.props.assumeRole)) {
      out.push({
        database: "postgres",
        sql: `ALTER ROLE ${q(String(r.props.name))} SET role = ${escapeLiteral(String(r.props.assumeRole))}`,
      });
    }
  }
  for (const g of on(PG.grantRole)) {
    out.push({ database: "postgres", sql: `GRANT ${q(String(g.props.grantRole))} TO ${q(String(g.props.role))}` });
  }
  for (const d of on(PG.database)) {
    const owner = str(d.props.owner) ?? admin;
    out.push({
      database: "postgres",
      sql: `CREATE DATABASE ${q(String(d.props.name))} OWNER ${q(owner)} TEMPLATE template0 ENCODING 'UTF8'`,
    });
  }
  for (const s of on(PG.schema)) {
    out.push({
      database: String(s.props.database),
      sql: `CREATE SCHEMA ${q(String(s.props.name))} AUTHORIZATION ${q(String(s.props.owner))}`,
    });
  }
  for (const g of on(PG.grant)) {
    const target = ON[String(g.props.objectType)](g.props);
    const role = who(String(g.props.role));
    out.push({ database: String(g.props.database), sql: `REVOKE ALL PRIVILEGES ON ${target} FROM ${role}` });
    const privileges = list(g.props.privileges);
    if (privileges.length > 0)
      out.push({ database: String(g.props.database), sql: `GRANT ${privileges.join(", ")} ON ${target} TO ${role}` });
  }
  for (const d of on(PG.defaultPrivileges)) {
    const inSchema = str(d.props.schema) ? ` IN SCHEMA ${q(String(d.props.schema))}` : "";
    const head = `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(String(d.props.owner))}${inSchema}`;
    const kind = DEFAULT_ON[String(d.props.objectType)];
    const role = who(String(d.props.role));
    const privileges = list(d.props.privileges);
    out.push({ database: String(d.props.database), sql: `${head} REVOKE ALL ON ${kind} FROM ${role}` });
    if (privileges.length > 0) {
      out.push({ database: String(d.props.database), sql: `${head} GRANT ${privileges.join(", ")} ON ${kind} TO ${role}` });
    }
  }
  for (const e of on(PG.extension)) {
    out.push({
      database: String(e.props.database),
      // As the provider: IF NOT EXISTS, in the schema when one is given.
      sql: `CREATE EXTENSION IF NOT EXISTS ${q(String(e.props.name))}${e.props.schema ? ` SCHEMA ${q(String(e.props.schema))}` : ""}`,
    });
  }
  return out;
}

/**
 * Run `materializeSql` as the bootstrap superuser: cluster-wide statements first (roles,
 * memberships, databases), then each database's own statements in order, one session per
 * database at a time (a thousand databases never hold a thousand connections).
 */
export async function materialize(
  resources: readonly SynthResource[],
  admin: string,
  connect: (database: string) => Promise<Client>,
): Promise<void> {
  const byDatabase = new Map<string, string[]>([["postgres", []]]);
  for (const { database, sql } of materializeSql(resources, admin)) {
    const statements = byDatabase.get(database) ?? [];
    statements.push(sql);
    byDatabase.set(database, statements);
  }
  for (const [database, statements] of byDatabase) {
    const c = await connect(database);
    try {
      for (const sql of statements) await c.query(sql);
    } finally {
      await c.end();
    }
  }
}
