/**
 * `db-platform export` / `import`: one service's data from one environment's stack to another's
 * (seed 004: environments never share a server, a database or a bucket; data crosses only by an
 * explicit, consented export and import).
 *
 * An export is a backup made to leave its environment: the same pg_dump with the service's
 * read-only login in one snapshot, the same manifest (source stack and environment, service,
 * time, row counts per table, schema hash, the dump's SHA-256) with format
 * `db-platform-export/1`, who exported it and why. It is written to a folder (files 0600) or an
 * S3 location the two environments agree on, never into either stack's backup bucket.
 *
 * An import names the target stack and service and is confirmed (`--confirm <stack>/<service>`
 * or typed on a terminal). It reads only the export and the target stack's own servers; refuses
 * an export of the same stack, schemas the target service does not have, a target with data
 * unless `--replace` (which backs the target up first); verifies the dump's checksum before
 * anything is touched; restores in one transaction as the target's owner role, so the target's
 * grants and default privileges apply; and compares row counts and schema hash with the manifest.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3ClientConfig } from "@aws-sdk/client-s3";
import { Client } from "pg";
import type { ServiceSpec } from "../../components/spec";
import {
  type BackupContext,
  BackupCommandError,
  backupRun,
  clientTools,
  selectServices,
  serverAdminConnection,
  serverOf,
  serviceTarget,
} from "./command";
import { listTables, type RestoreResult, restoreBackup, userTables } from "./restore";
import { BackupError, type Connection, message, pgConfig, runBackup, verifyDump } from "./runner";
import { type BackupManifest, BackupStorage, BackupStorageError, type DumpStore, EXPORT_FORMAT, parseManifest } from "./storage";

/** Where an export goes or comes from: a folder, or an S3 bucket and prefix (with an endpoint for S3-compatible servers). */
export type ExchangeLocation =
  | { readonly kind: "folder"; readonly dir: string }
  | { readonly kind: "s3"; readonly bucket: string; readonly key: string; readonly endpoint?: string };

/** `--to`/`--from`: `s3://bucket/prefix` or a path. */
export function parseLocation(flag: string, value: string, endpoint?: string): ExchangeLocation {
  if (value.startsWith("s3://")) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(value);
    if (!m) throw new BackupCommandError(`${flag} ${value}: expected s3://<bucket>[/<prefix>]`);
    return { kind: "s3", bucket: m[1], key: (m[2] ?? "").replace(/\/+$/, ""), endpoint };
  }
  if (endpoint) throw new BackupCommandError(`--s3-endpoint is only for s3:// locations, not ${flag} ${value}`);
  return { kind: "folder", dir: path.resolve(value) };
}

/** S3 client settings: the default AWS chain, or an S3-compatible endpoint (path-style). */
function s3Client(location: { endpoint?: string }, region: string | undefined): S3ClientConfig {
  if (!location.endpoint) return { region };
  return { endpoint: location.endpoint, forcePathStyle: true, region: region ?? "us-east-1" };
}

const regionOf = (ctx: BackupContext) => (ctx.env ?? process.env).AWS_REGION ?? ctx.awsRegion;

const noPathIn = (key: string, where: string) => {
  if (path.basename(key) !== key || key.startsWith(".")) {
    throw new BackupStorageError(`${where}: the dump ${key} is not a file name beside the manifest`);
  }
};

/** Exports in a folder: `<service>-<environment>-<id>.dump` and `.manifest.json`, owner-only (they hold the service's data). */
export class FolderStore implements DumpStore {
  readonly whenCorrupted = "export it again from its stack";

  constructor(
    readonly dir: string,
    private readonly environment: string,
  ) {}

  describe(key: string): string {
    return path.join(this.dir, key);
  }

  private base(service: string, id: string): string {
    return `${service}-${this.environment}-${id}`;
  }

  dumpKey(service: string, id: string): string {
    return `${this.base(service, id)}.dump`;
  }

  manifestKey(service: string, id: string): string {
    return `${this.base(service, id)}.manifest.json`;
  }

