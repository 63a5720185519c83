/**
 * `db-platform upgrade plan|apply|rollback`: a local server to a newer PostgreSQL major with the
 * real `pg_upgrade` (operations/upgrade/cluster.ts), guarded and verified per service, resumable
 * after a failure or a kill at any step (a journal beside the server's data says where it
 * stands), the old cluster kept until the team confirms. docs/upgrades.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LOCAL_POSTGRES_VERSIONS, loginRoleNames, type LocalServerSpec, type ServerSpec, type Spec } from "../../components/spec";
import { NAMESPACE } from "../../components/spec/naming";
import { runAudit } from "../audit/run";
import { backupRun, selectServices } from "../backup/command";
import { countDifferences, schemaHash, tableCounts } from "../backup/snapshot";
import type { TableCount } from "../backup/storage";
import { adminPasswords, localCommand, localInstances, localRoot } from "../local/local";
import { LocalPostgres } from "../local/postgres";
import { loadSpec, type MoveContext } from "../move/plan";
import { type ApplyContext, previewStack, upStack } from "../stack/stackApply";
import { editConfigFile } from "../stack/stackConfig";
import {
  afterUpgrade,
  keptName,
  missingExtensions,
  restoreFolders,
  runPgUpgrade,
  sibling,
  switchFolders,
  UpgradeError,
  type UpgradeMode,
} from "./cluster";
import { type RdsReach, rdsUpgradeApply, rdsUpgradePlan, rdsUpgradeRollback } from "./rds";

export { UpgradeError, type UpgradeMode } from "./cluster";

/** What an upgrade needs of the command line: the stack file and where progress goes (as a move's). */
export type UpgradeContext = Pick<MoveContext, "file" | "stack" | "project" | "projectDir" | "progress" | "tty">;

/** The steps in order; the journal records the last one done. */
const PHASES = ["planned", "backed-up", "upgraded", "switched", "serving", "verified"] as const;
type Phase = (typeof PHASES)[number];
const reached = (j: Journal, p: Phase) => PHASES.indexOf(j.phase) >= PHASES.indexOf(p);

interface ServiceManifest {
  readonly database: string;
  readonly schemas: string[];
  readonly tables: TableCount[];
  readonly schemaHash: string;
  readonly backup: string;
}

interface Journal {
  readonly server: string;
  readonly from: string;
  readonly to: string;
  readonly mode?: UpgradeMode;
  readonly phase: Phase;
  /** When the primary stopped for pg_upgrade (ms since the epoch): the start of the downtime. */
  readonly stoppedAt?: number;
  readonly services: Record<string, ServiceManifest>;
}

export interface UpgradePlan {
  readonly stack: string;
  readonly server: string;
  readonly from: string;
  readonly to: string;
  /** Where an upgrade in progress stands; undefined when none is. */
  readonly phase?: string;
  readonly steps: string[];
  readonly downtime: string;
  readonly undo: string;
}

export interface UpgradeResult {
  readonly plan: UpgradePlan;
  /** `verified`: serving on the new major, the old cluster kept until `--confirm`; `done`; `rolled back`. */
  readonly state: "verified" | "done" | "rolled back";
  readonly log: string[];
}

const journalFile = (ctx: UpgradeContext, server: string) => path.join(localRoot(ctx.projectDir, ctx.stack), server, "upgrade.json");

function readJournal(ctx: UpgradeContext, server: string): Journal | undefined {
  const file = journalFile(ctx, server);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as Journal) : undefined;
}

