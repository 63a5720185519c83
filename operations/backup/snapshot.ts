/**
 * What a backup promises about its content, read in the dump's own snapshot and again after a
 * restore: exact row counts per table, and a hash of the schema's canonical description.
 *
 * The description lists tables (kind), columns (position among live columns, type, NOT NULL,
 * default), constraints, indexes, sequences (type and parameters), views and functions (by the
 * md5 of their definition), each line with fully qualified names (search_path is empty while it
 * is read), sorted. Owners, privileges, OIDs and dropped columns are left out, so a restore with
 * --no-owner into another database hashes the same as its source.
 */
import { createHash } from "node:crypto";
import type { Client } from "pg";
import { escapeIdentifier as q } from "pg";
import type { TableCount } from "./storage";

const notExtensionMember = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;

const schemaLines = (acrossMajors: boolean) => `
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY($1::text[])),
rel AS (
  SELECT c.oid, c.relname, c.relkind, ns.nspname FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  WHERE ${notExtensionMember("pg_class", "c.oid")})
SELECT line FROM (
  SELECT format('schema %I', nspname) AS line FROM ns
  UNION ALL
  SELECT format('relation %I.%I %s', nspname, relname, relkind) FROM rel WHERE relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT format('column %I.%I #%s %I %s%s%s', rel.nspname, rel.relname,
                row_number() OVER (PARTITION BY rel.oid ORDER BY a.attnum), a.attname,
                format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
  FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f')
  UNION ALL
  SELECT format('constraint %I.%I %I %s', rel.nspname, rel.relname, con.conname, pg_get_constraintdef(con.oid))
  FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid${acrossMajors ? " WHERE con.contype <> 'n'" : ""}
  UNION ALL
  SELECT format('index %s', pg_get_indexdef(i.indexrelid)) FROM pg_index i JOIN rel ON rel.oid = i.indrelid
  UNION ALL
  SELECT format('sequence %I.%I %s %s %s %s %s %s', rel.nspname, rel.relname, format_type(s.seqtypid, NULL),
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
  FROM pg_sequence s JOIN rel ON rel.oid = s.seqrelid
  UNION ALL
  SELECT format('view %I.%I %s', rel.nspname, rel.relname, ${acrossMajors ? "''" : "md5(pg_get_viewdef(rel.oid))"}) FROM rel WHERE rel.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('function %I.%I(%s) %s', ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid), ${acrossMajors ? "pg_get_function_result(p.oid) || ' ' || md5(coalesce(p.prosrc, ''))" : "md5(pg_get_functiondef(p.oid))"})
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND ${notExtensionMember("pg_proc", "p.oid")}
) lines ORDER BY line COLLATE "C"`;

const TABLES = `
SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) AND NOT c.relispartition AND ${notExtensionMember("pg_class", "c.oid")}
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`;

/**
 * sha256 of the schemas' canonical description (see above). `acrossMajors`: the description two
 * PostgreSQL majors give alike, for an upgrade's before and after — views by their columns and
 * functions by their result type and source text rather than by deparsed definitions, and no
 * NOT NULL constraint rows: a new major deparses differently (16 stopped qualifying the columns
 * of a single-table view) and 18 lists NOT NULL as constraints.
 */
export async function schemaHash(c: Client, schemas: readonly string[], opts: { acrossMajors?: boolean } = {}): Promise<string> {
  await c.query("SET search_path = ''");
  const { rows } = await c.query<{ line: string }>(schemaLines(opts.acrossMajors === true), [schemas]);
  return createHash("sha256")
    .update(rows.map((r) => r.line).join("\n"))
    .digest("hex");
}

/** Exact row counts of every table in the schemas (partitioned tables counted once, at the parent). */
export async function tableCounts(c: Client, schemas: readonly string[]): Promise<TableCount[]> {
  const { rows } = await c.query<{ schema: string; name: string }>(TABLES, [schemas]);
  const out: TableCount[] = [];
  for (const t of rows) {
    const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${q(t.schema)}.${q(t.name)}`);
    out.push({ schema: t.schema, name: t.name, rows: Number(r.rows[0].n) });
  }
  return out;
}

/** Differences between two sets of counts, as readable lines; empty when equal. */
export function countDifferences(expected: readonly TableCount[], actual: readonly TableCount[]): string[] {
  const key = (t: TableCount) => `${t.schema}.${t.name}`;
  const got = new Map(actual.map((t) => [key(t), t.rows]));
  const out: string[] = [];
  for (const t of expected) {
    const n = got.get(key(t));
    if (n === undefined) out.push(`${key(t)}: missing (expected ${t.rows} rows)`);
    else if (n !== t.rows) out.push(`${key(t)}: ${n} rows, expected ${t.rows} (${n - t.rows > 0 ? "+" : ""}${n - t.rows})`);
    got.delete(key(t));
  }
  for (const [k, n] of got) out.push(`${k}: not in the backup (${n} rows)`);
  return out;
}

/** Schemas of the current database owned by one of `roles` and not among `declared`: a service's data the stack does not know. */
export async function undeclaredSchemas(c: Client, roles: readonly string[], declared: readonly string[]): Promise<string[]> {
  const { rows } = await c.query<{ name: string }>(
    `SELECT n.nspname AS name FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
      WHERE r.rolname = ANY($1::text[]) AND NOT n.nspname = ANY($2::text[]) ORDER BY 1`,
    [roles, declared],
  );
  return rows.map((r) => r.name);
}
