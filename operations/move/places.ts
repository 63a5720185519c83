/**
 * What a move reads and checks on the servers, as the admin (operations/move/move.ts): open
 * sessions of the service, a place against an export's manifest, whether a place holds data,
 * what an owner role still has in a database it left; and the data resources of a place.
 */
import { Client, escapeIdentifier } from "pg";
import { serviceDatabaseResource, serviceSchemaResource, sharedDatabaseResource } from "../../components/dataResources";
import { loginRoleNames, placesOf, type ServiceSpec, type Spec } from "../../components/spec";
import { type BackupContext, serverAdminConnection, serverOf } from "../backup/command";
import { BackupError, type Connection, message, pgConfig } from "../backup/runner";
import { countDifferences, schemaHash, tableCounts } from "../backup/snapshot";
import type { BackupManifest } from "../backup/storage";
import { type MoveContext, MoveError } from "./plan";

export function backupContext(ctx: MoveContext, spec: Spec): BackupContext {
  return { spec, stack: ctx.stack, projectDir: ctx.projectDir, urls: ctx.urls };
}

async function session<T>(connection: Connection, database: string, f: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(pgConfig(connection, database));
  try {
    await c.connect();
    return await f(c);
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new MoveError(`${database} as ${connection.user}: ${message(e)}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function adminOf(ctx: MoveContext, spec: Spec, place: ServiceSpec): Connection {
  return serverAdminConnection(
    backupContext(ctx, spec),
    serverOf(spec, place),
    ctx.adminUrls ?? {},
    "--admin-url",
    `read the service's data and act as ${place.owner.name}`,
  );
}

/** Sessions of the service's logins on a place's server, by login. */
export async function openSessions(ctx: MoveContext, spec: Spec, place: ServiceSpec): Promise<string[]> {
  const logins = place.logins.flatMap(loginRoleNames);
  return session(adminOf(ctx, spec, place), "postgres", async (c) => {
    const { rows } = await c.query<{ usename: string; n: string }>(
      "SELECT usename, count(*) AS n FROM pg_stat_activity WHERE usename = ANY($1::text[]) GROUP BY usename ORDER BY usename",
      [logins],
    );
    return rows.map((r) => `${r.usename} (${r.n})`);
  });
}

/** How a place differs from a manifest (row counts, schema hash); empty when it matches. */
export async function differencesFrom(ctx: MoveContext, spec: Spec, place: ServiceSpec, manifest: BackupManifest): Promise<string[]> {
  return session(adminOf(ctx, spec, place), place.database, async (c) => {
    const out = countDifferences(manifest.tables, await tableCounts(c, manifest.schemas));
    const hash = await schemaHash(c, manifest.schemas);
    if (hash !== manifest.schemaHash) out.push(`schema hash ${hash} differs from the manifest's ${manifest.schemaHash}`);
    return out;
  });
}

/** Whether a place holds any table (or other object) in the service's schemas. */
export async function holdsData(ctx: MoveContext, spec: Spec, place: ServiceSpec): Promise<boolean> {
  return session(adminOf(ctx, spec, place), place.database, async (c) => {
    const { rows } = await c.query(
      "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[]) LIMIT 1",
      [[...place.schemas]],
    );
    return rows.length > 0;
  });
}

/** The resources of a place that hold data, by the names the program gives them. */
export function dataNames(spec: Spec, place: ServiceSpec, prefix: string): Set<string> {
  const names = new Set(place.schemas.map((schema) => serviceSchemaResource(prefix, schema)));
  if (place.isolation === "database") names.add(serviceDatabaseResource(prefix));
  // A shared database no other place uses any more goes with it.
  const others = spec.services.flatMap(placesOf).filter((p) => p !== place && p.name !== place.name);
  if (
    place.isolation === "schema" &&
    !others.some((p) => p.isolation === "schema" && p.server === place.server && p.database === place.database)
  ) {
    names.add(sharedDatabaseResource(place.server, place.database));
  }
  return names;
}

/**
 * A schema place retired on the same server: the owner role stays, now managed through the
 * server's provider, whose DROP ROLE later cleans only the database it connects to. What the role
 * still has in the shared database — the database-wide default privilege that kept EXECUTE on its
 * functions from PUBLIC, which the provider leaves behind when it is deleted alone — goes now, as
 * the provider's own role deletion would clear it (`DROP OWNED`, as a member of the role).
 */
export async function clearOwnerLeftovers(ctx: MoveContext, spec: Spec, old: ServiceSpec, log: string[]): Promise<void> {
  const admin = adminOf(ctx, spec, old);
  const exists = await session(
    admin,
    "postgres",
    async (c) => (await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [old.database])).rows.length > 0,
  );
  if (!exists) return;
  await session(admin, old.database, async (c) => {
    const { rows } = await c.query<{ what: string }>(
      `SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS what FROM pg_shdepend d
       JOIN pg_database b ON b.oid = d.dbid WHERE b.datname = current_database() AND d.refobjid = $1::regrole`,
      [old.owner.name],
    );
    if (rows.length === 0) return;
    await c.query(`DROP OWNED BY ${escapeIdentifier(old.owner.name)}`);
    log.push(`retire: cleared what ${old.owner.name} still had in ${old.database}: ${rows.map((r) => r.what).join(", ")}`);
  });
}
