/**
 * `db-platform up` and `db-platform destroy`: a stack applied through the real Pulumi engine
 * (the CLI from scripts/engine/bootstrap.sh) with the policy pack, the program run in-process by
 * the Automation API (so no Node.js language host is needed), its state in the local file
 * backend under .db-platform/state. The provider plugins come the normal way: installed ones are
 * used, missing ones are installed with `pulumi plugin install`, and when that is impossible the
 * exact command is named.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type EngineEvent, LocalWorkspace, type OutputMap, type Stack } from "@pulumi/pulumi/automation";
import { runProgram } from "../../components/program";
import { checkDataKept, DATA_TYPES, unprotectData } from "./dataProtection";
import type { Spec } from "../../components/spec";
import { configFromPulumi } from "../../components/spec/pulumiConfig";
import { type BackupContext, backupList, backupRun, type RunOutcome } from "../backup/command";
import { engineEnv, ensureEngine, LocalCommandError, localCommand, localRoot, localServers, pulumiCommand } from "../local/local";
import { prunePoolers, syncPoolers } from "../local/pools";
import { stackPolicyConfigFile } from "./policyCheck";
import { EngineProgress } from "./progress";
import { enforce, notYetSaid, violationsBeforeUp, violationsOfState } from "./upPolicy";
import { withoutPromiseStacks } from "./promiseStacks";
import { clearUnsavedOperation, dropOrphans, findOrphans, knownObjects, markedOperation, unsavedOperation } from "./unsavedApply";
import { checkNoMajorChange } from "./versionGuard";
import { checkSchemasFree } from "./schemaTakeover";

export class PluginError extends Error {}

export interface PluginRequirement {
  readonly name: string;
  readonly version: string;
}

/** The plugin an installed Pulumi SDK package (`@pulumi/<pkg>`) talks to, at its version. */
export function sdkPlugin(projectDir: string, pkg: string): PluginRequirement {
  const file = path.join(projectDir, "node_modules", "@pulumi", pkg, "package.json");
  const meta = JSON.parse(fs.readFileSync(file, "utf8")) as { version: string; pulumi?: { name?: string; version?: string } };
  return { name: meta.pulumi?.name ?? pkg, version: (meta.pulumi?.version ?? meta.version).replace(/^v/, "") };
}

/** The provider plugins a stack's program needs, at the versions of the installed SDK packages. */
export function requiredPlugins(spec: Spec, projectDir: string): PluginRequirement[] {
  const needs = new Set<string>(["postgresql", "random"]);
  if (spec.servers.some((s) => s.hosting === "rds") || spec.backups?.storage === "s3") needs.add("aws");
  if (spec.servers.some((s) => s.hosting === "container") || spec.backups?.storage === "s3") needs.add("docker");
  return [...needs].sort().map((pkg) => sdkPlugin(projectDir, pkg));
}

/** Which of the plugins are not installed for the engine (`pulumi plugin ls`). */
export function missingPlugins(required: readonly PluginRequirement[], env: Record<string, string> = {}): PluginRequirement[] {
  const listed = execFileSync("pulumi", ["plugin", "ls", "--json"], { env: { ...process.env, ...env }, encoding: "utf8", stdio: "pipe" });
  const installed = JSON.parse(listed || "[]") as Array<{ name: string; kind: string; version: string }>;
  return required.filter((p) => !installed.some((i) => i.kind === "resource" && i.name === p.name && i.version === p.version));
}

/** The install command a user with a network runs for a plugin. */
export function installCommand(p: PluginRequirement): string {
  return `pulumi plugin install resource ${p.name} ${p.version}`;
}

/** Missing plugins are installed the normal way; when that fails, the error names each command. */
export function ensurePlugins(required: readonly PluginRequirement[], env: Record<string, string>, say: (s: string) => void): void {
  const failed: string[] = [];
  for (const p of missingPlugins(required, env)) {
    say(`plugins: installing ${p.name} v${p.version}: ${installCommand(p)}\n`);
    try {
      execFileSync("pulumi", ["plugin", "install", "resource", p.name, p.version], { env: { ...process.env, ...env }, stdio: "pipe" });
    } catch (e) {
      const detail = String((e as { stderr?: string }).stderr ?? "")
        .trim()
        .split("\n")
        .pop();
      failed.push(`  ${installCommand(p)}${detail ? `   (${detail})` : ""}`);
    }
  }
  if (failed.length > 0) {
    throw new PluginError(
      `the Pulumi provider plugins this stack needs are missing and could not be installed; run:\n${failed.join("\n")}`,
    );
  }
}

