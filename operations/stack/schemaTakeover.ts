/**
 * Before `up` applies anything: a schema the stack is about to declare must not already exist
 * with another service's objects in it. The PostgreSQL provider adopts an existing schema (it
 * only sets the owner), and the platform's admin, a member of every service's owner role, may
 * do that — so a schema that a service with `createSchemas` made in a shared database under a
 * name another service is then declared with would be handed over with the first service's
 * tables inside, still owned, and so fully usable, by the first service's roles. A schema that
 * exists owned, with everything in it, by the declaring service's own owner role (one its
 * migration tool made, now declared) is adopted: that is how such a schema joins the stack.
 * Local servers are checked here; on others the audit's `undeclared-schema` reports the schema
 * as soon as it exists (docs/service-teams.md).
 */
import { placesOf, type Spec } from "../../components/spec";
import { localInstances, localServers } from "../local/local";
import { DataProtectionError } from "./dataProtection";
import type { KnownObjects } from "./unsavedApply";

interface Taken {
  readonly service: string;
  readonly database: string;
  readonly schema: string;
  readonly owners: readonly string[];
}

/** Owners of a schema and of everything in it (relations, functions, types). */
const OWNERS = `
SELECT DISTINCT pg_get_userbyid(owner) AS owner FROM (
  SELECT n.nspowner AS owner FROM pg_namespace n WHERE n.nspname = $1
  UNION ALL SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
  UNION ALL SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
  UNION ALL SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1
) o ORDER BY 1`;

/** Declared schemas the state does not know yet that exist on a local server with objects of another role. */
export async function takenSchemas(spec: Spec, stack: string, projectDir: string, known: KnownObjects): Promise<Taken[]> {
  const out: Taken[] = [];
  for (const server of localServers(spec)) {
    const wanted = spec.services
      .flatMap((s) => placesOf(s).map((place) => ({ service: s.name, owner: s.owner.name, place })))
      .filter(({ place }) => place.server === server.name)
      .flatMap(({ service, owner, place }) => place.schemas.map((schema) => ({ service, owner, database: place.database, schema })))
      .filter((w) => !known.schemas.has(`${w.database}.${w.schema}`));
    if (wanted.length === 0) continue;
    const { primary } = localInstances(server, stack, projectDir, "");
    const c = await primary.superuserClient();
    let databases: string[];
    try {
      databases = (await c.query<{ datname: string }>("SELECT datname FROM pg_database")).rows.map((r) => r.datname);
    } finally {
      await c.end();
    }
    for (const database of [...new Set(wanted.map((w) => w.database))].filter((d) => databases.includes(d))) {
      const d = await primary.superuserClient(database);
      try {
        for (const w of wanted.filter((x) => x.database === database)) {
          const owners = (await d.query<{ owner: string }>(OWNERS, [w.schema])).rows.map((r) => r.owner);
          if (owners.length > 0 && owners.some((o) => o !== w.owner)) out.push({ ...w, owners });
        }
      } finally {
        await d.end();
      }
    }
  }
  return out;
}

/** Refuse, before anything is applied, to declare a schema that holds another role's objects. */
export async function checkSchemasFree(spec: Spec, stack: string, projectDir: string, known: KnownObjects): Promise<void> {
  const taken = await takenSchemas(spec, stack, projectDir, known);
  if (taken.length === 0) return;
  const lines = taken.map(
    (t) =>
      `  services.${t.service}.schemas: schema ${t.schema} already exists in database ${t.database}, with objects owned by ${t.owners.join(", ")}; ` +
      `up would hand it to ${t.service} with them inside. Rename or drop it as its owner first (ALTER SCHEMA ${t.schema} RENAME TO …), or declare another schema`,
  );
  throw new DataProtectionError(`stack ${stack}: refused before anything was applied:\n${lines.join("\n")}`);
}
