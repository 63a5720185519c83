/**
 * Back up one service. The same code runs on a laptop against the local S3 server and in the ECS
 * task against the AWS bucket.
 *
 * run: a read-only REPEATABLE READ session exports its snapshot; pg_dump (custom format) dumps
 * the service's schemas in exactly that snapshot with the service's read-only login, streamed
 * through a SHA-256 hasher into a multipart upload (no temporary file, bounded memory), while the
 * session counts rows and hashes the schema in the same snapshot. The manifest is written last.
 * Any failure (pg_dump, PostgreSQL, S3) aborts the upload and writes no manifest.
 * Restores and drills: restore.ts.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { Client, type ClientConfig, escapeIdentifier as q } from "pg";
import { type BackupManifest, type DumpStore, MANIFEST_FORMAT, newBackupId } from "./storage";
import { schemaHash, tableCounts, undeclaredSchemas } from "./snapshot";

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
  /** The service's roles: a schema one of them owns that is not in `schemas` stops the backup (never left behind). */
  readonly roles?: readonly string[];
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
  /** An export instead of a backup: its manifest format, who made it and why (exchange.ts). */
  readonly export?: { readonly format: BackupManifest["format"]; readonly exportedBy: string; readonly reason?: string };
}

/** libpq environment for the client tools: the password never appears on a command line. */
export function libpqEnv(c: Connection): NodeJS.ProcessEnv {
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

export function toolVersion(bin: string): string {
  return execFileSync(bin, ["--version"], { encoding: "utf8" })
    .trim()
    .replace(/^.*\(PostgreSQL\)\s*/, "");
}

/** A child's exit, with the end of its stderr. */
export function exited(child: ChildProcess, name: string): Promise<void> {
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

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Dump one service to the bucket; returns the committed manifest. */
export async function runBackup(storage: DumpStore, target: ServiceTarget, ctx: RunContext): Promise<BackupManifest> {
  const id = newBackupId();
  const startedAt = new Date().toISOString();
  const key = storage.dumpKey(target.service, id);
  const pgDump = path.join(ctx.clientTools(target.serverMajor), "pg_dump");
  const pgDumpVersion = toolVersion(pgDump);

  const snap = await session(target, target.database);
  let child: ChildProcess | undefined;
  try {
    await snap.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const left = target.roles ? await undeclaredSchemas(snap, target.roles, target.schemas) : [];
    if (left.length > 0) {
      throw new BackupError(
        `backup of ${target.service} refused, nothing written: schema${left.length > 1 ? "s" : ""} ${left.join(", ")} in database ${target.database} belong${left.length > 1 ? "" : "s"} to the service but ${left.length > 1 ? "are" : "is"} not declared, so no backup, export or move would carry ${left.length > 1 ? "them" : "it"}. Declare ${left.length > 1 ? "them" : "it"} (services.${target.service}.schemas) and run up, or move ${left.length > 1 ? "their" : "its"} objects into a declared schema (docs/service-teams.md)`,
      );
    }
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
      schemaHashAcrossMajors: await schemaHash(snap, target.schemas, { acrossMajors: true }),
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
      format: ctx.export?.format ?? MANIFEST_FORMAT,
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
      schemaHashAcrossMajors: s.value.schemaHashAcrossMajors,
      ...(ctx.export && { exportedBy: ctx.export.exportedBy, reason: ctx.export.reason }),
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
export async function verifyDump(storage: DumpStore, manifest: BackupManifest): Promise<void> {
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
      `checksum mismatch: ${storage.describe(manifest.dump.key)} has ${bytes} bytes with sha256 ${sha256}, the manifest of ${manifest.format === MANIFEST_FORMAT ? "backup" : "export"} ${manifest.id} says ${manifest.dump.bytes} bytes with sha256 ${manifest.dump.sha256}; it is corrupted or was replaced (${storage.whenCorrupted}). Nothing was restored.`,
    );
  }
}