export interface ApplyContext {
  readonly spec: Spec;
  readonly stack: string;
  readonly project: string;
  readonly projectDir: string;
  /** Engine progress. */
  readonly progress: (s: string) => void;
  /** Progress rewrites one line in place (a terminal) rather than printing a line every few seconds. */
  readonly tty?: boolean;
}

/** Stacks whose servers are all local and whose backups stay local: the stacks `npm start` runs. */
export function isLocalStack(spec: Spec): boolean {
  return spec.servers.length > 0 && spec.servers.every((s) => s.hosting === "local") && spec.backups?.storage !== "s3";
}

/** Resource operations at once on local stacks (measured in docs/apply-speed.md). */
export const LOCAL_PARALLEL = 16;

/**
 * The engine settings of a stack. Local stacks: the state is saved once, at the end of each
 * operation, not after every step (the file backend rewrites the whole state each time: 90 % of
 * a 50-service `up`), and LOCAL_PARALLEL operations run at once; an operation killed before its
 * save is recovered by the next one (operations/stack/unsavedApply.ts). Other stacks keep the engine's
 * defaults: a checkpoint after every step. PULUMI_SKIP_CHECKPOINTS and PULUMI_PARALLEL, when set,
 * win.
 */
export function engineSettings(spec: Spec, env: NodeJS.ProcessEnv = process.env): { envVars: Record<string, string>; parallel?: number } {
  if (!isLocalStack(spec)) return { envVars: {} };
  return {
    envVars: env.PULUMI_SKIP_CHECKPOINTS === undefined ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {},
    parallel: env.PULUMI_PARALLEL === undefined ? LOCAL_PARALLEL : undefined,
  };
}

/** The stack in the engine, its program run in-process: what `pulumi up` of index.ts would register. */
async function engineStack(ctx: ApplyContext): Promise<Stack> {
  ensureEngine(ctx.projectDir);
  const env = { ...engineEnv(ctx.projectDir, ctx.stack), ...engineSettings(ctx.spec).envVars };
  ensurePlugins(requiredPlugins(ctx.spec, ctx.projectDir), env, ctx.progress);
  return LocalWorkspace.createOrSelectStack(
    {
      stackName: ctx.stack,
      projectName: ctx.project,
      program: async () => {
        const o = runProgram(configFromPulumi());
        return {
          environment: o.environment,
          servers: o.servers,
          services: o.services,
          ...(o.backupBucket ? { backupBucket: o.backupBucket } : {}),
          monitoring: o.monitoring,
        };
      },
    },
    { workDir: ctx.projectDir, envVars: env, pulumiCommand: await pulumiCommand(ctx.projectDir) },
  );
}

/** The stack's policy config file, as `policy check` picks it: policies/config/<stack>.json when present. */
export function policyPackArgs(projectDir: string, stack: string): { policyPacks: string[]; policyPackConfigs: string[] } {
  const config = stackPolicyConfigFile(projectDir, stack);
  return { policyPacks: [path.join(projectDir, "policies")], policyPackConfigs: config ? [config] : [] };
}

export interface UpResult {
  /** Resource operations by kind (`create`, `update`, `delete`, `same`, …). */
  readonly changes: Readonly<Record<string, number>>;
  readonly outputs: OutputMap;
  readonly seconds: number;
}

/** Progress of one engine operation, shown through the context; finished however the operation ends. */
async function withProgress<T>(ctx: ApplyContext, operation: string, f: (onEvent: (e: EngineEvent) => void) => Promise<T>): Promise<T> {
  const display = new EngineProgress(operation, ctx.progress, { tty: ctx.tty === true });
  try {
    return await withoutPromiseStacks(() => f(display.onEvent));
  } finally {
    display.finish();
  }
}

/**
 * Before an operation on a local stack: if the last one died before the engine saved the state,
 * release its lock, refresh the state from the servers and drop what it created that the state
 * does not know (operations/stack/unsavedApply.ts).
 */
async function recoverUnsaved(ctx: ApplyContext, stack: Stack): Promise<void> {
  const marker = unsavedOperation(ctx.projectDir, ctx.stack);
  if (!marker) return;
  ctx.progress(
    `stack ${ctx.stack}: the ${marker.operation} started ${marker.started} (pid ${marker.pid}) ended without saving its state; recovering\n`,
  );
  await stack.cancel();
  await withProgress(ctx, "refresh", (onEvent) => stack.refresh({ onEvent }));
  const state = await stack.exportStack();
  const known = knownObjects(
    (state.deployment as { resources?: Array<{ type: string; outputs?: Record<string, unknown> }> }).resources ?? [],
  );
  const orphans = await findOrphans(ctx.spec, ctx.stack, ctx.projectDir, known);
  for (const line of await dropOrphans(ctx.spec, ctx.stack, ctx.projectDir, orphans)) {
    ctx.progress(`  dropped ${line}: created by the unsaved ${marker.operation}, unknown to the state\n`);
  }
  clearUnsavedOperation(ctx.projectDir, ctx.stack);
}