function writeJournal(ctx: UpgradeContext, j: Journal): Journal {
  const file = journalFile(ctx, j.server);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(j, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  return j;
}

function serverNamed(spec: Spec, name: string, stack: string): ServerSpec {
  const server = spec.servers.find((s) => s.name === name);
  if (!server)
    throw new UpgradeError(`--server ${name}: stack ${stack} has no such server (${spec.servers.map((s) => s.name).join(", ")})`);
  if (server.hosting !== "local" && server.hosting !== "rds") {
    throw new UpgradeError(
      `--server ${name}: hosting ${server.hosting}; db-platform upgrade runs on hosting local and rds servers (docs/upgrades.md)`,
    );
  }
  return server;
}

const localServer = (spec: Spec, name: string, stack: string) => serverNamed(spec, name, stack) as LocalServerSpec;
const isRds = (ctx: UpgradeContext, name: string) => serverNamed(loadSpec(ctx.file), name, ctx.stack).hosting === "rds";

/** What `apply` would do, after the checks that need no server: the target, moves in flight. */
export function upgradePlan(ctx: UpgradeContext, serverName: string, to?: string): UpgradePlan {
  const spec = loadSpec(ctx.file);
  const found = serverNamed(spec, serverName, ctx.stack);
  if (found.hosting === "rds") return rdsUpgradePlan(ctx, spec, found, to);
  const server = found as LocalServerSpec;
  const journal = readJournal(ctx, serverName);
  if (journal && to !== undefined && to !== journal.to) {
    throw new UpgradeError(
      `--to ${to}: server ${serverName} is being upgraded ${journal.from} → ${journal.to}; finish it (upgrade apply) or undo it (upgrade rollback) first`,
    );
  }
  const from = journal?.from ?? server.version;
  const target = journal?.to ?? to;
  if (target === undefined) throw new UpgradeError("--to: name the PostgreSQL major to upgrade to");
  if (!(LOCAL_POSTGRES_VERSIONS as readonly string[]).includes(target)) {
    throw new UpgradeError(`--to ${target}: not a major local servers run (${LOCAL_POSTGRES_VERSIONS.join(", ")})`);
  }
  if (Number(target) <= Number(from)) {
    throw new UpgradeError(
      `--to ${target}: server ${serverName} runs PostgreSQL ${from}; ${target === from ? "nothing to upgrade" : "PostgreSQL has no downgrade: restore the services' backups into a server of that major instead"}`,
    );
  }
  const moving = spec.services.filter((s) => s.move && (s.server === serverName || s.move.target.server === serverName)).map((s) => s.name);
  if (moving.length > 0)
    throw new UpgradeError(
      `--server ${serverName}: ${moving.join(", ")} ${moving.length > 1 ? "are" : "is"} being moved; finish or roll back the move first (db-platform move)`,
    );
  const services = selectServices(spec, { server: serverName }).map((s) => s.name);
  const standbys = server.replicas.map((r) => r.name);
  return {
    stack: ctx.stack,
    server: serverName,
    from,
    to: target,
    phase: journal?.phase,
    steps: [
      `check: every extension in use is shipped by PostgreSQL ${target}; no session of a service login is open; pg_upgrade --check`,
      `back up and record each service on ${serverName} (${services.join(", ") || "none"}): a verified logical backup, row counts and schema hash`,
      `stop ${[...standbys, serverName].join(", ")}; pg_upgrade ${from} → ${target} into a new cluster beside the old one (clone where the filesystem can, else copy; --mode link on request)`,
      `switch: the new cluster becomes ${serverName}'s data, the old one is kept as ${keptName(from)}`,
      `start PostgreSQL ${target}; ALTER EXTENSION … UPDATE in every database; statistics rebuilt (vacuumdb --analyze-in-stages); ${standbys.length ? `re-clone ${standbys.join(", ")} from the upgraded primary; ` : ""}servers.${serverName}.version: ${target} in the stack file`,
      `verify: up, preview with no changes, each service's row counts and schema hash against its record, the live audit with no findings`,
      `confirm (upgrade apply --confirm): delete the kept ${from} cluster`,
    ],
    downtime: `from the stop of ${serverName} until PostgreSQL ${target} accepts connections (pg_upgrade's schema dump and restore, plus the data copy in copy mode); ${standbys.length ? `reads on ${standbys.join(", ")} until each is re-cloned` : "no standby"}`,
    undo: `until --confirm, upgrade rollback returns to the kept ${from} cluster (writes made on ${target} are lost, so it asks for --discard-writes once ${target} has served); in link mode the old cluster cannot start again once ${target} has, and only the backups bring it back`,
  };
}

function instances(ctx: UpgradeContext, spec: Spec, serverName: string, passwords: Record<string, string>) {
  return localInstances(localServer(spec, serverName, ctx.stack), ctx.stack, ctx.projectDir, passwords[serverName] ?? "");
}

function setVersion(ctx: UpgradeContext, server: string, version: string): void {
  editConfigFile(ctx.file, (doc) => doc.setIn(["config", `${NAMESPACE}:servers`, server, "version"], version));
}

const applyContext = (ctx: UpgradeContext): ApplyContext => ({ ...ctx, spec: loadSpec(ctx.file) });

/** Each service's data on the server, as the bootstrap superuser: counts and schema hash. */
async function record(
  server: LocalPostgres,
  database: string,
  schemas: readonly string[],
): Promise<{ tables: TableCount[]; schemaHash: string }> {
  const c = await server.superuserClient(database);
  try {
    return { tables: await tableCounts(c, schemas), schemaHash: await schemaHash(c, schemas, { acrossMajors: true }) };
  } finally {
    await c.end();
  }
}

async function openServiceSessions(server: LocalPostgres, logins: readonly string[]): Promise<string[]> {
  const c = await server.superuserClient();
  try {
    const { rows } = await c.query<{ usename: string; n: string }>(
      "SELECT usename, count(*) AS n FROM pg_stat_activity WHERE usename = ANY($1::text[]) GROUP BY usename ORDER BY usename",
      [logins],
    );
    return rows.map((r) => `${r.usename} (${r.n})`);
  } finally {
    await c.end();
  }
}

/** Start the stack's servers, check what needs a running server, back up and record each service. */
async function prepare(ctx: UpgradeContext, plan: UpgradePlan, ignoreSessions: boolean, log: string[]): Promise<Journal> {
  const spec = loadSpec(ctx.file);
  await localCommand("start", spec, ctx.stack, ctx.projectDir, ctx.progress);
  const { primary } = instances(ctx, spec, plan.server, await adminPasswords(ctx.projectDir, ctx.stack));
  const missing = await missingExtensions(primary, plan.to);
  if (missing.length > 0)
    throw new UpgradeError(`PostgreSQL ${plan.to} does not ship extensions in use, nothing changed: ${missing.join("; ")}`);
  const services = selectServices(spec, { server: plan.server });
  const open = await openServiceSessions(
    primary,
    services.flatMap((s) => s.logins.flatMap(loginRoleNames)),
  );
  if (open.length > 0 && !ignoreSessions) {
    throw new UpgradeError(
      `open sessions of service logins on ${plan.server}, nothing changed: ${open.join(", ")}; stop those clients (or pass --ignore-sessions: their writes after the backup fail the verification)`,
    );
  }
  const started = performance.now();
  const outcomes = await backupRun({ spec, stack: ctx.stack, projectDir: ctx.projectDir, urls: {} }, { server: plan.server });
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0)
    throw new UpgradeError(`backup failed, nothing changed: ${failed.map((o) => `${o.service}: ${o.error}`).join("; ")}`);
  const recorded: Record<string, ServiceManifest> = {};
  for (const o of outcomes) {
    const m = o.manifest!;
    const service = services.find((s) => s.name === o.service)!;
    recorded[o.service] = {
      database: service.database,
      schemas: [...m.schemas],
      ...(await record(primary, service.database, m.schemas)),
      backup: m.id,
    };
  }
  log.push(
    `backed up and recorded ${outcomes.length} service(s) (${outcomes.map((o) => `${o.service} ${o.manifest?.id}`).join(", ")}) in ${secs(started)}`,
  );
  return writeJournal(ctx, { server: plan.server, from: plan.from, to: plan.to, phase: "backed-up", services: recorded });
}