  async uploadDump(key: string, body: Readable, onProgress?: (bytes: number) => void): Promise<{ versionId?: string }> {
    const file = this.describe(key);
    let bytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        onProgress?.(bytes);
        done(null, chunk);
      },
    });
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // Opened before the stream starts, so a failure removes it: a stream's own open may land after the cleanup.
      const fd = fs.openSync(`${file}.partial`, "wx", 0o600);
      await pipeline(body, counted, fs.createWriteStream("", { fd }));
      fs.renameSync(`${file}.partial`, file);
    } catch (e) {
      fs.rmSync(`${file}.partial`, { force: true });
      throw new BackupStorageError(`writing ${file} failed: ${message(e)}`);
    }
    return {};
  }

  async putManifest(manifest: BackupManifest): Promise<void> {
    const file = this.describe(this.manifestKey(manifest.service, manifest.id));
    try {
      fs.writeFileSync(`${file}.partial`, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600, flag: "wx" });
      fs.renameSync(`${file}.partial`, file);
    } catch (e) {
      fs.rmSync(`${file}.partial`, { force: true });
      throw new BackupStorageError(`writing the manifest ${file} failed: ${message(e)}`);
    }
  }

  async deleteQuietly(key: string): Promise<void> {
    fs.rmSync(this.describe(key), { force: true });
  }

  async openDump(manifest: BackupManifest): Promise<Readable> {
    noPathIn(manifest.dump.key, this.dir);
    const file = this.describe(manifest.dump.key);
    if (!fs.existsSync(file)) throw new BackupStorageError(`the dump ${file} of export ${manifest.id} is missing`);
    return fs.createReadStream(file);
  }
}

export interface ExportResult {
  readonly manifest: BackupManifest;
  /** Where the manifest is: what `import --from` takes. */
  readonly location: string;
  readonly seconds: number;
}

/** Who is exporting: `user@host`, recorded in the manifest. */
export function exporter(): string {
  return `${os.userInfo().username}@${os.hostname()}`;
}

/** Export one service's data to a folder or an S3 location, with its read-only login, manifest last. */
export async function exportService(
  ctx: BackupContext,
  args: { service: string; to: ExchangeLocation; reason?: string; progress?: (service: string, bytes: number) => void },
): Promise<ExportResult> {
  const started = performance.now();
  const [service] = selectServices(ctx.spec, { service: args.service });
  const target = serviceTarget(ctx, service);
  const env = ctx.spec.environment;
  const run = (store: DumpStore) =>
    runBackup(store, target, {
      stack: ctx.stack,
      environment: env,
      clientTools: clientTools(ctx.projectDir),
      progress: args.progress,
      export: { format: EXPORT_FORMAT, exportedBy: exporter(), reason: args.reason },
    });
  const to = args.to;
  if (to.kind === "folder") {
    const store = new FolderStore(to.dir, env);
    const manifest = await run(store);
    return { manifest, location: store.describe(store.manifestKey(manifest.service, manifest.id)), seconds: elapsed(started) };
  }
  // s3://bucket/prefix → <prefix>/<environment>/<service>/<id>.dump and .manifest.json
  const store = new BackupStorage(
    { bucket: to.bucket, environment: to.key ? `${to.key}/${env}` : env, client: s3Client(to, regionOf(ctx)) },
    [EXPORT_FORMAT],
  );
  try {
    const manifest = await run(store);
    return { manifest, location: store.describe(store.manifestKey(manifest.service, manifest.id)), seconds: elapsed(started) };
  } finally {
    store.s3.destroy();
  }
}

const elapsed = (since: number) => (performance.now() - since) / 1000;