/**
 * The provider drops a database after terminating every session in it, autovacuum workers
 * included, which a non-superuser admin may not ("permission denied to terminate process",
 * 42501): seen at 200 services, when autovacuum visited a new database at that moment. It has
 * already closed the database to new connections, so the engine's saved state plus one more run
 * of the same operation finishes the delete.
 */
const AUTOVACUUM_RACE = /error terminating database connections: pq: permission denied to terminate process/;

export async function retryingAutovacuumRace<T>(operation: string, say: (s: string) => void, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (!AUTOVACUUM_RACE.test(e instanceof Error ? e.message : String(e))) throw e;
    say(
      `${operation}: a database's sessions could not all be closed (an autovacuum worker, which the admin may not end); running the ${operation} again\n`,
    );
    return f();
  }
}

/** Run an operation that writes the state: on a local stack, recovered first and marked while it runs. */
async function stateOperation<T>(ctx: ApplyContext, stack: Stack, operation: string, f: () => Promise<T>): Promise<T> {
  if (!isLocalStack(ctx.spec)) return f();
  await recoverUnsaved(ctx, stack);
  return markedOperation(ctx.projectDir, ctx.stack, operation, f);
}

/**
 * Start the stack's local servers, then `pulumi up`, with the policy pack's rules before anything
 * is applied and on the state the engine saved (operations/stack/upPolicy.ts: the engine itself
 * would run them only after applying, at the cost of two pack calls per resource).
 */
