/**
 * Restore and drill one service: the dump is read twice, once to check size and SHA-256 against
 * the manifest (nothing touches the target until it matches), once into pg_restore
 * --single-transaction; then row counts and schema hash are compared with the manifest.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Client, escapeIdentifier as q } from "pg";
import { BackupError, type Connection, exited, libpqEnv, message, pgConfig, verifyDump } from "./runner";
import { type BackupManifest, type DumpStore, MANIFEST_FORMAT } from "./storage";
import { countDifferences, schemaHash, tableCounts } from "./snapshot";
export interface RestoreTarget {
  readonly connection: Connection;
  readonly database: string;
  /** Drop the objects in the backed-up schemas first when the target already has objects (the schemas, their grants and default privileges stay). */
  readonly overwrite?: boolean;
  /** Create the database when it does not exist. @default true */
  readonly create?: boolean;
  /**
   * The service's owner role: when it exists on the target and the target login may act as it,
   * the restore runs as that role (pg_restore --role), so restored objects belong to it and the
   * schema's default privileges grant the service's logins, exactly as after `pulumi up`.
   */
  readonly ownerRole?: string;
  /**
   * Only these schemas decide whether the target "has data" (an import into a service's schema
   * in a database it shares with other services); by default every user schema of the database.
   */
  readonly scope?: readonly string[];
  /** The caller has just checked the dump against the manifest (verifyDump): it is not read a second time for that. */
  readonly verified?: boolean;
  /** Refuse, before touching the target, when the restore cannot act as `ownerRole` (an import: the target's grants must hold). */
  readonly requireOwnerRole?: boolean;
}

export interface RestoreResult {
  readonly backup: string;
  readonly service: string;
  readonly database: string;
  /** The role the restored objects belong to (the service's owner role, or the target login). */
  readonly restoredAs: string;
  readonly tables: number;
  readonly rows: number;
  /** Verification, restore and comparison, in seconds. */
  readonly seconds: number;
}

/** "backup <id>" or "export <id>", for messages. */
const what = (m: BackupManifest) => `${m.format === MANIFEST_FORMAT ? "backup" : "export"} ${m.id}`;

/**
 * The tables (and views, sequences…) in user schemas of a database, or in the given schemas only
 * (what makes it "not empty"): at most six, enough for `listTables`.
 */
export async function userTables(c: Client, scope?: readonly string[]): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
       AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
     ORDER BY 1 LIMIT 6`,
    [scope ? [...scope] : null],
  );
  return rows.map((r) => r.t);
}

/** Up to five of `userTables`, and "…" when there are more. */
export const listTables = (tables: readonly string[]) => `${tables.slice(0, 5).join(", ")}${tables.length > 5 ? ", …" : ""}`;

/** The role a restore acts as, and how to give back what acting as it took. */
interface OwnerAccess {
  readonly role: string;
  release(): Promise<void>;
}

/**
 * Act as the service's owner role: directly when the login may SET ROLE to it; otherwise by
 * granting itself the membership for the restore and revoking it afterwards, as the PostgreSQL
 * provider does for CREATE DATABASE … OWNER (a CREATEROLE admin holds ADMIN OPTION on the roles
 * it created). When neither works, or there is no such role, the restore acts as the login.
 */
async function ownerAccess(admin: Client, ownerRole: string | undefined): Promise<OwnerAccess> {
  const { rows } = await admin.query<{ me: string; exists: boolean; usable: boolean }>(
    // SET ROLE needs the membership's SET option from PostgreSQL 16 on, plain membership before.
    `SELECT current_user AS me, r.oid IS NOT NULL AS exists,
            coalesce(CASE WHEN current_setting('server_version_num')::int >= 160000 THEN pg_has_role(current_user, r.oid, 'SET')
                          ELSE pg_has_role(current_user, r.oid, 'MEMBER') END, false) AS usable
     FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = $1`,
    [ownerRole ?? ""],
  );
  const { me, exists, usable } = rows[0];
  const none = { role: me, release: async () => undefined };
  if (!ownerRole || !exists) return none;
  if (usable) return { role: ownerRole, release: async () => undefined };
  try {
    await admin.query(`GRANT ${q(ownerRole)} TO CURRENT_USER`);
  } catch {
    return none;
  }
  return { role: ownerRole, release: () => admin.query(`REVOKE ${q(ownerRole)} FROM CURRENT_USER`).then(() => undefined) };
}

/**
 * Make sure the target database exists: created when missing by the target login (which can
 * therefore drop it again, as drills do), closed to PUBLIC like every service database, the role
 * the restore acts as allowed to connect and create its schemas there.
 */
async function ensureDatabase(admin: Client, target: RestoreTarget, actingAs: string): Promise<void> {
  const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [target.database]);
  if (rowCount) return;
  if (target.create === false) throw new BackupError(`the target database ${target.database} does not exist`);
  try {
    await admin.query(`CREATE DATABASE ${q(target.database)}`);
    await admin.query(`REVOKE ALL ON DATABASE ${q(target.database)} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT, CREATE ON DATABASE ${q(target.database)} TO ${q(actingAs)}`);
  } catch (e) {
    throw new BackupError(`cannot create the target database ${target.database}: ${message(e)}`);
  }
}

/** A session of the target login; a failure names where, never the password. */
async function targetSession(c: Connection, database: string): Promise<Client> {
  const client = new Client(pgConfig(c, database));
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw new BackupError(`cannot connect to the target ${c.host}:${c.port}/${database} as ${c.user}: ${message(e)}`);
  }
  return client;
}

/** Objects in a schema that are not part of an extension, as DROP statements (CASCADE: order does not matter). */
const DROP_SCHEMA_CONTENTS = `
SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname) AS stmt
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', n.nspname, t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r', 'm')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')`;

