/**
 * `db-platform restore --to-time` and `backup drill --to-time` (docs/point-in-time.md): one
 * service of a shared local server put back as it was at a moment, its neighbours untouched.
 * The server's archive is recovered to the moment in a scratch cluster only the platform
 * reaches; the service is taken out of it with the per-service dump (its read-only login's
 * privileges, checked for undeclared schemas), and restored as the service's owner role into a
 * new database, or in place after the confirmation (the current state backed up first). The
 * restore is compared with what was extracted (row counts, schema hash), and every other
 * service on the server with itself before (row counts, schema hash).
 */
import * as fs from "node:fs";
import { Client, escapeIdentifier } from "pg";
import { type LocalServerSpec, type RdsServerSpec, type ServerSpec, type ServiceSpec, servingPlace } from "../../components/spec";
import { serviceRoleNames } from "../../components/service/plan";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
import {
  type BackupContext,
  BackupCommandError,
  clientTools,
  connectionFromUrl,
  dropScratch,
  readonlyLogin,
  selectServices,
  serverAdminConnection,
  serverOf,
  serviceTarget,
} from "../backup/command";
import { FolderStore } from "../backup/exchange";
import { type RestoreResult, restoreBackup } from "../backup/restore";
import { type Connection, pgConfig, runBackup } from "../backup/runner";
import { schemaHash, tableCounts } from "../backup/snapshot";
import type { BackupManifest } from "../backup/storage";
import { localArchive, localInstances } from "../local/local";
import type { LocalPostgres } from "../local/postgres";
import type { LocalArchive } from "./archive";
import { ArchiveError } from "./barman";
import { replaceInPlace, settlePrevious } from "./inPlace";
import { type RdsScratchOptions, rdsScratchAt } from "./rdsScratch";
import { checkTargetTime, recoverToTime } from "./recover";
import { clearLeftovers, extractDir, lockServer, workDir } from "./workdir";

export interface PointInTimeArgs {
  readonly service: string;
  readonly toTime: string;
  /** postgresql://… of the database to restore into; default a new database on the service's server. */
  readonly target?: string;
  /** Replace the service's data in its own database (needs `confirm`). */
  readonly inPlace?: boolean;
  /** `<stack>/<service>`, as typed. */
  readonly confirm?: string;
  /** `--server-url server=URL`: the admin of a server that is not local (RDS: its master user). */
  readonly serverUrls?: Readonly<Record<string, string>>;
  /** Tests: the AWS clients and the endpoint of an RDS scratch instance. */
  readonly rds?: RdsScratchOptions;
}

export interface NeighbourCheck {
  readonly service: string;
  readonly unchanged: boolean;
  readonly rows: number;
}

export interface PointInTimeResult {
  readonly service: string;
  readonly toTime: string;
  /** Who recovered the moment: barman-cloud from the local archive, or RDS's point-in-time restore. */
  readonly recoveredBy: "barman-cloud" | "rds";
  /** What was recovered: the local archive's base backup, or the RDS scratch instance. */
  readonly baseBackup: string;
  /** The last transaction the recovery replayed: nothing after it, and nothing after toTime. */
  readonly lastTransactionAt?: string;
  readonly recoverySeconds: number;
  readonly restore: RestoreResult;
  /** Where the data went: the service's own database (in place) or another one. */
  readonly into: string;
  readonly inPlace: boolean;
  readonly backupBeforeReplace?: string;
  readonly neighbours: readonly NeighbourCheck[];
  readonly seconds: number;
}

/** Where a moment is recovered from: a local server's archive, or RDS's own point-in-time recovery. */
type Source =
  | { readonly server: LocalServerSpec; readonly live: LocalPostgres; readonly archive: LocalArchive }
  | { readonly server: RdsServerSpec; readonly live?: undefined };

/** A server recovered to the moment, reached by an admin that reads what each service's read-only role reads. */
interface Scratch {
  readonly recoveredBy: "barman-cloud" | "rds";
  readonly connection: Connection;
  readonly major: string;
  readonly recoveredFrom: string;
  readonly lastTransactionAt?: string;
  readonly seconds: number;
  /** Before a service is dumped as its read-only role. */
  prepare(readonlyRole: string, database: string): Promise<void>;
  destroy(): Promise<void>;
}