export async function upStack(ctx: ApplyContext): Promise<UpResult> {
  const started = Date.now();
  // The program under the SDK's mocks, in this process while the servers and the engine start
  // (on a worker thread it would leave the engine's run of the same program without a warm JIT:
  // measured no faster).
  const before = violationsBeforeUp(ctx);
  before.catch(() => undefined);
  if (localServers(ctx.spec).length > 0) await localCommand("start", ctx.spec, ctx.stack, ctx.projectDir, ctx.progress);
  const stack = await engineStack(ctx);
  const { parallel } = engineSettings(ctx.spec);
  const { result, prior, first } = await stateOperation(ctx, stack, "up", async () => {
    const prior = await checkDataKept(stack, ctx.spec, ctx.stack);
    checkNoMajorChange(prior.deployment?.resources ?? [], ctx.spec, ctx.stack);
    await checkSchemasFree(ctx.spec, ctx.stack, ctx.projectDir, knownObjects(prior.deployment?.resources ?? []));
    const first = await before;
    enforce(first, false, ctx.progress);
    await prunePoolers(ctx.spec, localRoot(ctx.projectDir, ctx.stack), ctx.projectDir);
    const result = await retryingAutovacuumRace("up", ctx.progress, () =>
      withProgress(ctx, "up", (onEvent) => stack.up({ parallel, onEvent })),
    );
    return { result, prior, first };
  });
  // Nothing applied: the state is the one read before (a second export would cost a second at 50 services).
  const changed = Object.entries(result.summary.resourceChanges ?? {}).some(([kind, n]) => kind !== "same" && n > 0);
  enforce(notYetSaid(violationsOfState(ctx, changed ? await stack.exportStack() : prior), first), true, ctx.progress);
  if (ctx.spec.servers.some((s) => s.hosting === "local" && s.pooler)) {
    const services = (result.outputs.services?.value ?? {}) as Parameters<typeof syncPoolers>[3];
    for (const line of await syncPoolers(ctx.spec, localRoot(ctx.projectDir, ctx.stack), ctx.projectDir, services))
      ctx.progress(`${line}\n`);
  }
  return {
    changes: result.summary.resourceChanges ?? {},
    outputs: result.outputs,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Lift the protection of some of the stack's databases and schemas, named as the program names
 * them (`<service>-db`, `<service>-schema-<schema>`, `<server>-<database>-shared-db`), so the next
 * `up` may delete them: what `db-platform move` does, after its confirmation, to the place a
 * service leaves. Returns the names lifted.
 */
export async function liftProtection(ctx: ApplyContext, names: ReadonlySet<string>): Promise<string[]> {
  const stack = await engineStack(ctx);
  return stateOperation(ctx, stack, "unprotect", async () => {
    const state = await stack.exportStack();
    const resources = (state.deployment?.resources ?? []) as Array<{ type: string; urn: string; protect?: boolean }>;
    const lifted: string[] = [];
    for (const r of resources) {
      const name = r.urn.split("::").pop() ?? "";
      if (r.protect && DATA_TYPES.has(r.type) && names.has(name)) {
        r.protect = false;
        lifted.push(name);
      }
    }
    if (lifted.length > 0) await stack.importStack(state);
    return lifted;
  });
}

/** The stack's resources as the engine's state holds them (`pulumi stack export`). */
export async function stateResources(ctx: ApplyContext): Promise<Array<{ type: string; urn: string; inputs?: Record<string, unknown> }>> {
  const state = await (await engineStack(ctx)).exportStack();
  return state.deployment?.resources ?? [];
}

/** `pulumi preview` with the policy pack; with `expectNoChanges`, any change is an error. */
export async function previewStack(ctx: ApplyContext, expectNoChanges = false): Promise<Readonly<Record<string, number>>> {
  const stack = await engineStack(ctx);
  const { parallel } = engineSettings(ctx.spec);
  const result = await withProgress(ctx, "preview", (onEvent) =>
    stack.preview({ ...policyPackArgs(ctx.projectDir, ctx.stack), expectNoChanges, parallel, onEvent }),
  );
  return result.changeSummary;
}

/** `pulumi destroy` of the stack's resources; the local servers keep running (stop them with `local stop`). */
export async function destroyStack(ctx: ApplyContext): Promise<Readonly<Record<string, number>>> {
  if (localServers(ctx.spec).length > 0) await localCommand("start", ctx.spec, ctx.stack, ctx.projectDir, ctx.progress);
  const stack = await engineStack(ctx);
  const { parallel } = engineSettings(ctx.spec);
  // The logins go: their poolers admit no one from now on, and let go of the databases first.
  await prunePoolers(ctx.spec, localRoot(ctx.projectDir, ctx.stack), ctx.projectDir, true);
  const result = await stateOperation(ctx, stack, "destroy", async () => {
    // `--yes` is the consent to delete the data; strict stacks keep their protection.
    if (!ctx.spec.strict) await unprotectData(stack);
    return retryingAutovacuumRace("destroy", ctx.progress, () =>
      withProgress(ctx, "destroy", (onEvent) => stack.destroy({ parallel, onEvent })),
    );
  });
  return result.summary.resourceChanges ?? {};
}

/**
 * With local backups, each service that has none yet gets its first one right after `up`: a
 * service without a backup is already outside its RPO (the audit reports it). On AWS the
 * scheduled runner takes them.
 */
export async function baselineBackups(ctx: ApplyContext): Promise<RunOutcome[]> {
  if (ctx.spec.backups?.storage !== "local") return [];
  const backups: BackupContext = { spec: ctx.spec, stack: ctx.stack, projectDir: ctx.projectDir };
  const backedUp = new Set((await backupList(backups)).map((m) => m.service));
  const out: RunOutcome[] = [];
  for (const s of ctx.spec.services.filter((x) => !backedUp.has(x.name))) out.push(...(await backupRun(backups, { service: s.name })));
  return out;
}

/** One line for a change summary: `created 186` or `no changes (186 unchanged)`. */
export function describeChanges(changes: Readonly<Record<string, number>>): string {
  const verbs: Record<string, string> = { create: "created", update: "updated", delete: "deleted", replace: "replaced" };
  const done = Object.entries(changes)
    .filter(([k, n]) => k !== "same" && n > 0)
    .map(([k, n]) => `${verbs[k] ?? k} ${n}`);
  const same = changes.same ?? 0;
  return done.length === 0 ? `no changes (${same} unchanged)` : `${done.join(", ")}${same ? `, ${same} unchanged` : ""}`;
}

/** `postgresql://user:pass@…` with the password masked. */
export function maskPassword(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]+:)[^@]*@/, "$1****@");
}

interface ServiceOutput {
  readonly server: string;
  readonly database: string;
  readonly schemas: readonly string[];
  readonly urls: Readonly<Record<string, string>>;
  readonly directUrls?: Readonly<Record<string, string>>;
}

/** Each service's connection URLs from the stack outputs, one line each (a pooled login's direct URL after it). */
export function formatServiceUrls(outputs: OutputMap, showSecrets: boolean): string {
  const services = (outputs.services?.value ?? {}) as Record<string, ServiceOutput>;
  const lines: string[] = [];
  for (const [name, s] of Object.entries(services).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${name} (server ${s.server}, database ${s.database}, schemas ${s.schemas.join(", ")})`);
    const shown = (url: string) => (showSecrets ? url : maskPassword(url));
    for (const [login, url] of Object.entries(s.urls)) {
      const direct = s.directUrls?.[login];
      lines.push(`  ${login.padEnd(9)} ${shown(url)}${direct ? " (pooled)" : ""}`);
      if (direct) lines.push(`  ${"".padEnd(9)} ${shown(direct)} (direct)`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export { LocalCommandError };
