/**
 * The live side of the audit: what a server's catalogs say, read in read-only sessions. Two
 * queries per server (roles with memberships, databases with their ACLs) and exactly one per
 * database (schemas, relations, columns, functions, default ACLs, foreign servers, user
 * mappings, subscriptions, extensions, as one JSON document), databases in parallel through a
 * bounded pool. ACLs come out of aclexplode() with PostgreSQL's own defaults (acldefault) filled
 * in where an object has none, so "never granted" and "granted by default" look the same as in
 * the server's permission checks.
 */
import pLimit from "p-limit";
import type { Client } from "pg";
import type { AclEntry, LiveDatabase, LiveDefaultAcl, LiveMembership, LiveObject, LiveRole, LiveServer } from "./model";

/** Opens a session on one database of the server; the caller's config makes it read-only. */
import type { Connect } from "../connect";

export type { Connect };

export interface CollectOptions {
  /** Databases read at the same time. @default 8 */
  readonly concurrency?: number;
}

/** `grantee`/`privilege` pairs of an ACL column, defaults filled in; grantee 0 is PUBLIC. */
const acl = (column: string, kind: string, owner: string) => `coalesce((
    SELECT json_agg(json_build_object(
      'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
      'privilege', a.privilege_type) ORDER BY 1)
    FROM aclexplode(coalesce(${column}, acldefault('${kind}', ${owner}))) a), '[]'::json)`;

const ROLES_SQL = `
SELECT rolname AS name, rolsuper AS superuser, rolinherit AS inherit, rolcreaterole AS createrole,
       rolcreatedb AS createdb, rolcanlogin AS login, rolreplication AS replication,
       rolbypassrls AS bypassrls,
       CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' THEN NULL
            ELSE to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END AS "validUntil"
FROM pg_roles ORDER BY rolname`;

/** PostgreSQL 16 records INHERIT per membership; before, the member's rolinherit decides. */
const membershipsSql = (versionNum: number) => `
SELECT r.rolname AS role, m.rolname AS member,
       ${versionNum >= 160000 ? "am.inherit_option" : "m.rolinherit"} AS inherit
FROM pg_auth_members am
JOIN pg_roles r ON r.oid = am.roleid
JOIN pg_roles m ON m.oid = am.member
ORDER BY 1, 2`;

const DATABASES_SQL = `
SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, d.datallowconn AS "allowConnections",
       ${acl("d.datacl", "d", "d.datdba")} AS acl
FROM pg_database d
WHERE NOT d.datistemplate
ORDER BY d.datname`;

