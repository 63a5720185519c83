/**
 * Back up, restore and drill one service. The same code runs on a laptop against the local S3
 * server and in the ECS task against the AWS bucket.
 *
 * run: a read-only REPEATABLE READ session exports its snapshot; pg_dump (custom format) dumps
 * the service's schemas in exactly that snapshot with the service's read-only login, streamed
 * through a SHA-256 hasher into a multipart upload (no temporary file, bounded memory), while the
 * session counts rows and hashes the schema in the same snapshot. The manifest is written last.
 * Any failure (pg_dump, PostgreSQL, S3) aborts the upload and writes no manifest.
 *
 * restore: the dump is read twice: once to check size and SHA-256 against the manifest (nothing
 * touches the target until it matches), once into pg_restore --single-transaction; then row
 * counts and schema hash are compared with the manifest.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Client, type ClientConfig, escapeIdentifier as q } from "pg";
import { type BackupManifest, type BackupStorage, MANIFEST_FORMAT, newBackupId } from "./storage";
import { countDifferences, schemaHash, tableCounts } from "./snapshot";

export class BackupError extends Error {}

/** How to reach one service's data, with whose privileges. */
export interface ServiceTarget {
  readonly service: string;
  readonly server: string;
  readonly database: string;
  readonly schemas: readonly string[];
  /** PostgreSQL major version of the server (selects the client tools). */
  readonly serverMajor: string;
  /** Host (or socket folder), port, user, password, TLS, for node-postgres and the client tools. */
  readonly connection: Connection;
  /** SET ROLE to this login after connecting (local servers: the bootstrap superuser becomes the read-only login). */
  readonly role?: string;
  /** The login whose privileges the dump runs with. */
  readonly dumpedAs: string;
}

export interface Connection {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  /** libpq sslmode; undefined for sockets. */
  readonly sslMode?: string;
}

export interface RunContext {
  readonly stack: string;
  readonly environment: string;
  /** Where the client tools of each major come from. */
  readonly clientTools: (major: string) => string;
  readonly progress?: (service: string, bytes: number) => void;
}

/** libpq environment for the client tools: the password never appears on a command line. */
function libpqEnv(c: Connection): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: "15" };
  delete env.PGPASSWORD;
  if (c.password !== undefined) env.PGPASSWORD = c.password;
  if (c.sslMode) env.PGSSLMODE = c.sslMode;
  return env;
}

export function pgConfig(c: Connection, database: string): ClientConfig {
  const ssl =
    c.sslMode && c.sslMode !== "disable" ? { rejectUnauthorized: c.sslMode === "verify-full" || c.sslMode === "verify-ca" } : undefined;
  return { host: c.host, port: c.port, user: c.user, password: c.password, database, ssl, application_name: "db-platform-backup" };
}

async function session(target: { connection: Connection; role?: string }, database: string): Promise<Client> {
  const client = new Client(pgConfig(target.connection, database));
  try {
    await client.connect();
    if (target.role) await client.query(`SET ROLE ${q(target.role)}`);
  } catch (e) {
    await client.end().catch(() => undefined);
    // A missing database (3D000) or role (42704) means the stack was never applied to this server.
    const code = (e as { code?: string }).code;
    const hint = code === "3D000" || code === "42704" ? " (is the stack applied to this server? pulumi up)" : "";
    throw new BackupError(
      `cannot connect to ${target.connection.host}:${target.connection.port}/${database} as ${target.connection.user}${target.role ? ` (SET ROLE ${target.role})` : ""}: ${(e as Error).message}${hint}`,
    );
  }
  return client;
}

function toolVersion(bin: string): string {
  return execFileSync(bin, ["--version"], { encoding: "utf8" })
    .trim()
    .replace(/^.*\(PostgreSQL\)\s*/, "");
}