/** The service's server and what recovers it, or why a point-in-time recovery cannot reach it. */
function sourceOf(ctx: BackupContext, service: ServiceSpec): Source {
  const server = serverOf(ctx.spec, servingPlace(service));
  if (server.hosting === "rds") return { server };
  if (server.hosting !== "local") {
    throw new BackupCommandError(
      `service ${service.name} is on server ${server.name} (hosting ${server.hosting}): --to-time recovers local servers' archives and RDS instances; an external server's recovery is its operator's (docs/point-in-time.md)`,
    );
  }
  const { primary } = localInstances(server, ctx.stack, ctx.projectDir, "");
  const archive = localArchive(ctx.spec, primary, ctx.stack, ctx.projectDir);
  if (!archive) {
    throw new BackupCommandError(
      `server ${server.name} of stack ${ctx.stack} has no archive: backups.storage local with backups.archive (on unless enabled: false) archives it`,
    );
  }
  return { server, live: primary, archive };
}

/** Recover the source to `at`: a scratch cluster from the local archive, or an RDS point-in-time restore. */
async function scratchAt(
  ctx: BackupContext,
  source: Source,
  at: Date,
  dir: string,
  service: string,
  rds?: RdsScratchOptions,
): Promise<Scratch> {
  if (!source.live) {
    const r = await rdsScratchAt(
      ctx.spec.environment,
      source.server,
      at,
      dir,
      { "db-platform:stack": ctx.stack, "db-platform:service": service },
      rds,
    );
    return {
      recoveredBy: "rds",
      connection: r.connection,
      major: source.server.version,
      recoveredFrom: `RDS instance ${r.identifier} (restore window ${r.window.earliest} to ${r.window.latest})`,
      seconds: r.seconds,
      prepare: r.prepare,
      destroy: r.destroy,
    };
  }
  const recovered = await recoverToTime(source.archive, at, dir);
  const server = recovered.server;
  return {
    recoveredBy: "barman-cloud",
    connection: { host: server.socketDir, port: server.opts.port, user: LOCAL_BOOTSTRAP_SUPERUSER },
    major: server.opts.version,
    recoveredFrom: recovered.backup.id,
    lastTransactionAt: recovered.lastTransactionAt,
    seconds: recovered.seconds,
    prepare: async () => undefined,
    destroy: () => server.destroy(),
  };
}

/**
 * Row counts and schema hash of each other service on the server: locally as the bootstrap
 * superuser sees them, elsewhere as each neighbour's read-only login does (`--url`, or its secret).
 */
async function neighbourState(ctx: BackupContext, server: ServerSpec, except: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const service of ctx.spec.services.filter((x) => servingPlace(x).server === server.name && x.name !== except)) {
    const s = servingPlace(service);
    const target =
      server.hosting === "local"
        ? { connection: serverAdminConnection(ctx, server, {}, "--server-url", "read the neighbours"), role: undefined }
        : serviceTarget(ctx, service);
    const c = new Client(pgConfig(target.connection, s.database));
    await c.connect();
    try {
      if (target.role) await c.query(`SET ROLE ${escapeIdentifier(target.role)}`);
      const counts = await tableCounts(c, s.schemas);
      out.set(s.name, JSON.stringify({ counts, hash: await schemaHash(c, s.schemas) }));
    } finally {
      await c.end();
    }
  }
  return out;
}

function compareNeighbours(before: Map<string, string>, after: Map<string, string>): NeighbourCheck[] {
  return [...before].map(([service, state]) => ({
    service,
    unchanged: after.get(service) === state,
    rows: (JSON.parse(state) as { counts: Array<{ rows: number }> }).counts.reduce((n, t) => n + t.rows, 0),
  }));
}

