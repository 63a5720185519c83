/**
 * A service's data is never lost by a config change. Its database and schemas (and a shared
 * database) are `protect`ed in every environment (components/service/serviceDatabase.ts) unless
 * the service says `allowDataLoss: true`; the engine then refuses, already at preview, any plan
 * that deletes or replaces them. `up` checks the stack's state against the spec before it applies
 * anything, so a refused change leaves nothing half-done. This module also explains a refusal in
 * the platform's terms and lifts the protection for `destroy --yes`, whose confirmation is the consent.
 */
import type { Deployment, Stack } from "@pulumi/pulumi/automation";
import { dataResources } from "../../components/dataResources";
import type { Spec } from "../../components/spec";

/** The resources that hold a service's data. */
export const DATA_TYPES: ReadonlySet<string> = new Set(["postgresql:index/database:Database", "postgresql:index/schema:Schema"]);

/** A data resource's URN: its type and its name (`<service>-db`, `<service>-schema-<schema>`, `<server>-<database>-shared-db`). */
const DATA_URN = /\$postgresql:index\/(database|schema):\w+::([^$]+)$/;
const REFUSED =
  /(?:resource|replace resource) "(urn:pulumi:[^"]+)"[\s\S]{0,40}?(?:cannot be deleted|as it is currently marked for protection)/g;

export interface RefusedData {
  /** The service whose database or schema it is; undefined for a shared database. */
  readonly service?: string;
  /** `database`, `schema`, or `shared database`. */
  readonly kind: string;
  /** The resource's name in the stack. */
  readonly name: string;
}

/** A data resource by its URN: which service's database or schema, or which shared database. */
function dataOf(urn: string): RefusedData | undefined {
  const [, kind, name] = DATA_URN.exec(urn) ?? [];
  if (!name) return undefined;
  const shared = /^(.+)-shared-db$/.exec(name);
  if (shared) return { kind: "shared database", name: shared[1] };
  const service = kind === "database" ? /^(.+)-db$/.exec(name) : /^(.+?)-schema-.+$/.exec(name);
  // A move's target place (`<service>.next-…`) holds the same service's data.
  return service ? { service: service[1].replace(/\.next$/, ""), kind, name } : undefined;
}

/** The protected data resources an engine error names as refused deletes or replacements. */
export function refusedData(message: string): RefusedData[] {
  const out = new Map<string, RefusedData>();
  for (const m of message.matchAll(REFUSED)) {
    const data = dataOf(m[1]);
    if (data) out.set(m[1], data);
  }
  return [...out.values()];
}

/** What to tell the user when the engine refused to delete or replace a service's data; undefined for other failures. */
export function protectedDataHint(message: string, stack: string): string | undefined {
  const refused = refusedData(message);
  return refused.length === 0 ? undefined : refusalText(refused, stack);
}

/** The refusal explained: which data, how to move it, how to let it go. */
export function refusalText(refused: readonly RefusedData[], stack: string): string {
  const lines = ["db-platform: this change would delete or replace data, which is refused in every environment:"];
  for (const r of refused) {
    lines.push(
      r.service
        ? `  service ${r.service}: its ${r.kind} (${r.name}) would be deleted or replaced with the service's data`
        : `  the shared database ${r.name} would be deleted with the data of the services in it`,
    );
  }
  const services = [...new Set(refused.flatMap((r) => (r.service ? [r.service] : [])))];
  const each = services.length > 0 ? services : ["<service>"];
  lines.push(
    "To move a service with its data instead, keep its isolation, database and server as they were and run (docs/data-moves.md):",
    ...each.map(
      (s) => `  db-platform move plan --stack ${stack} --service ${s} --to database|schema [--database <name>] [--server <name>]`,
    ),
    "  then db-platform move apply with the same arguments: it copies, verifies and switches, and changes the stack file itself.",
    `To let the data go: set services.<name>.allowDataLoss: true (a service you remove: first, with an up of its own) and run up again.`,
  );
  return `${lines.join("\n")}\n`;
}

/**
 * `destroy --yes`: lift the protection of the stack's databases and schemas so the engine deletes
 * them (strict stacks keep it: they are not destroyed by one command). Returns how many were lifted.
 */
export async function unprotectData(stack: Stack): Promise<number> {
  const state = await stack.exportStack();
  const resources = (state.deployment?.resources ?? []) as Array<{ type: string; protect?: boolean }>;
  let lifted = 0;
  for (const r of resources) {
    if (r.protect && DATA_TYPES.has(r.type)) {
      r.protect = false;
      lifted++;
    }
  }
  if (lifted > 0) await stack.importStack(state);
  return lifted;
}

export class DataProtectionError extends Error {}

interface StateResource {
  readonly type: string;
  readonly urn: string;
  readonly protect?: boolean;
  readonly inputs?: Record<string, unknown>;
}

/**
 * The protected data resources of a stack's state that the spec would delete or replace: one the
 * spec no longer declares (a removed service or schema, a changed isolation), or declares with
 * another name or database. A replacement the spec allows (`allowDataLoss`) is not refused; a
 * removal always is, since the engine refuses to delete a resource that was protected.
 */
export function refusedByState(resources: readonly StateResource[], spec: Spec): RefusedData[] {
  const declared = new Map(dataResources(spec).map((r) => [`${r.kind}|${r.resource}`, r]));
  const out: RefusedData[] = [];
  for (const r of resources) {
    if (!r.protect || !DATA_TYPES.has(r.type)) continue;
    const [, kind, name] = DATA_URN.exec(r.urn) ?? [];
    const data = dataOf(r.urn);
    if (!data) continue;
    // A finished move's target (`<service>.next-…`) takes the service's own name: renamed, not deleted.
    const wanted = declared.get(`${kind}|${name}`) ?? declared.get(`${kind}|${name.replace(/^([^.$]+)\.next-/, "$1-")}`);
    const moved = wanted && (wanted.name !== r.inputs?.name || (kind === "schema" && wanted.database !== r.inputs?.database));
    if (wanted && (!moved || wanted.mayGo)) continue;
    out.push(data);
  }
  // In service order, whatever the state's order.
  const key = (r: RefusedData) => `${r.service ?? ""}|${r.kind}|${r.name}`;
  return out.sort((a, b) => key(a).localeCompare(key(b)));
}

/** Before `up` applies anything: refuse a change that would delete or replace a service's data. Returns the state it read. */
export async function checkDataKept(stack: Stack, spec: Spec, stackName: string): Promise<Deployment> {
  const state = await stack.exportStack();
  const refused = refusedByState((state.deployment?.resources ?? []) as StateResource[], spec);
  if (refused.length > 0)
    throw new DataProtectionError(
      refusalText(refused, stackName)
        .replace(/^db-platform: /, "")
        .trimEnd(),
    );
  return state;
}
