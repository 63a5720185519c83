/**
 * Local stacks save their state once, at the end of an engine operation (PULUMI_SKIP_CHECKPOINTS;
 * docs/apply-speed.md). The engine also saves it when the operation fails or is interrupted with
 * Ctrl-C. Only a process that dies without that last save (kill -9, out of memory, power loss)
 * leaves objects in PostgreSQL that the state does not know: the next `up` would fail on them
 * ("role … already exists"). A marker file lives while an operation runs; finding it with its
 * process gone, the next operation recovers first: the stale lock is released, the state refreshed
 * from the servers, and the declared roles, databases and schemas the state lacks (made by the
 * dead operation, so empty) are dropped, so the `up` creates them again. One that holds tables or
 * owns objects elsewhere is never dropped: recovery stops and names it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { escapeIdentifier } from "pg";
import { loginRoleNames, type Spec } from "../../components/spec";
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { localInstances, localServers } from "../local/local";
import { isAlive } from "../local/processes";

export interface ApplyMarker {
  readonly pid: number;
  readonly operation: string;
  readonly started: string;
}

export class RecoveryError extends Error {}

function markerFile(projectDir: string, stack: string): string {
  return path.join(projectDir, ".db-platform", "state", `${stack}.applying.json`);
}

/**
 * Run an engine operation with the marker in place; it is removed once the engine has returned
 * (state saved). Refused while another live process holds the marker of the stack.
 */
