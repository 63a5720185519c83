/**
 * `db-platform backup run|list|restore|drill`: where a stack's backups live, how each service is
 * reached, and what each command prints.
 *
 * A service is dumped with its own read-only login, found in this order: `--url
 * <service>=postgresql://…`; the `DB_PLATFORM_LOGIN_<SERVICE>` environment variable holding the
 * login's Secrets Manager JSON (how the ECS task receives it); for a `local` server, the private
 * socket as the bootstrap superuser with SET ROLE to the read-only login, so the dump has exactly
 * that login's privileges.
 */
import * as path from "node:path";
import { loginEnvName, replicaBucketName, type ServerSpec, type ServiceSpec, servingPlace, type Spec } from "../../components/spec";
import { serviceRoleNames } from "../../components/service/plan";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
import { localRoot, stackS3 } from "../local/local";
import { postgresBinDir } from "../local/postgres";
import { Client, escapeIdentifier } from "pg";
import { type RestoreResult, restoreBackup } from "./restore";
import { type Connection, pgConfig, runBackup, type ServiceTarget } from "./runner";
import { type BackupManifest, BackupStorage } from "./storage";

export class BackupCommandError extends Error {}

export interface BackupContext {
  readonly spec: Spec;
  readonly stack: string;
  readonly projectDir: string;
  readonly awsRegion?: string;
  /** `--url service=URL` values. */
  readonly urls?: Readonly<Record<string, string>>;
  /** `--region <dr>`: read the backups from the bucket's replica in that region alone (docs/backups.md). */
  readonly readRegion?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Parse repeated `name=postgresql://…` values (`--url`, `--scratch-url`). */
export function parseNamedUrls(flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=]+)=(postgres(?:ql)?:\/\/.+)$/.exec(v);
    if (!m)
      throw new BackupCommandError(
        `${flag} ${v.replace(/:[^:@/]*@/, ":***@")}: expected <name>=postgresql://user:password@host:port/database`,
      );
    out[m[1]] = m[2];
  }
  return out;
}