const secs = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** pg_upgrade with the servers stopped, then the switch of folders. */
async function upgradeOnDisk(ctx: UpgradeContext, j: Journal, mode: UpgradeMode | undefined, log: string[]): Promise<Journal> {
  const spec = loadSpec(ctx.file);
  const passwords = await adminPasswords(ctx.projectDir, ctx.stack);
  const { primary, standbys } = instances(ctx, spec, j.server, passwords);
  const old = sibling(primary, j.from);
  if (!reached(j, "upgraded")) {
    for (const s of standbys) await sibling(s, s.dataVersion() ?? j.from).stop();
    const started = performance.now();
    const used = await runPgUpgrade(old, j.to, mode, ctx.progress, () => {
      j = writeJournal(ctx, { ...j, stoppedAt: j.stoppedAt ?? Date.now() });
    });
    log.push(`pg_upgrade ${j.from} → ${j.to} (${used} mode) in ${secs(started)}`);
    j = writeJournal(ctx, { ...j, mode: used, phase: "upgraded" });
  }
  if (!reached(j, "switched")) {
    switchFolders(primary, j.from, j.to);
    log.push(`switched: ${j.server}'s data is PostgreSQL ${j.to}, ${keptName(j.from)} kept`);
    j = writeJournal(ctx, { ...j, phase: "switched" });
  }
  return j;
}