/** A child's exit, with the end of its stderr. */
function exited(child: ChildProcess, name: string): Promise<void> {
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.on("error", (e) => reject(new BackupError(`${name} could not start: ${e.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new BackupError(`${name} ${signal ? `was killed (${signal})` : `exited with code ${code}`}: ${stderr.trim() || "no message"}`),
        );
    });
  });
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Dump one service to the bucket; returns the committed manifest. */
export async function runBackup(storage: BackupStorage, target: ServiceTarget, ctx: RunContext): Promise<BackupManifest> {
  const id = newBackupId();
  const startedAt = new Date().toISOString();
  const key = storage.dumpKey(target.service, id);
  const pgDump = path.join(ctx.clientTools(target.serverMajor), "pg_dump");
  const pgDumpVersion = toolVersion(pgDump);

  const snap = await session(target, target.database);
  let child: ChildProcess | undefined;
  try {
    await snap.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const { rows } = await snap.query<{ snapshot: string; version: string }>(
      "SELECT pg_export_snapshot() AS snapshot, current_setting('server_version') AS version",
    );
    const { snapshot, version } = rows[0];

    const c = target.connection;
    const args = ["-h", c.host, "-p", String(c.port), "-U", c.user, "-d", target.database, "--format=custom", `--snapshot=${snapshot}`];
    args.push("--lock-wait-timeout=60000", "--no-password");
    if (target.role) args.push(`--role=${target.role}`);
    for (const s of target.schemas) args.push(`--schema=${s}`);
    const dump = spawn(pgDump, args, { env: libpqEnv(c), stdio: ["ignore", "pipe", "pipe"] });
    child = dump;
    const dumpDone = exited(dump, "pg_dump");

    // The upload sees the end of the stream only once pg_dump has exited 0: a dump that fails
    // half-way never completes the multipart upload.
    const hash = createHash("sha256");
    let bytes = 0;
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    dump.stdout.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (!body.write(chunk)) {
        dump.stdout.pause();
        body.once("drain", () => dump.stdout.resume());
      }
    });
    const stdoutEnded = new Promise<void>((resolve) => dump.stdout.once("end", resolve).once("close", resolve));
    const dumped = Promise.all([dumpDone, stdoutEnded]).then(
      () => void body.end(),
      (e: unknown) => {
        body.destroy(e instanceof Error ? e : new Error(String(e)));
        throw e;
      },
    );
    const uploaded = storage.uploadDump(key, body, ctx.progress && ((n) => ctx.progress?.(target.service, n)));
    const content = (async () => ({
      tables: await tableCounts(snap, target.schemas),
      schemaHash: await schemaHash(snap, target.schemas),
    }))().catch((e: unknown) => {
      throw new BackupError(`reading row counts and schema in the dump's snapshot: ${message(e)}`);
    });
    // Nobody reads pg_dump's output once the upload or the snapshot session has failed: stop it.
    let stopCause: unknown;
    const stopDump = (cause?: unknown) => {
      if (dump.exitCode !== null || dump.signalCode !== null) return;
      stopCause ??= cause;
      dump.kill("SIGKILL");
      // Its output may sit paused behind a dead upload: drop it, or the pipe (and the child's
      // 'close') would wait for a reader forever.
      dump.stdout.destroy();
    };
    uploaded.catch(stopDump);
    content.catch(stopDump);

    const [d, u, s] = await Promise.allSettled([dumped, uploaded, content]);
    if (d.status === "rejected" || u.status === "rejected" || s.status === "rejected") {
      stopDump();
      await storage.deleteQuietly(key);
      // pg_dump's own error says most, unless it was stopped because the upload or the snapshot
      // session failed first.
      const reasons = [d, u, s].filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as unknown);
      const first = stopCause ?? reasons[0];
      throw new BackupError(`backup of ${target.service} failed, no manifest written: ${message(first)}`);
    }
    await snap.query("COMMIT");

    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      id,
      stack: ctx.stack,
      environment: ctx.environment,
      service: target.service,
      server: target.server,
      database: target.database,
      schemas: [...target.schemas],
      serverVersion: version,
      pgDumpVersion,
      dumpedAs: target.dumpedAs,
      startedAt,
      finishedAt: new Date().toISOString(),
      dump: { key, bytes, sha256: hash.digest("hex"), versionId: u.value.versionId },
      tables: s.value.tables,
      schemaHash: s.value.schemaHash,
    };
    try {
      await storage.putManifest(manifest);
    } catch (e) {
      await storage.deleteQuietly(key);
      throw new BackupError(`backup of ${target.service} failed, no manifest written: ${message(e)}`);
    }
    return manifest;
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await snap.end().catch(() => undefined);
  }
}

/** Read the whole dump and check its size and SHA-256 against the manifest. */
export async function verifyDump(storage: BackupStorage, manifest: BackupManifest): Promise<void> {
  const hash = createHash("sha256");
  let bytes = 0;
  const body = await storage.openDump(manifest);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const sha256 = hash.digest("hex");
  if (sha256 !== manifest.dump.sha256 || bytes !== manifest.dump.bytes) {
    throw new BackupError(
      `checksum mismatch: ${manifest.dump.key} has ${bytes} bytes with sha256 ${sha256}, the manifest of backup ${manifest.id} says ${manifest.dump.bytes} bytes with sha256 ${manifest.dump.sha256}; the object is corrupted or was replaced (the bucket is versioned: an earlier version may be intact). Nothing was restored.`,
    );
  }
}

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

/** The tables in user schemas of a database (what makes it "not empty"). */
async function userTables(c: Client): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
     ORDER BY 1 LIMIT 5`,
  );
  return rows.map((r) => r.t);
}

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
async function tableOfContents(storage: BackupStorage, manifest: BackupManifest, pgRestore: string): Promise<string> {
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
  storage: BackupStorage,
  manifest: BackupManifest,
  target: RestoreTarget,
  clientTools: (major: string) => string,
): Promise<RestoreResult> {
  const started = performance.now();
  await verifyDump(storage, manifest);

  const admin = await targetSession(target.connection, "postgres");
  const access = await ownerAccess(admin, target.ownerRole);
  let c: Client | undefined;
  try {
    await ensureDatabase(admin, target, access.role);
    c = await targetSession(target.connection, target.database);
    const existing = await userTables(c);
    if (existing.length > 0) {
      if (!target.overwrite) {
        throw new BackupError(
          `the target database ${target.database} is not empty (${existing.join(", ")}${existing.length === 5 ? ", …" : ""}); restore into a new or empty database, or pass --overwrite to drop the objects in the schemas ${manifest.schemas.join(", ")} there first`,
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
        throw new BackupError(`restore of backup ${manifest.id} into ${target.database} failed (rolled back): ${message(e)}`);
      })
      .finally(() => fs.rmSync(path.dirname(listFile), { recursive: true, force: true }));

    const tables = await tableCounts(c, manifest.schemas);
    const differences = countDifferences(manifest.tables, tables);
    const hash = await schemaHash(c, manifest.schemas);
    if (hash !== manifest.schemaHash) differences.push(`schema hash ${hash} differs from the manifest's ${manifest.schemaHash}`);
    if (differences.length > 0) {
      throw new BackupError(`restore of backup ${manifest.id} does not match its manifest:\n  ${differences.join("\n  ")}`);
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