export async function markedOperation<T>(projectDir: string, stack: string, operation: string, f: () => Promise<T>): Promise<T> {
  const file = markerFile(projectDir, stack);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const marker: ApplyMarker = { pid: process.pid, operation, started: new Date().toISOString() };
  try {
    fs.writeFileSync(file, JSON.stringify(marker), { flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const other = JSON.parse(fs.readFileSync(file, "utf8")) as ApplyMarker;
    throw new RecoveryError(
      `stack ${stack}: a ${other.operation} started ${other.started} (pid ${other.pid}) is still running; wait for it`,
    );
  }
  try {
    return await f();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** The marker of an operation whose process died before the engine saved the state, if any. */
export function unsavedOperation(projectDir: string, stack: string): ApplyMarker | undefined {
  const file = markerFile(projectDir, stack);
  if (!fs.existsSync(file)) return undefined;
  const marker = JSON.parse(fs.readFileSync(file, "utf8")) as ApplyMarker;
  return isAlive(marker.pid) ? undefined : marker;
}

export function clearUnsavedOperation(projectDir: string, stack: string): void {
  fs.rmSync(markerFile(projectDir, stack), { force: true });
}

/** What the state knows, by kind: role names, database names, `database.schema`. */
export interface KnownObjects {
  readonly roles: ReadonlySet<string>;
  readonly databases: ReadonlySet<string>;
  readonly schemas: ReadonlySet<string>;
}

/** The PostgreSQL objects a `pulumi stack export` deployment records. */
export function knownObjects(resources: ReadonlyArray<{ type: string; outputs?: Record<string, unknown> }>): KnownObjects {
  const roles = new Set<string>();
  const databases = new Set<string>();
  const schemas = new Set<string>();
  for (const r of resources) {
    const o = r.outputs ?? {};
    if (r.type === "postgresql:index/role:Role") roles.add(String(o.name));
    if (r.type === "postgresql:index/database:Database") databases.add(String(o.name));
    if (r.type === "postgresql:index/schema:Schema") schemas.add(`${String(o.database)}.${String(o.name)}`);
  }
  return { roles, databases, schemas };
}

export interface Orphans {
  readonly server: string;
  readonly roles: string[];
  readonly databases: string[];
  /** [database, schema] */
  readonly schemas: Array<[string, string]>;
}

/** Declared on each local server, present there, unknown to the state. */
export async function findOrphans(spec: Spec, stack: string, projectDir: string, known: KnownObjects): Promise<Orphans[]> {
  const out: Orphans[] = [];
  for (const server of localServers(spec)) {
    const services = spec.services.filter((s) => s.server === server.name);
    const { primary } = localInstances(server, stack, projectDir, "");
    const c = await primary.superuserClient();
    try {
      const roles = (await c.query<{ rolname: string }>("SELECT rolname FROM pg_roles")).rows.map((r) => r.rolname);
      const databases = (await c.query<{ datname: string }>("SELECT datname FROM pg_database")).rows.map((r) => r.datname);
      // The services' roles and the server's monitoring login (components/monitoring.ts).
      const declaredRoles = [...services.flatMap((s) => [s.owner.name, ...s.logins.flatMap(loginRoleNames)]), MONITOR_ROLE];
      const declaredDatabases = [...new Set(services.map((s) => s.database))];
      const orphanDatabases = declaredDatabases.filter((d) => databases.includes(d) && !known.databases.has(d));
      const schemas: Array<[string, string]> = [];
      for (const s of services.filter(
        (x) => x.isolation === "schema" && databases.includes(x.database) && !orphanDatabases.includes(x.database),
      )) {
        const d = await primary.superuserClient(s.database);
        try {
          const present = (await d.query<{ nspname: string }>("SELECT nspname FROM pg_namespace")).rows.map((r) => r.nspname);
          for (const schema of s.schemas)
            if (present.includes(schema) && !known.schemas.has(`${s.database}.${schema}`)) schemas.push([s.database, schema]);
        } finally {
          await d.end();
        }
      }
      out.push({
        server: server.name,
        roles: declaredRoles.filter((r) => roles.includes(r) && !known.roles.has(r)),
        databases: orphanDatabases,
        schemas,
      });
    } finally {
      await c.end();
    }
  }
  return out;
}

async function tablesIn(client: { query: (q: string, v?: unknown[]) => Promise<{ rows: Array<{ n: string }> }> }, schema?: string) {
  const r = await client.query(
    `SELECT count(*)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
        AND ($1::text IS NULL OR n.nspname = $1)`,
    [schema ?? null],
  );
  return Number(r.rows[0].n);
}

/**
 * Drop the orphans (schemas, then databases, then roles), each only when it holds no table; roles
 * through DROP OWNED in every database, which only removes privileges and default privileges of
 * a role that owns nothing. Returns one line per dropped object.
 */
export async function dropOrphans(spec: Spec, stack: string, projectDir: string, orphans: readonly Orphans[]): Promise<string[]> {
  const done: string[] = [];
  for (const o of orphans) {
    const server = localServers(spec).find((s) => s.name === o.server);
    if (!server) continue;
    const { primary } = localInstances(server, stack, projectDir, "");
    for (const [database, schema] of o.schemas) {
      const c = await primary.superuserClient(database);
      try {
        const n = await tablesIn(c, schema);
        if (n > 0) throw new RecoveryError(`schema ${schema} in database ${database} holds ${n} tables: not dropped`);
        await c.query(`DROP SCHEMA ${escapeIdentifier(schema)} CASCADE`);
        done.push(`schema ${database}.${schema}`);
      } finally {
        await c.end();
      }
    }
    for (const database of o.databases) {
      const d = await primary.superuserClient(database);
      try {
        const n = await tablesIn(d);
        if (n > 0) throw new RecoveryError(`database ${database} holds ${n} tables: not dropped`);
      } finally {
        await d.end();
      }
      const c = await primary.superuserClient();
      try {
        await c.query(`DROP DATABASE ${escapeIdentifier(database)} WITH (FORCE)`);
        done.push(`database ${database}`);
      } finally {
        await c.end();
      }
    }
    if (o.roles.length === 0) continue;
    const c = await primary.superuserClient();
    let databases: string[];
    try {
      const owning = await c.query<{ role: string }>(
        `SELECT DISTINCT r.rolname AS role FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid
          WHERE s.deptype = 'o' AND s.classid <> 'pg_default_acl'::regclass AND r.rolname = ANY($1)`,
        [o.roles],
      );
      if (owning.rows.length > 0) throw new RecoveryError(`roles ${owning.rows.map((r) => r.role).join(", ")} own objects: not dropped`);
      databases = (await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datallowconn")).rows.map((r) => r.datname);
    } finally {
      await c.end();
    }
    const list = o.roles.map(escapeIdentifier).join(", ");
    for (const database of databases) {
      const d = await primary.superuserClient(database);
      try {
        await d.query(`DROP OWNED BY ${list}`);
      } finally {
        await d.end();
      }
    }
    const d = await primary.superuserClient();
    try {
      for (const role of o.roles) {
        await d.query(`DROP ROLE ${escapeIdentifier(role)}`);
        done.push(`role ${role}`);
      }
    } finally {
      await d.end();
    }
  }
  return done;
}