export function connectionFromUrl(url: string): { connection: Connection; database: string } {
  const u = new URL(url);
  return {
    connection: {
      host: decodeURIComponent(u.hostname) || (u.searchParams.get("host") ?? "localhost"),
      port: Number(u.port || 5432),
      user: decodeURIComponent(u.username),
      password: u.password ? decodeURIComponent(u.password) : undefined,
      sslMode: u.searchParams.get("sslmode") ?? undefined,
    },
    database: decodeURIComponent(u.pathname.replace(/^\//, "")),
  };
}

/** The stack's backup bucket, through the same S3 client code for AWS and the local server. */
export async function openStorage(ctx: BackupContext): Promise<BackupStorage> {
  const backups = ctx.spec.backups;
  if (!backups) throw new BackupCommandError(`stack ${ctx.stack} declares no backups (set db-platform:backups, see docs/backups.md)`);
  const env = ctx.env ?? process.env;
  if (backups.storage === "local") {
    if (ctx.readRegion !== undefined) {
      throw new BackupCommandError(
        `--region ${ctx.readRegion}: stack ${ctx.stack} keeps its backups in its local S3 server, which has no replica`,
      );
    }
    const s3 = stackS3(ctx.spec, ctx.stack, ctx.projectDir);
    if (!(await s3.isRunning())) {
      throw new BackupCommandError(
        `the local S3 server of stack ${ctx.stack} is not running on ${s3.endpoint}: db-platform local start --stack ${ctx.stack}`,
      );
    }
    return new BackupStorage({ bucket: backups.bucket as string, environment: ctx.spec.environment, client: s3.clientConfig() });
  }
  const bucket = env.DB_PLATFORM_BACKUP_BUCKET ?? backups.bucket;
  if (!bucket) {
    throw new BackupCommandError(
      "the backup bucket's name is the stack output backups.bucket: set DB_PLATFORM_BACKUP_BUCKET (the ECS task has it) or backups.bucket",
    );
  }
  if (ctx.readRegion !== undefined) {
    // The replica alone: its own name and its region's endpoint; the source region is never asked.
    if (ctx.readRegion !== backups.replicaRegion) {
      throw new BackupCommandError(
        `--region ${ctx.readRegion}: stack ${ctx.stack} replicates its backups ${backups.replicaRegion ? `to ${backups.replicaRegion} only` : "nowhere (no backups.replicaRegion)"}`,
      );
    }
    return new BackupStorage({
      bucket: replicaBucketName(bucket, ctx.readRegion),
      environment: ctx.spec.environment,
      client: { region: ctx.readRegion },
    });
  }
  return new BackupStorage({ bucket, environment: ctx.spec.environment, client: { region: env.AWS_REGION ?? ctx.awsRegion } });
}

export function readonlyLogin(service: ServiceSpec): string {
  const login = service.logins.find((l) => l.kind === "readonly");
  if (!login) throw new BackupCommandError(`service ${service.name} has no read-only login`);
  return login.name;
}

export function serverOf(spec: Spec, service: ServiceSpec): ServerSpec {
  return spec.servers.find((s) => s.name === service.server) as ServerSpec;
}

const sslModeOf = (server: ServerSpec) => ("sslMode" in server ? server.sslMode : undefined);

/** Where a service's data is dumped from: its place, or a move's target once that serves (docs/data-moves.md). */
export function serviceTarget(ctx: BackupContext, service: ServiceSpec): ServiceTarget {
  const place = servingPlace(service);
  const server = serverOf(ctx.spec, place);
  const base = {
    service: service.name,
    server: server.name,
    database: place.database,
    schemas: place.schemas,
    serverMajor: server.version,
    roles: serviceRoleNames(place),
  };
  const url = ctx.urls?.[service.name];
  if (url) {
    const { connection } = connectionFromUrl(url);
    return { ...base, connection, dumpedAs: connection.user };
  }
  const secret = (ctx.env ?? process.env)[loginEnvName(service.name)];
  if (secret) {
    let s: { host?: string; port?: number; username?: string; password?: string };
    try {
      s = JSON.parse(secret) as typeof s;
    } catch {
      throw new BackupCommandError(`${loginEnvName(service.name)}: not the login secret's JSON`);
    }
    if (!s.host || !s.username) throw new BackupCommandError(`${loginEnvName(service.name)}: the secret has no host or username`);
    const connection = { host: s.host, port: Number(s.port ?? 5432), user: s.username, password: s.password, sslMode: sslModeOf(server) };
    return { ...base, connection, dumpedAs: s.username };
  }
  if (server.hosting === "local") {
    const role = readonlyLogin(service);
    const socket = path.join(localRoot(ctx.projectDir, ctx.stack), server.name, "run");
    return { ...base, connection: { host: socket, port: server.port, user: LOCAL_BOOTSTRAP_SUPERUSER }, role, dumpedAs: role };
  }
  throw new BackupCommandError(
    `service ${service.name} (server ${server.name}, hosting ${server.hosting}): give --url ${service.name}=postgresql://${readonlyLogin(service)}:…@<host>:<port>/${service.database} (the ECS task reads it from ${loginEnvName(service.name)})`,
  );
}

/** The services a command acts on: all, one (--service), or those on one server (--server). */
export function selectServices(spec: Spec, filter: { service?: string; server?: string } = {}): ServiceSpec[] {
  let services = [...spec.services];
  if (filter.server !== undefined) {
    if (!spec.servers.some((s) => s.name === filter.server)) {
      throw new BackupCommandError(`--server ${filter.server}: no such server (${spec.servers.map((s) => s.name).join(", ")})`);
    }
    services = services.filter((s) => s.server === filter.server);
  }
  if (filter.service === undefined) return services;
  const found = services.find((s) => s.name === filter.service);
  if (!found) {
    const where = filter.server !== undefined ? ` on server ${filter.server}` : "";
    throw new BackupCommandError(`--service ${filter.service}: no such service${where} (${services.map((s) => s.name).join(", ")})`);
  }
  return [found];
}

export const clientTools = (projectDir: string) => (major: string) => postgresBinDir(major, projectDir);

export interface RunOutcome {
  readonly service: string;
  readonly ok: boolean;
  readonly manifest?: BackupManifest;
  readonly error?: string;
  readonly seconds: number;
}

/** Back up each service in turn; one failing does not stop the others. */
export async function backupRun(
  ctx: BackupContext,
  filter: { service?: string; server?: string },
  progress?: (service: string, bytes: number) => void,
): Promise<RunOutcome[]> {
  const services = selectServices(ctx.spec, filter);
  const targets = services.map((s) => serviceTarget(ctx, s));
  const storage = await openStorage(ctx);
  const out: RunOutcome[] = [];
  try {
    for (const target of targets) {
      const started = performance.now();
      try {
        const manifest = await runBackup(storage, target, {
          stack: ctx.stack,
          environment: ctx.spec.environment,
          clientTools: clientTools(ctx.projectDir),
          progress,
        });
        out.push({ service: target.service, ok: true, manifest, seconds: (performance.now() - started) / 1000 });
      } catch (e) {
        out.push({ service: target.service, ok: false, error: (e as Error).message, seconds: (performance.now() - started) / 1000 });
      }
    }
  } finally {
    storage.s3.destroy();
  }
  return out;
}

export async function backupList(ctx: BackupContext, only?: string): Promise<BackupManifest[]> {
  const storage = await openStorage(ctx);
  try {
    const all: BackupManifest[] = [];
    for (const s of selectServices(ctx.spec, { service: only })) all.push(...(await storage.list(s.name)));
    return all;
  } finally {
    storage.s3.destroy();
  }
}

/** A backup by id, or the latest; never one without a manifest. */
export async function findBackup(storage: BackupStorage, service: string, id?: string): Promise<BackupManifest> {
  const keys = await storage.manifestKeys(service);
  if (keys.length === 0)
    throw new BackupCommandError(`service ${service} has no backups in s3://${storage.location.bucket}/${storage.prefix(service)}`);
  if (!id) return storage.readManifest(keys[keys.length - 1]);
  const key = storage.manifestKey(service, id);
  if (!keys.includes(key)) {
    const ids = keys.slice(-3).map((k) => k.slice(storage.prefix(service).length, -".manifest.json".length));
    throw new BackupCommandError(`service ${service} has no backup ${id} (latest: ${ids.join(", ")})`);
  }
  return storage.readManifest(key);
}

export async function backupRestore(
  ctx: BackupContext,
  args: { service: string; backup?: string; target: string; overwrite?: boolean },
): Promise<RestoreResult> {
  const [service] = selectServices(ctx.spec, { service: args.service });
  const { connection, database } = connectionFromUrl(args.target);
  if (!database) throw new BackupCommandError(`--target: name the database to restore into (postgresql://…/<database>)`);
  const storage = await openStorage(ctx);
  try {
    const manifest = await findBackup(storage, args.service, args.backup);
    return await restoreBackup(
      storage,
      manifest,
      { connection, database, overwrite: args.overwrite, ownerRole: service.owner.name },
      clientTools(ctx.projectDir),
    );
  } finally {
    storage.s3.destroy();
  }
}

export interface DrillOutcome {
  readonly service: string;
  readonly ok: boolean;
  readonly backup?: string;
  /** Age of the backup at the start of the drill, in hours, against the RPO. */
  readonly ageHours?: number;
  readonly rpoHours: number;
  /** Time to verify, restore and compare: the measured RTO, in seconds. */
  readonly rtoSeconds?: number;
  readonly tables?: number;
  readonly rows?: number;
  readonly error?: string;
}

/** A scratch database name for a drill: unique, lower-case, within PostgreSQL's 63 bytes. */
export function scratchName(service: string, backup: string): string {
  return `drill_${service.replace(/[^a-z0-9]/g, "_")}_${backup.toLowerCase().replace(/[^a-z0-9]/g, "_")}`.slice(0, 63);
}

/**
 * Restore each service's latest backup into a scratch database on its own server, compare row
 * counts and schema hash with the manifest, time it, and drop the scratch database.
 */
export async function backupDrill(
  ctx: BackupContext,
  only: string | undefined,
  scratchUrls: Readonly<Record<string, string>> = {},
): Promise<DrillOutcome[]> {
  const services = selectServices(ctx.spec, { service: only });
  const rpoHours = ctx.spec.backups?.rpoHours ?? 24;
  const storage = await openStorage(ctx);
  const out: DrillOutcome[] = [];
  try {
    for (const service of services) {
      const server = serverOf(ctx.spec, service);
      try {
        const scratchServer = serverAdminConnection(
          ctx,
          server,
          scratchUrls,
          "--scratch-url",
          "create and drop the drill's scratch database",
        );
        const manifest = await findBackup(storage, service.name);
        const ageHours = (Date.now() - Date.parse(manifest.finishedAt)) / 3_600_000;
        const database = scratchName(service.name, manifest.id);
        try {
          const r = await restoreBackup(
            storage,
            manifest,
            { connection: scratchServer, database, ownerRole: service.owner.name },
            clientTools(ctx.projectDir),
          );
          const fresh = ageHours <= rpoHours;
          out.push({
            service: service.name,
            ok: fresh,
            backup: manifest.id,
            ageHours,
            rpoHours,
            rtoSeconds: r.seconds,
            tables: r.tables,
            rows: r.rows,
            error: fresh ? undefined : `the latest backup is ${ageHours.toFixed(1)} h old, older than the RPO of ${rpoHours} h`,
          });
        } finally {
          await dropScratch(scratchServer, database);
        }
      } catch (e) {
        out.push({ service: service.name, ok: false, rpoHours, error: (e as Error).message });
      }
    }
  } finally {
    storage.s3.destroy();
  }
  return out;
}

/**
 * A login on a server that may create databases and act as the services' roles: `--<flag>
 * <server>=URL` when given, else, for a local server, its private socket as the bootstrap
 * superuser.
 */
export function serverAdminConnection(
  ctx: BackupContext,
  server: ServerSpec,
  urls: Readonly<Record<string, string>>,
  flag: string,
  purpose: string,
): Connection {
  const url = urls[server.name];
  if (url) return connectionFromUrl(url).connection;
  if (server.hosting === "local") {
    return {
      host: path.join(localRoot(ctx.projectDir, ctx.stack), server.name, "run"),
      port: server.port,
      user: LOCAL_BOOTSTRAP_SUPERUSER,
    };
  }
  throw new BackupCommandError(
    `server ${server.name} (hosting ${server.hosting}): give ${flag} ${server.name}=postgresql://<admin>@<host>:<port>/postgres for a login that may ${purpose}`,
  );
}

/** Drop a scratch database, best effort (drills, point-in-time drills). */
export async function dropScratch(connection: Connection, database: string): Promise<void> {
  const c = new Client(pgConfig(connection, "postgres"));
  try {
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
  } catch {
    // Best effort: the drill's result does not depend on it, and the name says what it is.
  } finally {
    await c.end().catch(() => undefined);
  }
}