/** Schemas the catalog reader skips: PostgreSQL's own. */
const USER_SCHEMA = `n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`;
/** Objects an extension created belong to the extension, which is reported on its own. */
const notExtensionMember = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '${catalog}'::regclass AND dep.objid = ${oid} AND dep.deptype = 'e')`;

/** The one query per database. */
export const DATABASE_SQL = `
SELECT json_build_object(
  'schemas', coalesce((
    SELECT json_agg(json_build_object('kind', 'schema', 'name', n.nspname, 'owner', pg_get_userbyid(n.nspowner),
                                      'acl', ${acl("n.nspacl", "n", "n.nspowner")}) ORDER BY n.nspname)
    FROM pg_namespace n WHERE ${USER_SCHEMA}), '[]'::json),
  'relations', coalesce((
    SELECT json_agg(json_build_object(
      'kind', CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END,
      'schema', n.nspname, 'name', c.relname, 'owner', pg_get_userbyid(c.relowner),
      'acl', ${acl("c.relacl", "r", "c.relowner")},
      'columnAcl', coalesce((
        SELECT json_agg(json_build_object(
          'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
          'privilege', a.privilege_type || '(' || att.attname || ')'))
        FROM pg_attribute att, aclexplode(att.attacl) a
        WHERE att.attrelid = c.oid AND att.attacl IS NOT NULL AND NOT att.attisdropped), '[]'::json))
      ORDER BY n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ${USER_SCHEMA} AND ${notExtensionMember("pg_class", "c.oid")}), '[]'::json),
  'functions', coalesce((
    SELECT json_agg(json_build_object(
      'kind', 'function', 'schema', n.nspname,
      'name', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
      'owner', pg_get_userbyid(p.proowner), 'acl', ${acl("p.proacl", "f", "p.proowner")})
      ORDER BY n.nspname, p.proname)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE ${USER_SCHEMA} AND ${notExtensionMember("pg_proc", "p.oid")}), '[]'::json),
  'defaultAcls', coalesce((
    SELECT json_agg(json_build_object(
      'owner', pg_get_userbyid(da.defaclrole),
      'schema', (SELECT nspname FROM pg_namespace WHERE oid = da.defaclnamespace),
      'objectType', CASE da.defaclobjtype WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'function'
                                          WHEN 'T' THEN 'type' WHEN 'n' THEN 'schema' ELSE da.defaclobjtype::text END,
      'acl', ${acl("da.defaclacl", "r", "da.defaclrole")}))
    FROM pg_default_acl da), '[]'::json),
  'foreignServers', coalesce((
    SELECT json_agg(json_build_object('name', s.srvname, 'wrapper', w.fdwname, 'owner', pg_get_userbyid(s.srvowner)))
    FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw), '[]'::json),
  'userMappings', coalesce((
    SELECT json_agg(json_build_object('server', um.srvname, 'user', um.usename)) FROM pg_user_mappings um), '[]'::json),
  'subscriptions', coalesce((
    SELECT json_agg(json_build_object('name', s.subname, 'owner', pg_get_userbyid(s.subowner)))
    FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())), '[]'::json),
  'extensions', coalesce((
    SELECT json_agg(json_build_object('name', e.extname, 'schema', n.nspname) ORDER BY e.extname)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace), '[]'::json)
) AS catalog`;

interface DatabaseRow {
  name: string;
  owner: string;
  allowConnections: boolean;
  acl: AclEntry[];
}

interface DatabaseCatalog {
  schemas: LiveObject[];
  relations: Array<LiveObject & { columnAcl: AclEntry[] }>;
  functions: LiveObject[];
  defaultAcls: LiveDefaultAcl[];
  foreignServers: LiveDatabase["foreignServers"];
  userMappings: LiveDatabase["userMappings"];
  subscriptions: LiveDatabase["subscriptions"];
  extensions: LiveDatabase["extensions"];
}

async function withSession<T>(connect: Connect, database: string, f: (c: Client) => Promise<T>): Promise<T> {
  const client = await connect(database);
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Read one server's catalogs. Databases that cannot be read carry `error` instead of content. */
export async function collectServer(name: string, connect: Connect, opts: CollectOptions = {}): Promise<LiveServer> {
  const started = performance.now();
  const { version, roles, memberships, databases } = await withSession(connect, "postgres", async (c) => {
    const v = await c.query<{ server_version: string; num: string }>(
      "SELECT current_setting('server_version') AS server_version, current_setting('server_version_num') AS num",
    );
    const num = Number(v.rows[0].num);
    const r = await c.query<LiveRole>(ROLES_SQL);
    const m = await c.query<LiveMembership>(membershipsSql(num));
    const d = await c.query<DatabaseRow>(DATABASES_SQL);
    return { version: v.rows[0].server_version, roles: r.rows, memberships: m.rows, databases: d.rows };
  });
  const limit = pLimit(Math.max(1, opts.concurrency ?? 8));
  const live = await Promise.all(
    databases.map((db) =>
      limit(async (): Promise<LiveDatabase> => {
        const base = { name: db.name, owner: db.owner, acl: db.acl };
        const empty = {
          schemas: [],
          objects: [],
          defaultAcls: [],
          foreignServers: [],
          userMappings: [],
          subscriptions: [],
          extensions: [],
        };
        if (!db.allowConnections) return { ...base, ...empty, error: "the database does not allow connections (datallowconn = false)" };
        try {
          const cat = await withSession(
            connect,
            db.name,
            async (c) => (await c.query<{ catalog: DatabaseCatalog }>(DATABASE_SQL)).rows[0].catalog,
          );
          const objects: LiveObject[] = [
            ...cat.relations.map(({ columnAcl, ...o }) => ({ ...o, acl: [...o.acl, ...columnAcl] })),
            ...cat.functions,
          ];
          return {
            ...base,
            schemas: cat.schemas,
            objects,
            defaultAcls: cat.defaultAcls,
            foreignServers: cat.foreignServers,
            userMappings: cat.userMappings,
            subscriptions: cat.subscriptions,
            extensions: cat.extensions,
          };
        } catch (e) {
          return { ...base, ...empty, error: message(e) };
        }
      }),
    ),
  );
  return { name, version, roles, memberships, databases: live, collectMs: Math.round(performance.now() - started) };
}