/** The new major serving: started, extensions and statistics, standbys re-cloned, the stack file updated. */
async function serve(ctx: UpgradeContext, j: Journal, log: string[]): Promise<Journal> {
  const spec = loadSpec(ctx.file);
  const passwords = await adminPasswords(ctx.projectDir, ctx.stack);
  const { primary, standbys } = instances(ctx, spec, j.server, passwords);
  const next = sibling(primary, j.to);
  const started = performance.now();
  await next.start();
  const down = j.stoppedAt === undefined ? "" : `; ${((Date.now() - j.stoppedAt) / 1000).toFixed(1)} s since ${j.server} stopped`;
  log.push(`PostgreSQL ${j.to} accepting connections on ${j.server} ${secs(started)} after its start${down}`);
  const updated = await afterUpgrade(next, ctx.progress);
  log.push(`extensions updated: ${updated.join(", ") || "none needed"}`);
  for (const s of standbys) await reclone(s, next, j.to, log);
  setVersion(ctx, j.server, j.to);
  return writeJournal(ctx, { ...j, phase: "serving" });
}

/** A standby of `primary` at `version`, cloned again unless it already is one. */
async function reclone(standby: LocalPostgres, primary: LocalPostgres, version: string, log: string[]): Promise<void> {
  const s = new LocalPostgres({ ...standby.opts, version, standbyOf: primary });
  if (s.dataVersion() !== undefined && s.dataVersion() !== version) {
    await sibling(standby, s.dataVersion() as string).stop();
    fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
  const started = performance.now();
  await s.start();
  log.push(`standby ${s.opts.name} on PostgreSQL ${version} in ${secs(started)}`);
}

/** After the switch: the engine's view, the data, the access. */
async function verify(ctx: UpgradeContext, j: Journal, log: string[]): Promise<Journal> {
  const started = performance.now();
  await upStack(applyContext(ctx));
  await previewStack(applyContext(ctx), true);
  log.push(`up, then preview with no changes, in ${secs(started)}`);
  const spec = loadSpec(ctx.file);
  const { primary } = instances(ctx, spec, j.server, await adminPasswords(ctx.projectDir, ctx.stack));
  const problems: string[] = [];
  for (const [service, m] of Object.entries(j.services)) {
    const now = await record(primary, m.database, m.schemas);
    problems.push(...countDifferences(m.tables, now.tables).map((d) => `${service}: ${d}`));
    if (now.schemaHash !== m.schemaHash) problems.push(`${service}: schema hash ${now.schemaHash} differs from ${m.schemaHash}`);
  }
  const report = await runAudit({
    file: ctx.file,
    stack: ctx.stack,
    project: ctx.project,
    projectDir: ctx.projectDir,
    serverUrls: {},
    backups: false,
  });
  problems.push(...report.findings.filter((f) => f.server === j.server).map((f) => `audit: ${f.rule}: ${f.message}`));
  if (problems.length > 0)
    throw new UpgradeError(
      `verification failed on PostgreSQL ${j.to} (the kept ${j.from} cluster is untouched; upgrade rollback --discard-writes returns to it):\n  ${problems.join("\n  ")}`,
    );
  const rows = Object.values(j.services).reduce((n, m) => n + m.tables.reduce((k, t) => k + t.rows, 0), 0);
  log.push(`verified: ${Object.keys(j.services).length} service(s), ${rows} rows and their schema hashes as recorded; audit: no findings`);
  return writeJournal(ctx, { ...j, phase: "verified" });
}

export interface ApplyOptions extends RdsReach {
  readonly to?: string;
  readonly mode?: UpgradeMode;
  readonly confirm?: boolean;
  readonly ignoreSessions?: boolean;
}

/** Start or resume the upgrade of a local server; with `confirm`, delete the kept cluster once verified. */
export async function upgradeApply(ctx: UpgradeContext, serverName: string, opts: ApplyOptions = {}): Promise<UpgradeResult> {
  if (isRds(ctx, serverName)) {
    const local = (["mode", "confirm", "ignoreSessions"] as const).filter((k) => opts[k] !== undefined && opts[k] !== false);
    if (local.length > 0)
      throw new UpgradeError(
        `${local.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ")}: for local servers' pg_upgrade; RDS runs its own`,
      );
    return rdsUpgradeApply(ctx, serverName, opts);
  }
  const plan = upgradePlan(ctx, serverName, opts.to);
  const log: string[] = [];
  let j = readJournal(ctx, serverName) ?? (await prepare(ctx, plan, opts.ignoreSessions === true, log));
  if (!reached(j, "switched")) j = await upgradeOnDisk(ctx, j, opts.mode, log);
  if (!reached(j, "serving")) j = await serve(ctx, j, log);
  if (!reached(j, "verified")) j = await verify(ctx, j, log);
  if (!opts.confirm) return { plan: upgradePlan(ctx, serverName), state: "verified", log };
  const { primary } = instances(ctx, loadSpec(ctx.file), serverName, {});
  fs.rmSync(path.join(primary.dir, keptName(j.from)), { recursive: true, force: true });
  fs.rmSync(journalFile(ctx, serverName));
  log.push(`confirmed: the kept PostgreSQL ${j.from} cluster is deleted`);
  return { plan, state: "done", log };
}

/** Back to the kept old cluster, from any step before `--confirm`. */
export async function upgradeRollback(
  ctx: UpgradeContext,
  serverName: string,
  opts: { discardWrites?: boolean } = {},
): Promise<UpgradeResult> {
  if (isRds(ctx, serverName)) return rdsUpgradeRollback(ctx, serverName);
  const j = readJournal(ctx, serverName);
  if (!j) throw new UpgradeError(`server ${serverName}: no upgrade in progress to roll back`);
  const plan = upgradePlan(ctx, serverName);
  if (reached(j, "serving") && j.mode === "link") {
    throw new UpgradeError(
      `server ${serverName} was upgraded in link mode and PostgreSQL ${j.to} has started: the ${j.from} cluster cannot start again; restore the services' backups (${Object.values(
        j.services,
      )
        .map((m) => m.backup)
        .join(", ")}) instead`,
    );
  }
  if (reached(j, "serving") && !opts.discardWrites) {
    throw new UpgradeError(
      `server ${serverName} has served on PostgreSQL ${j.to}: writes made since are lost by a rollback; pass --discard-writes to go back to ${j.from}`,
    );
  }
  const log: string[] = [];
  const spec = loadSpec(ctx.file);
  const passwords = await adminPasswords(ctx.projectDir, ctx.stack);
  const { primary, standbys } = instances(ctx, spec, serverName, passwords);
  for (const s of standbys) if (s.dataVersion()) await sibling(s, s.dataVersion() as string).stop();
  if (primary.dataVersion()) await sibling(primary, primary.dataVersion() as string).stop();
  await sibling(primary, j.to, `data-${j.to}`)
    .stop()
    .catch(() => undefined);
  restoreFolders(primary, j.from, j.to);
  setVersion(ctx, serverName, j.from);
  const old = sibling(primary, j.from);
  await old.start();
  for (const s of standbys) await reclone(s, old, j.from, log);
  log.push(`rolled back: ${serverName} serves PostgreSQL ${j.from} from its kept cluster`);
  fs.rmSync(journalFile(ctx, serverName));
  if (reached(j, "serving")) {
    await upStack(applyContext(ctx));
    log.push("up: the stack's state follows the servers again");
  }
  return { plan, state: "rolled back", log };
}
