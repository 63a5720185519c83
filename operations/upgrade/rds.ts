/**
 * `db-platform upgrade` of an RDS server: the stack file's `servers.<name>.upgrade` block walks
 * the program through the phases RDS needs (components/servers/rdsUpgrade.ts), each applied by
 * one `up`: cross-region replicas unprotected, then detached; the primary's own update to the new
 * major with the new family's parameter group, allowed and applied now (RDS takes its pre-upgrade
 * snapshot and upgrades the in-region replicas with it); then the block removed, which puts the
 * replicas on the new groups, creates the cross-region replicas again from the upgraded primary
 * and deletes the old groups. Before: a verified backup of each service; after: extensions
 * updated, statistics rebuilt, each service's counts and schema against its backup, the audit,
 * a preview with no changes. A journal beside the stack says where it stands, so a killed apply
 * resumes. docs/upgrades.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { type RdsServerSpec, type RdsUpgradePhase, type Spec, SUPPORTED_VERSIONS } from "../../components/spec";
import { NAMESPACE } from "../../components/spec/naming";
import { runAudit } from "../audit/run";
import { type BackupContext, backupRun, type RunOutcome, selectServices } from "../backup/command";
import { countDifferences } from "../backup/snapshot";
import type { TableCount } from "../backup/storage";
import { loadSpec } from "../move/plan";
import { type ApplyContext, previewStack, stateResources, upStack } from "../stack/stackApply";
import { editConfigFile } from "../stack/stackConfig";
import { stateMajors } from "../stack/versionGuard";
import { UpgradeError, updateExtensions } from "./cluster";
import type { UpgradeContext, UpgradePlan, UpgradeResult } from "./upgrade";

/** What an RDS upgrade reaches the servers with: the services' logins (for backups) and an admin URL per server. */
export interface RdsReach {
  /** `--url service=URL`: a service's read-only login, as `backup run` takes it (else its DB_PLATFORM_LOGIN_* secret). */
  readonly urls?: Readonly<Record<string, string>>;
  /** `--server-url server=URL`: the master user, for extension updates, statistics and the audit. */
  readonly serverUrls?: Readonly<Record<string, string>>;
}

/** The engine, the backups, the audit and the server, as the apply calls them (tests give their own: no AWS here). */
export interface RdsDeps {
  up(ctx: ApplyContext): Promise<unknown>;
  preview(ctx: ApplyContext): Promise<unknown>;
  backup(ctx: BackupContext, server: string): Promise<RunOutcome[]>;
  audit(ctx: UpgradeContext, server: string, serverUrls: Readonly<Record<string, string>>): Promise<string[]>;
  refresh(url: string, databases: readonly string[]): Promise<string[]>;
  /** The major of the server's primary instance in the engine's state. */
  stateMajor(ctx: ApplyContext, server: string): Promise<string | undefined>;
}

/** The steps in order: the journal records the last one done. */
const STEPS = ["backed-up", "unprotect-replicas", "detach-replicas", "upgrade", "finished", "refreshed", "verified"] as const;
type Step = (typeof STEPS)[number];

interface RdsJournal {
  readonly server: string;
  readonly from: string;
  readonly to: string;
  readonly done: Step;
  /** Each service's backup before the upgrade: its id, row counts and schema hash across majors. */
  readonly services: Record<string, { backup: string; tables: TableCount[]; schemaHash: string }>;
}

const reached = (j: RdsJournal, s: Step) => STEPS.indexOf(j.done) >= STEPS.indexOf(s);
const journalFile = (ctx: UpgradeContext, server: string) =>
  path.join(ctx.projectDir, ".db-platform", "upgrades", ctx.stack, `${server}.json`);

function readJournal(ctx: UpgradeContext, server: string): RdsJournal | undefined {
  const file = journalFile(ctx, server);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as RdsJournal) : undefined;
}

