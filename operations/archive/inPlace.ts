/**
 * An in-place point-in-time restore (docs/point-in-time.md): the service's logins that write are
 * refused and their sessions ended (so nothing it writes after the backup is lost), its current
 * data is backed up (by its read-only login, as every backup: on RDS there is no other way in),
 * then its read-only logins are refused too, its schemas' objects are replaced by the extracted
 * state, and its logins are given back. A journal (`<service>.json` in the work folder) records each phase: a run killed while
 * replacing is finished by the same command with the same moment and reuses the backup taken
 * before (the data is half replaced by then, so a new backup would not be of it); a run killed
 * earlier starts again; logins it refused are always given back.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client, escapeIdentifier } from "pg";
import { loginRoleNames, type ServiceSpec, servingPlace } from "../../components/spec";
import { BackupCommandError, type BackupContext, clientTools } from "../backup/command";
import { backUpBeforeReplace, type FolderStore } from "../backup/exchange";
import { type RestoreResult, restoreBackup } from "../backup/restore";
import { BackupError, type Connection, pgConfig } from "../backup/runner";
import type { BackupManifest } from "../backup/storage";

export interface InPlaceJournal {
  readonly toTime: string;
  readonly phase: "started" | "backed-up" | "replacing";
  /** Logins set NOLOGIN by this run, given back at the end. */
  readonly blocked: readonly string[];
  readonly backupBeforeReplace?: string;
}

const journalFile = (dir: string, service: string) => path.join(dir, `${service}.json`);
const write = (file: string, j: InPlaceJournal) => fs.writeFileSync(file, `${JSON.stringify(j)}\n`, { mode: 0o600 });

export function readJournal(dir: string, service: string): InPlaceJournal | undefined {
  try {
    return JSON.parse(fs.readFileSync(journalFile(dir, service), "utf8")) as InPlaceJournal;
  } catch {
    return undefined;
  }
}

/**
 * Before anything else: an interrupted replace must be finished with its own moment; logins an
 * earlier run refused are given back. Returns the journal to resume from, if any.
 */
export async function settlePrevious(
  dir: string,
  service: ServiceSpec,
  admin: Connection,
  toTime: string,
  inPlace: boolean,
): Promise<InPlaceJournal | undefined> {
  const previous = readJournal(dir, service.name);
  if (!previous) return undefined;
  if (previous.phase === "replacing") {
    if (inPlace && previous.toTime === toTime) return previous;
    throw new BackupCommandError(
      `an in-place restore of ${service.name} to ${previous.toTime} was interrupted while it replaced the service's data: finish it first with the same --to-time ${previous.toTime} --in-place (its data before is backup ${previous.backupBeforeReplace})`,
    );
  }
  await setLogin(admin, servingPlace(service).database, previous.blocked, true);
  fs.rmSync(journalFile(dir, service.name), { force: true });
  return undefined;
}

async function setLogin(admin: Connection, database: string, roles: readonly string[], login: boolean): Promise<void> {
  if (roles.length === 0) return;
  const c = new Client(pgConfig(admin, database));
  await c.connect();
  try {
    for (const r of roles) await c.query(`ALTER ROLE ${escapeIdentifier(r)} ${login ? "LOGIN" : "NOLOGIN"}`);
    if (!login) await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)", [roles]);
  } finally {
    await c.end();
  }
}

/** The service's login roles that can log in now (both credential slots of each login), its read-only ones last. */
async function loginsNow(admin: Connection, database: string, service: ServiceSpec): Promise<string[]> {
  const logins = servingPlace(service).logins;
  const names = [...logins.filter((l) => l.kind !== "readonly"), ...logins.filter((l) => l.kind === "readonly")].flatMap(loginRoleNames);
  const c = new Client(pgConfig(admin, database));
  await c.connect();
  try {
    const { rows } = await c.query<{ r: string }>("SELECT rolname AS r FROM pg_roles WHERE rolname = ANY($1) AND rolcanlogin ORDER BY 1", [
      names,
    ]);
    return names.filter((n) => rows.some((x) => x.r === n));
  } finally {
    await c.end();
  }
}

export async function replaceInPlace(
  ctx: BackupContext,
  dir: string,
  service: ServiceSpec,
  admin: Connection,
  extracted: { store: FolderStore; manifest: BackupManifest },
  toTime: string,
  resumed: InPlaceJournal | undefined,
): Promise<{ restore: RestoreResult; backupBeforeReplace: string }> {
  const place = servingPlace(service);
  const file = journalFile(dir, service.name);
  let journal: InPlaceJournal = resumed ?? { toTime, phase: "started", blocked: await loginsNow(admin, place.database, service) };
  write(file, journal);
  const readers = new Set(place.logins.filter((l) => l.kind === "readonly").flatMap(loginRoleNames));
  try {
    await setLogin(
      admin,
      place.database,
      journal.blocked.filter((r) => !readers.has(r)),
      false,
    );
    if (!journal.backupBeforeReplace) {
      journal = { ...journal, phase: "backed-up", backupBeforeReplace: await backUpBeforeReplace(ctx, service.name) };
      write(file, journal);
    }
    await setLogin(
      admin,
      place.database,
      journal.blocked.filter((r) => readers.has(r)),
      false,
    );
    journal = { ...journal, phase: "replacing" };
    write(file, journal);
    const restore = await restoreBackup(
      extracted.store,
      extracted.manifest,
      {
        connection: admin,
        database: place.database,
        create: false,
        overwrite: true,
        ownerRole: service.owner.name,
        requireOwnerRole: true,
        scope: place.schemas,
      },
      clientTools(ctx.projectDir),
    ).catch((e: unknown) => {
      throw new BackupError(
        `${(e as Error).message}\nThe data service ${service.name} had before is backup ${journal.backupBeforeReplace}: run the same restore again to finish it, or db-platform backup restore --stack ${ctx.stack} --service ${service.name} --backup ${journal.backupBeforeReplace} --target postgresql://…/${place.database} --overwrite`,
      );
    });
    await setLogin(admin, place.database, journal.blocked, true);
    fs.rmSync(file, { force: true });
    return { restore, backupBeforeReplace: journal.backupBeforeReplace as string };
  } catch (e) {
    // Nothing replaced yet: the journal goes and the logins come back. Replacing: both stay for the re-run.
    if (journal.phase !== "replacing") {
      await setLogin(admin, place.database, journal.blocked, true).catch(() => undefined);
      fs.rmSync(file, { force: true });
    }
    throw e;
  }
}