/** An export's manifest and the store its dump is read from; `close` releases the S3 client. */
export async function openExport(
  from: ExchangeLocation,
  region: string | undefined,
): Promise<{ manifest: BackupManifest; store: DumpStore; close(): void }> {
  if (from.kind === "folder") {
    if (!from.dir.endsWith(".manifest.json")) {
      throw new BackupCommandError(`--from ${from.dir}: give the export's manifest (<service>-<environment>-<id>.manifest.json)`);
    }
    let text: string;
    try {
      text = fs.readFileSync(from.dir, "utf8");
    } catch (e) {
      throw new BackupCommandError(`--from ${from.dir}: ${message(e)}`);
    }
    const manifest = parseManifest(text, from.dir, [EXPORT_FORMAT]);
    noPathIn(manifest.dump.key, from.dir);
    return { manifest, store: new FolderStore(path.dirname(from.dir), manifest.environment), close: () => undefined };
  }
  if (!from.key.endsWith(".manifest.json")) {
    throw new BackupCommandError(`--from s3://${from.bucket}/${from.key}: give the export's manifest (…/<id>.manifest.json)`);
  }
  const store = new BackupStorage({ bucket: from.bucket, environment: "", client: s3Client(from, region) }, [EXPORT_FORMAT]);
  try {
    return { manifest: await store.readManifest(from.key), store, close: () => store.s3.destroy() };
  } catch (e) {
    store.s3.destroy();
    throw e;
  }
}

export interface ImportPlan {
  readonly source: {
    readonly stack: string;
    readonly environment: string;
    readonly service: string;
    readonly export: string;
    readonly finishedAt: string;
    readonly exportedBy?: string;
    readonly reason?: string;
    readonly tables: number;
    readonly rows: number;
    readonly bytes: number;
  };
  readonly target: Pick<BackupManifest, "stack" | "environment" | "service" | "server" | "database" | "schemas"> & {
    readonly ownerRole: string;
  };
  /** What `--confirm` must say. */
  readonly confirmation: string;
}

export interface ImportArgs {
  readonly service: string;
  readonly from: ExchangeLocation;
  /** `<stack>/<service>` of the target, as the person importing typed it. */
  readonly confirm?: string;
  readonly replace?: boolean;
  /** `--admin-url server=URL`: a login that may act as the service's owner role (servers that are not local). */
  readonly adminUrls?: Readonly<Record<string, string>>;
}

export interface ImportResult {
  readonly plan: ImportPlan;
  readonly restore: RestoreResult;
  /** The backup of the target's data taken before `--replace` dropped it. */
  readonly backupBeforeReplace?: string;
}

/** What an import would do, and the refusals that need no server: same stack, schemas the target lacks. */
export function importPlan(ctx: BackupContext, manifest: BackupManifest, service: ServiceSpec): ImportPlan {
  if (manifest.stack === ctx.stack) {
    throw new BackupCommandError(
      `the export ${manifest.id} came from stack ${ctx.stack} itself: an import moves data between stacks; to bring back this stack's data use db-platform backup restore`,
    );
  }
  const missing = manifest.schemas.filter((s) => !service.schemas.includes(s));
  if (missing.length > 0) {
    throw new BackupCommandError(
      `the export holds schema(s) ${manifest.schemas.join(", ")} of service ${manifest.service}; service ${service.name} of stack ${ctx.stack} has ${service.schemas.join(", ")} (missing: ${missing.join(", ")}). Nothing was imported.`,
    );
  }
  const server = serverOf(ctx.spec, service);
  return {
    source: {
      stack: manifest.stack,
      environment: manifest.environment,
      service: manifest.service,
      export: manifest.id,
      finishedAt: manifest.finishedAt,
      exportedBy: manifest.exportedBy,
      reason: manifest.reason,
      tables: manifest.tables.length,
      rows: manifest.tables.reduce((n, t) => n + t.rows, 0),
      bytes: manifest.dump.bytes,
    },
    target: {
      stack: ctx.stack,
      environment: ctx.spec.environment,
      service: service.name,
      server: server.name,
      database: service.database,
      schemas: service.schemas,
      ownerRole: service.owner.name,
    },
    confirmation: `${ctx.stack}/${service.name}`,
  };
}

/** Read an export and make the plan (for the prompt), releasing the store. */
export async function readImportPlan(ctx: BackupContext, args: Pick<ImportArgs, "service" | "from">): Promise<ImportPlan> {
  const [service] = selectServices(ctx.spec, { service: args.service });
  const opened = await openExport(args.from, regionOf(ctx));
  try {
    return importPlan(ctx, opened.manifest, service);
  } finally {
    opened.close();
  }
}