/** Take the service out of the recovered scratch server, as a normal backup would (its read-only login). */
async function extract(ctx: BackupContext, scratch: Scratch, service: ServiceSpec, store: FolderStore, at: Date): Promise<BackupManifest> {
  const place = servingPlace(service);
  const c = new Client(pgConfig(scratch.connection, "postgres"));
  await c.connect();
  try {
    const db = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [place.database]);
    if (db.rowCount === 0) {
      throw new ArchiveError(
        `service ${service.name} did not exist at ${at.toISOString()}: its database ${place.database} was not on the server then. Nothing was restored.`,
      );
    }
  } finally {
    await c.end();
  }
  const inDb = new Client(pgConfig(scratch.connection, place.database));
  await inDb.connect();
  try {
    const { rows } = await inDb.query<{ n: string }>("SELECT nspname AS n FROM pg_namespace WHERE nspname = ANY($1)", [place.schemas]);
    const missing = place.schemas.filter((s) => !rows.some((r) => r.n === s));
    if (missing.length > 0) {
      throw new ArchiveError(
        `service ${service.name} did not exist at ${at.toISOString()}: schema ${missing.join(", ")} of database ${place.database} was not there then. Nothing was restored.`,
      );
    }
  } finally {
    await inDb.end();
  }
  await scratch.prepare(readonlyLogin(service), place.database);
  return runBackup(
    store,
    {
      service: service.name,
      server: place.server,
      database: place.database,
      schemas: place.schemas,
      serverMajor: scratch.major,
      connection: scratch.connection,
      role: readonlyLogin(service),
      dumpedAs: readonlyLogin(service),
      roles: serviceRoleNames(place),
    },
    { stack: ctx.stack, environment: ctx.spec.environment, clientTools: clientTools(ctx.projectDir) },
  );
}

/** `<database>_at_<yyyymmddThhmmss>`: a new database for a restore that is not in place. */
export function databaseAt(service: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "")
    .toLowerCase();
  return `${service.replace(/[^a-z0-9]/g, "_")}_at_${stamp}`.slice(0, 63);
}

/**
 * Put one service back as it was at `toTime`. Refused before anything changes: a time in the
 * future, before the oldest base backup, or past a gap of the archive; a service that did not
 * exist then; in place without the confirmation. Resumable: a killed run's scratch server is
 * removed and, in place, the backup it took first is reused rather than taken again.
 */