/** The dump's table of contents (`pg_restore -l`), read from the start of the object. */
async function tableOfContents(storage: DumpStore, manifest: BackupManifest, pgRestore: string): Promise<string> {
  const list = spawn(pgRestore, ["-l"], { stdio: ["pipe", "pipe", "pipe"] });
  let toc = "";
  list.stdout.on("data", (d: Buffer) => (toc += d.toString()));
  const done = exited(list, "pg_restore -l");
  const body = await storage.openDump(manifest);
  // pg_restore -l stops reading once it has the table of contents: the rest is not needed.
  list.stdin.on("error", () => undefined);
  body.pipe(list.stdin);
  try {
    await done;
  } finally {
    body.destroy();
  }
  return toc;
}

/** The list for `pg_restore -L`: the archive's entries in order, `CREATE SCHEMA` commented out for schemas the target has. */
export function restoreList(toc: string, existingSchemas: ReadonlySet<string>): string {
  return toc
    .split("\n")
    .map((line) => {
      const m = /^\d+; \d+ \d+ SCHEMA - (\S+) /.exec(line);
      return m && existingSchemas.has(m[1]) ? `;${line}` : line;
    })
    .join("\n");
}

/** Restore a verified backup into a new or empty database (or over its own schemas with `overwrite`). */
export async function restoreBackup(
  storage: DumpStore,
  manifest: BackupManifest,
  target: RestoreTarget,
  clientTools: (major: string) => string,
): Promise<RestoreResult> {
  const started = performance.now();
  if (!target.verified) await verifyDump(storage, manifest);

  const admin = await targetSession(target.connection, "postgres");
  const access = await ownerAccess(admin, target.ownerRole);
  let c: Client | undefined;
  try {
    if (target.requireOwnerRole && access.role !== target.ownerRole) {
      throw new BackupError(
        `${target.connection.user} cannot act as ${String(target.ownerRole)} on the target (missing role, or no membership and no ADMIN OPTION to grant it); restored objects would not belong to the service and its grants would not hold. Nothing was restored.`,
      );
    }
    await ensureDatabase(admin, target, access.role);
    c = await targetSession(target.connection, target.database);
    const existing = await userTables(c, target.scope);
    if (existing.length > 0) {
      if (!target.overwrite) {
        throw new BackupError(
          `the target database ${target.database} is not empty (${listTables(existing)}); restore into a new or empty database, or pass --overwrite to drop the objects in the schemas ${manifest.schemas.join(", ")} there first`,
        );
      }
      // The objects go; the schemas stay, with the grants and default privileges the platform gave them.
      await c.query("BEGIN");
      for (const schema of manifest.schemas) {
        for (const { stmt } of (await c.query<{ stmt: string }>(DROP_SCHEMA_CONTENTS, [schema])).rows) await c.query(stmt);
      }
      await c.query("COMMIT");
    }
    const { rows: schemaRows } = await c.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])", [
      [...manifest.schemas],
    ]);
    const restoredAs = access.role;

    const pgRestore = path.join(clientTools(manifest.pgDumpVersion.split(".")[0]), "pg_restore");
    const listFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-restore-")), "restore.list");
    fs.writeFileSync(
      listFile,
      restoreList(await tableOfContents(storage, manifest, pgRestore), new Set(schemaRows.map((r) => r.nspname))),
      { mode: 0o600 },
    );
    const t = target.connection;
    const args = ["-h", t.host, "-p", String(t.port), "-U", t.user, "-d", target.database, "--no-owner", "--no-acl", "--exit-on-error"];
    args.push("--single-transaction", "--no-password", "-L", listFile);
    if (restoredAs !== t.user) args.push(`--role=${restoredAs}`);
    const restore = spawn(pgRestore, args, { env: libpqEnv(t), stdio: ["pipe", "ignore", "pipe"] });
    const done = exited(restore, "pg_restore");
    const body: Readable = await storage.openDump(manifest);
    await Promise.all([pipeline(body, restore.stdin).catch(() => undefined), done])
      .catch((e: unknown) => {
        throw new BackupError(`restore of ${what(manifest)} into ${target.database} failed (rolled back): ${message(e)}`);
      })
      .finally(() => fs.rmSync(path.dirname(listFile), { recursive: true, force: true }));

    const tables = await tableCounts(c, manifest.schemas);
    const differences = countDifferences(manifest.tables, tables);
    const hash = await schemaHash(c, manifest.schemas);
    if (hash !== manifest.schemaHash) differences.push(`schema hash ${hash} differs from the manifest's ${manifest.schemaHash}`);
    if (differences.length > 0) {
      throw new BackupError(`restore of ${what(manifest)} does not match its manifest:\n  ${differences.join("\n  ")}`);
    }
    return {
      backup: manifest.id,
      service: manifest.service,
      database: target.database,
      restoredAs,
      tables: tables.length,
      rows: tables.reduce((n, x) => n + x.rows, 0),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await c?.end().catch(() => undefined);
    await access.release().catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}