/** What the service's schemas of the target database already hold; refuses when the stack was never applied there. */
async function targetTables(connection: Connection, plan: ImportPlan): Promise<string[]> {
  const c = new Client(pgConfig(connection, plan.target.database));
  try {
    await c.connect();
  } catch (e) {
    await c.end().catch(() => undefined);
    const hint = (e as { code?: string }).code === "3D000" ? ` (apply the stack first: db-platform up --stack ${plan.target.stack})` : "";
    throw new BackupCommandError(
      `cannot connect to ${plan.target.database} on server ${plan.target.server} as ${connection.user}: ${message(e)}${hint}`,
    );
  }
  try {
    return await userTables(c, plan.target.schemas);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Import an export into a service of this stack. Refused (nothing touched) without the exact
 * confirmation, for the plan's refusals, for a target with data without `--replace`, and for a
 * dump whose checksum does not match; with `--replace` the target is backed up first.
 */
export async function importService(ctx: BackupContext, args: ImportArgs): Promise<ImportResult> {
  const [service] = selectServices(ctx.spec, { service: args.service });
  const opened = await openExport(args.from, regionOf(ctx));
  try {
    const plan = importPlan(ctx, opened.manifest, service);
    if (args.confirm !== plan.confirmation) {
      throw new BackupCommandError(
        args.confirm === undefined
          ? `an import writes into service ${plan.target.service} of stack ${plan.target.stack}: confirm with --confirm ${plan.confirmation}`
          : `--confirm ${args.confirm} does not name the target: the import writes into ${plan.confirmation}`,
      );
    }
    // A corrupted or replaced dump is refused before the target is read, backed up or touched.
    await verifyDump(opened.store, opened.manifest);
    const server = serverOf(ctx.spec, service);
    const connection = serverAdminConnection(ctx, server, args.adminUrls ?? {}, "--admin-url", `act as ${service.owner.name}`);
    const existing = await targetTables(connection, plan);
    let backupBeforeReplace: string | undefined;
    if (existing.length > 0) {
      if (!args.replace) {
        throw new BackupError(
          `service ${service.name} of stack ${ctx.stack} already has data (${listTables(existing)}); nothing was imported. Pass --replace to replace it (it is backed up first).`,
        );
      }
      backupBeforeReplace = await backUpBeforeReplace(ctx, service.name);
    }
    const restore = await restoreBackup(
      opened.store,
      opened.manifest,
      {
        connection,
        database: service.database,
        create: false,
        overwrite: args.replace,
        ownerRole: service.owner.name,
        requireOwnerRole: true,
        scope: service.schemas,
        verified: true,
      },
      clientTools(ctx.projectDir),
    ).catch((e: unknown) => {
      // --replace emptied the schemas before the restore's own transaction: say where the data is.
      if (!backupBeforeReplace || !(e instanceof BackupError)) throw e;
      throw new BackupError(
        `${e.message}\nThe data service ${service.name} had before is backup ${backupBeforeReplace}: db-platform backup restore --stack ${ctx.stack} --service ${service.name} --backup ${backupBeforeReplace} --target postgresql://…/${service.database} --overwrite`,
      );
    });
    return { plan, restore, backupBeforeReplace };
  } finally {
    opened.close();
  }
}

/** `--replace` (and an in-place restore) keeps what it drops: a backup of the target service, or nothing done at all. */
export async function backUpBeforeReplace(ctx: BackupContext, service: string): Promise<string> {
  if (!ctx.spec.backups) {
    throw new BackupCommandError(
      `--replace drops the data of service ${service} in stack ${ctx.stack}, which declares no backups (db-platform:backups) to keep it first; nothing was imported`,
    );
  }
  const [r] = await backupRun(ctx, { service });
  if (!r.ok || !r.manifest) {
    throw new BackupError(`the backup of ${service} before replacing its data failed, nothing was replaced: ${r.error}`);
  }
  return r.manifest.id;
}