function writeJournal(ctx: UpgradeContext, j: RdsJournal): RdsJournal {
  const file = journalFile(ctx, j.server);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(j, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return j;
}

/** The phases this server goes through: the replica phases only where it has cross-region replicas. */
function phasesOf(server: RdsServerSpec): RdsUpgradePhase[] {
  return server.replicas.some((r) => r.crossRegion) ? ["unprotect-replicas", "detach-replicas", "upgrade"] : ["upgrade"];
}

/** The plan of an RDS server's upgrade, after the checks that need no server. */
export function rdsUpgradePlan(ctx: UpgradeContext, spec: Spec, server: RdsServerSpec, to?: string): UpgradePlan {
  const journal = readJournal(ctx, server.name);
  const from = journal?.from ?? server.upgrade?.from ?? server.version;
  const target = journal?.to ?? (server.upgrade ? server.version : to);
  if (server.upgrade && !journal)
    throw new UpgradeError(
      `servers.${server.name}.upgrade: an upgrade ${from} → ${server.version} is in the stack file but its journal (${path.relative(ctx.projectDir, journalFile(ctx, server.name))}) is not on this machine: resume it where it was started`,
    );
  if (to !== undefined && target !== undefined && to !== target)
    throw new UpgradeError(
      `--to ${to}: server ${server.name} is being upgraded ${from} → ${target}; finish it (upgrade apply) or undo it (upgrade rollback) first`,
    );
  if (target === undefined) throw new UpgradeError("--to: name the PostgreSQL major to upgrade to");
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(target))
    throw new UpgradeError(`--to ${target}: not a PostgreSQL major db-platform runs on RDS (${SUPPORTED_VERSIONS.join(", ")})`);
  if (Number(target) <= Number(from))
    throw new UpgradeError(
      `--to ${target}: server ${server.name} runs PostgreSQL ${from}; ${target === from ? "nothing to upgrade" : "RDS has no downgrade: restore the services' backups into a server of that major instead"}`,
    );
  if (server.backupRetentionDays < 1)
    throw new UpgradeError(
      `servers.${server.name}.backupRetentionDays: 0; RDS takes its pre-upgrade snapshot only with automated backups on (at least 1 day)`,
    );
  const moving = spec.services
    .filter((s) => s.move && (s.server === server.name || s.move.target.server === server.name))
    .map((s) => s.name);
  if (moving.length > 0)
    throw new UpgradeError(
      `--server ${server.name}: ${moving.join(", ")} ${moving.length > 1 ? "are" : "is"} being moved; finish or roll back the move first (db-platform move)`,
    );
  const services = selectServices(spec, { server: server.name }).map((s) => s.name);
  const cross = server.replicas.filter((r) => r.crossRegion).map((r) => r.name);
  const inRegion = server.replicas.filter((r) => !r.crossRegion).map((r) => r.name);
  const groups = `${ctx.stack}-${server.name}-postgres${target}`;
  return {
    stack: ctx.stack,
    server: server.name,
    from,
    to: target,
    phase: journal?.done,
    steps: [
      `back up each service on ${server.name} (${services.join(", ") || "none"}): a verified logical backup with row counts and schema hash`,
      ...(cross.length
        ? [
            `unprotect-replicas (up): deletion protection off for the cross-region replica(s) ${cross.join(", ")}; the parameter groups of postgres${target} are created beside the postgres${from} ones`,
            `detach-replicas (up): ${cross.join(", ")} deleted (RDS upgrades only in-region replicas; they are created again after)`,
          ]
        : []),
      `upgrade (up): ${server.name}'s one update to PostgreSQL ${target} with parameter group ${groups}, allowMajorVersionUpgrade and applyImmediately on for it alone; RDS snapshots the instance first, runs pg_upgrade's checks (they refuse extensions or data types ${target} cannot take) and upgrades ${inRegion.length ? inRegion.join(", ") : "no in-region replica"} with it`,
      `finish (up): the upgrade block removed from the stack file: the flags off, ${inRegion.length ? `${inRegion.join(", ")} on the postgres${target} groups, ` : ""}${cross.length ? `${cross.join(", ")} created again from the upgraded primary, ` : ""}the postgres${from} groups deleted`,
      `refresh: ALTER EXTENSION … UPDATE and ANALYZE in each service's database as the master user (--server-url ${server.name}=…)`,
      `verify: a backup of each service on ${target} with the same row counts and schema as before, the live audit with no findings, a preview with no changes`,
    ],
    downtime: `RDS's upgrade of ${server.name}: the instance refuses connections from its shutdown for pg_upgrade until the new major starts (minutes; mostly the catalog's size, not the data's), Multi-AZ included; ${inRegion.length ? `${inRegion.join(", ")} with it; ` : ""}${cross.length ? `reads in ${cross.join(", ")}'s region stop from detach-replicas until the new replica is available (a snapshot copied across regions)` : "no cross-region replica"}`,
    undo: `until the upgrade phase has changed the instance, upgrade rollback returns the stack file to ${from} and applies it (replicas protected or created again, the new groups deleted); once ${server.name} runs ${target} there is no way back in place: restore RDS's pre-upgrade snapshot or the services' backups (the first step's) into a server of ${from}`,
  };
}