export async function restoreToTime(ctx: BackupContext, args: PointInTimeArgs): Promise<PointInTimeResult> {
  const started = performance.now();
  const [service] = selectServices(ctx.spec, { service: args.service });
  const at = checkTargetTime(args.toTime);
  if (args.inPlace && args.target) throw new BackupCommandError("give --in-place or --target <url>, not both");
  const confirmation = `${ctx.stack}/${service.name}`;
  if (args.inPlace && args.confirm !== confirmation) {
    throw new BackupCommandError(
      args.confirm === undefined
        ? `--in-place replaces the data of service ${service.name} in stack ${ctx.stack} with its state at ${at.toISOString()} (backed up first): confirm with --confirm ${confirmation}`
        : `--confirm ${args.confirm} does not name the target: the restore writes into ${confirmation}`,
    );
  }
  const source = sourceOf(ctx, service);
  const dir = workDir(ctx);
  const admin = serverAdminConnection(ctx, source.server, args.serverUrls ?? {}, "--server-url", `act as ${service.owner.name}`);
  const unlock = lockServer(dir, source.server.name);
  let store: FolderStore | undefined;
  try {
    const resumed = await settlePrevious(dir, service, admin, at.toISOString(), !!args.inPlace);
    await clearLeftovers(dir, source.server.name, source.live, [service.name]);
    store = new FolderStore(extractDir(dir, service.name), ctx.spec.environment);
    const before = await neighbourState(ctx, source.server, service.name);
    const recovered = await scratchAt(ctx, source, at, dir, service.name, args.rds);
    let manifest: BackupManifest;
    try {
      manifest = await extract(ctx, recovered, service, store, at);
    } finally {
      await recovered.destroy();
    }
    let restore: RestoreResult;
    let backupBeforeReplace: string | undefined;
    if (args.inPlace) {
      ({ restore, backupBeforeReplace } = await replaceInPlace(ctx, dir, service, admin, { store, manifest }, at.toISOString(), resumed));
    } else {
      const target = args.target ? connectionFromUrl(args.target) : { connection: admin, database: databaseAt(service.name, at) };
      if (!target.database) throw new BackupCommandError("--target: name the database to restore into (postgresql://…/<database>)");
      restore = await restoreBackup(
        store,
        manifest,
        { connection: target.connection, database: target.database, ownerRole: service.owner.name },
        clientTools(ctx.projectDir),
      );
    }
    const neighbours = compareNeighbours(before, await neighbourState(ctx, source.server, service.name));
    const changed = neighbours.filter((n) => !n.unchanged);
    if (changed.length > 0) {
      throw new ArchiveError(
        `service ${service.name} was restored, but neighbour(s) ${changed.map((n) => n.service).join(", ")} changed meanwhile (row counts or schema): their own writes, or a fault to report`,
      );
    }
    return {
      service: service.name,
      toTime: at.toISOString(),
      recoveredBy: recovered.recoveredBy,
      baseBackup: recovered.recoveredFrom,
      lastTransactionAt: recovered.lastTransactionAt,
      recoverySeconds: recovered.seconds,
      restore,
      into: restore.database,
      inPlace: !!args.inPlace,
      backupBeforeReplace,
      neighbours,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (store) fs.rmSync(store.dir, { recursive: true, force: true });
    unlock();
  }
}

export interface PointInTimeDrill {
  readonly service: string;
  readonly ok: boolean;
  readonly toTime: string;
  readonly baseBackup?: string;
  readonly lastTransactionAt?: string;
  /** Recovery, extraction, restore and comparison, in seconds: the measured RTO of a point-in-time restore. */
  readonly rtoSeconds?: number;
  readonly tables?: number;
  readonly rows?: number;
  readonly error?: string;
}

/**
 * Recover each selected service's server to `toTime` (one scratch cluster per server), take each
 * service out of it, restore it into a scratch database on its own server, compare, drop it.
 */
export async function drillToTime(
  ctx: BackupContext,
  only: string | undefined,
  toTime: string,
  scratchUrls: Readonly<Record<string, string>> = {},
  rds?: RdsScratchOptions,
): Promise<PointInTimeDrill[]> {
  const at = checkTargetTime(toTime);
  const services = selectServices(ctx.spec, { service: only });
  const byServer = new Map<string, ServiceSpec[]>();
  for (const s of services) byServer.set(servingPlace(s).server, [...(byServer.get(servingPlace(s).server) ?? []), s]);
  const out: PointInTimeDrill[] = [];
  const dir = workDir(ctx);
  for (const group of byServer.values()) {
    let recovered: Scratch | undefined;
    let unlock = () => undefined as void;
    try {
      const source = sourceOf(ctx, group[0]);
      const admin = serverAdminConnection(ctx, source.server, scratchUrls, "--scratch-url", "create the drill's scratch database");
      unlock = lockServer(dir, source.server.name);
      const names = group.map((g) => g.name);
      await clearLeftovers(dir, source.server.name, source.live, names);
      recovered = await scratchAt(ctx, source, at, dir, names.join(" "), rds);
      for (const service of group) {
        const begun = performance.now();
        const store = new FolderStore(extractDir(dir, service.name), ctx.spec.environment);
        const database = `drill_${databaseAt(service.name, at)}`.slice(0, 63);
        try {
          const manifest = await extract(ctx, recovered, service, store, at);
          const r = await restoreBackup(
            store,
            manifest,
            { connection: admin, database, ownerRole: service.owner.name },
            clientTools(ctx.projectDir),
          );
          out.push({
            service: service.name,
            ok: true,
            toTime: at.toISOString(),
            baseBackup: recovered.recoveredFrom,
            lastTransactionAt: recovered.lastTransactionAt,
            rtoSeconds: recovered.seconds + (performance.now() - begun) / 1000,
            tables: r.tables,
            rows: r.rows,
          });
        } catch (e) {
          out.push({ service: service.name, ok: false, toTime: at.toISOString(), error: (e as Error).message });
        } finally {
          fs.rmSync(store.dir, { recursive: true, force: true });
          await dropScratch(admin, database);
        }
      }
    } catch (e) {
      const taken = new Set(out.map((o) => o.service));
      for (const s of group.filter((x) => !taken.has(x.name))) {
        out.push({ service: s.name, ok: false, toTime: at.toISOString(), error: (e as Error).message });
      }
    } finally {
      await recovered?.destroy();
      unlock();
    }
  }
  return out;
}