function setUpgrade(ctx: UpgradeContext, server: string, version: string, upgrade?: { from: string; phase: RdsUpgradePhase }): void {
  editConfigFile(ctx.file, (doc) => {
    doc.setIn(["config", `${NAMESPACE}:servers`, server, "version"], version);
    if (upgrade) doc.setIn(["config", `${NAMESPACE}:servers`, server, "upgrade"], doc.createNode(upgrade));
    else doc.deleteIn(["config", `${NAMESPACE}:servers`, server, "upgrade"]);
  });
}

const applyContext = (ctx: UpgradeContext): ApplyContext => ({ ...ctx, spec: loadSpec(ctx.file) });
const rdsServer = (spec: Spec, name: string) => spec.servers.find((s) => s.name === name) as RdsServerSpec;

async function backUp(ctx: UpgradeContext, server: string, reach: RdsReach, deps: RdsDeps): Promise<RunOutcome[]> {
  const outcomes = await deps.backup({ spec: loadSpec(ctx.file), stack: ctx.stack, projectDir: ctx.projectDir, urls: reach.urls }, server);
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) throw new UpgradeError(`backup failed: ${failed.map((o) => `${o.service}: ${o.error}`).join("; ")}`);
  return outcomes;
}

/** Start or resume an RDS server's upgrade up to a verified new major. */
export async function rdsUpgradeApply(
  ctx: UpgradeContext,
  serverName: string,
  opts: { to?: string } & RdsReach,
  deps: RdsDeps = RDS_DEPS,
): Promise<UpgradeResult> {
  const spec = loadSpec(ctx.file);
  const plan = rdsUpgradePlan(ctx, spec, rdsServer(spec, serverName), opts.to);
  const adminUrl = opts.serverUrls?.[serverName];
  if (!adminUrl)
    throw new UpgradeError(
      `--server-url ${serverName}=postgresql://<master user>@<host>:5432/postgres: the upgrade's refresh and audit need it`,
    );
  const log: string[] = [];
  let j = readJournal(ctx, serverName);
  if (!j) {
    const outcomes = await backUp(ctx, serverName, opts, deps);
    const services = Object.fromEntries(
      outcomes.map((o) => [
        o.service,
        { backup: o.manifest!.id, tables: [...o.manifest!.tables], schemaHash: o.manifest!.schemaHashAcrossMajors! },
      ]),
    );
    log.push(`backed up ${outcomes.length} service(s): ${outcomes.map((o) => `${o.service} ${o.manifest!.id}`).join(", ") || "none"}`);
    j = writeJournal(ctx, { server: serverName, from: plan.from, to: plan.to, done: "backed-up", services });
  }
  for (const phase of phasesOf(rdsServer(spec, serverName))) {
    if (reached(j, phase)) continue;
    setUpgrade(ctx, serverName, j.to, { from: j.from, phase });
    const started = performance.now();
    await deps.up(applyContext(ctx));
    log.push(`${phase}: applied in ${secs(started)}`);
    j = writeJournal(ctx, { ...j, done: phase });
  }
  if (!reached(j, "finished")) {
    setUpgrade(ctx, serverName, j.to);
    await deps.up(applyContext(ctx));
    log.push(`finished: servers.${serverName}.version ${j.to}, no upgrade block; the postgres${j.from} parameter groups deleted`);
    j = writeJournal(ctx, { ...j, done: "finished" });
  }
  if (!reached(j, "refreshed")) {
    const databases = [...new Set(selectServices(loadSpec(ctx.file), { server: serverName }).map((s) => s.database))];
    const updated = await deps.refresh(adminUrl, databases);
    log.push(`extensions updated: ${updated.join(", ") || "none needed"}; ANALYZE in ${databases.join(", ") || "no database"}`);
    j = writeJournal(ctx, { ...j, done: "refreshed" });
  }
  if (!reached(j, "verified")) await verify(ctx, j, opts, deps, log);
  fs.rmSync(journalFile(ctx, serverName));
  return { plan, state: "done", log };
}

async function verify(ctx: UpgradeContext, j: RdsJournal, reach: RdsReach, deps: RdsDeps, log: string[]): Promise<void> {
  await deps.preview(applyContext(ctx));
  const problems: string[] = [];
  const after = await backUp(ctx, j.server, reach, deps);
  for (const [service, before] of Object.entries(j.services)) {
    const now = after.find((o) => o.service === service)?.manifest;
    if (!now) {
      problems.push(`${service}: no backup after the upgrade`);
      continue;
    }
    problems.push(...countDifferences(before.tables, now.tables).map((d) => `${service}: ${d}`));
    if (now.schemaHashAcrossMajors !== before.schemaHash)
      problems.push(`${service}: schema hash ${now.schemaHashAcrossMajors} differs from ${before.schemaHash} (backup ${before.backup})`);
  }
  problems.push(...(await deps.audit(ctx, j.server, reach.serverUrls ?? {})).map((f) => `audit: ${f}`));
  if (problems.length > 0)
    throw new UpgradeError(
      `verification failed on PostgreSQL ${j.to}; the backups from before are ${Object.values(j.services)
        .map((s) => s.backup)
        .join(", ")}:\n  ${problems.join("\n  ")}`,
    );
  log.push(
    `verified: a preview with no changes; ${Object.keys(j.services).length} service(s) backed up on ${j.to} with the rows and schema of before; audit: no findings`,
  );
  writeJournal(ctx, { ...j, done: "verified" });
}

/** Back to the old major's stack file, while the instance still runs it. */
export async function rdsUpgradeRollback(ctx: UpgradeContext, serverName: string, deps: RdsDeps = RDS_DEPS): Promise<UpgradeResult> {
  const j = readJournal(ctx, serverName);
  if (!j) throw new UpgradeError(`server ${serverName}: no upgrade in progress to roll back`);
  const spec = loadSpec(ctx.file);
  const plan = rdsUpgradePlan(ctx, spec, rdsServer(spec, serverName));
  const running = await deps.stateMajor(applyContext(ctx), serverName);
  if (reached(j, "upgrade") || (running !== undefined && running !== j.from))
    throw new UpgradeError(
      `server ${serverName} runs PostgreSQL ${running ?? j.to} on RDS: there is no way back in place; finish with upgrade apply, or restore RDS's pre-upgrade snapshot or the backups (${Object.values(
        j.services,
      )
        .map((s) => s.backup)
        .join(", ")}) into a server of ${j.from}`,
    );
  setUpgrade(ctx, serverName, j.from);
  await deps.up(applyContext(ctx));
  fs.rmSync(journalFile(ctx, serverName));
  return {
    plan,
    state: "rolled back",
    log: [
      `rolled back: servers.${serverName}.version ${j.from}, cross-region replicas protected or created again, the postgres${j.to} groups deleted`,
    ],
  };
}

const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** ALTER EXTENSION … UPDATE where the new major ships a newer version, then ANALYZE, in each database. */
export async function refreshDatabases(url: string, databases: readonly string[]): Promise<string[]> {
  const updated: string[] = [];
  for (const database of databases) {
    const u = new URL(url);
    u.pathname = `/${encodeURIComponent(database)}`;
    const c = new Client({ connectionString: u.toString(), connectionTimeoutMillis: 15_000 });
    await c.connect();
    try {
      updated.push(...(await updateExtensions(c, database)));
      await c.query("ANALYZE");
    } finally {
      await c.end();
    }
  }
  return updated;
}

const RDS_DEPS: RdsDeps = {
  up: upStack,
  preview: (ctx) => previewStack(ctx, true),
  backup: (ctx, server) => backupRun(ctx, { server }),
  async audit(ctx, server, serverUrls) {
    const report = await runAudit({
      file: ctx.file,
      stack: ctx.stack,
      project: ctx.project,
      projectDir: ctx.projectDir,
      serverUrls,
      backups: false,
    });
    return report.findings.filter((f) => f.server === server).map((f) => `${f.rule}: ${f.message}`);
  },
  refresh: refreshDatabases,
  async stateMajor(ctx, server) {
    return stateMajors(await stateResources(ctx)).get(server);
  },
};
