/**
 * `db-platform move`: a service's data from its place to another (seed 003: a schema in a shared
 * database → a database of its own → a server of its own), with nothing lost
 * (docs/data-moves.md).
 *
 * The stack file is the move's journal: `services.<name>.move` says where the service goes and
 * which phase it is in, and the program registers both places while it is there
 * (components/service/serviceDatabase.ts). Each step first makes the engine agree with the phase
 * the file names, so a move stopped anywhere — a killed server, a failed restore, an engine
 * error, a killed process — is resumed by `move apply` or undone by `move rollback`:
 *
 *   (none)  check that no session of the service is open, export the service (its read-only
 *           login, one snapshot, row counts and schema hash in the manifest) → write phase copy
 *   copy    `up`: the target exists, empty; the current place serves. Restore the export into the
 *           target as the owner role and compare it with the manifest; check that the current
 *           place still matches it (nothing written during the copy) → write phase serve
 *   serve   `up`: the service's URLs and secrets point at the target. Stops here unless the
 *           retirement is confirmed (`--confirm <stack>/<service>`); then the current place's
 *           databases/schemas lose their protection → write phase retire
 *   retire  `up`: the old place (and, on another server, the service's roles there) is dropped
 *           → the file declares the service at the target, without `move`
 *   (done)  `up`: the target's resources take the service's own names (aliases): nothing changes
 *           in PostgreSQL.
 *
 * Until `serve` is applied the old place is the only one serving; from then on the target is,
 * fully restored and verified. The downtime window is from the export to the switch: the
 * service must not write then (checked before the export and again before the switch).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { moveTargetPrefix } from "../../components/dataResources";
import { locationOf, serviceDatabaseName, type ServiceSpec, type Spec } from "../../components/spec";
import { repointRotatedLogins } from "../rotate/onAws";
import { BackupCommandError, backupRun, clientTools } from "../backup/command";
import { exportService, openExport } from "../backup/exchange";
import { restoreBackup } from "../backup/restore";
import { BackupError, message } from "../backup/runner";
import { localCommand, localServers } from "../local/local";
import { type ApplyContext, liftProtection, upStack } from "../stack/stackApply";
import { rawMove, writeArrived, writeMove } from "./journal";
import { adminOf, backupContext, clearOwnerLeftovers, dataNames, differencesFrom, holdsData, openSessions } from "./places";
import {
  loadSpec,
  type MoveContext,
  MoveError,
  type MovePlan,
  movePlan,
  movesDir,
  type MoveTarget,
  requestedMove,
  serviceOf,
} from "./plan";

export { MoveError, movePlan, type MoveContext, type MovePlan, type MoveTarget } from "./plan";

function applyContext(ctx: MoveContext, spec: Spec): ApplyContext {
  return { spec, stack: ctx.stack, project: ctx.project, projectDir: ctx.projectDir, progress: ctx.progress, tty: ctx.tty };
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

export interface MoveResult {
  readonly plan: MovePlan;
  /** Where the move stands now: `serve` (waiting for the confirmation to retire the old place) or `done`. */
  readonly state: "serve" | "done";
  /** What was done, one line each, with timings. */
  readonly log: readonly string[];
}

/** `up` for the phase the stack file names; an engine failure leaves the move where it is. */
async function apply(ctx: MoveContext, log: string[], what: string): Promise<Spec> {
  const spec = loadSpec(ctx.file);
  const started = performance.now();
  try {
    const r = await upStack(applyContext(ctx, spec));
    const changes = Object.entries(r.changes)
      .filter(([k, n]) => k !== "same" && n > 0)
      .map(([k, n]) => `${k} ${n}`);
    log.push(`${what}: up (${changes.join(", ") || "no resource changed"}) in ${seconds(started)}`);
  } catch (e) {
    // The engine's own error lines, not its whole output.
    const lines = message(e).split("\n");
    const errors = [...new Set(lines.filter((l) => /\berror:/.test(l)).map((l) => l.trim()))];
    throw new MoveError(`${what}: the engine failed:\n  ${(errors.length > 0 ? errors : lines.slice(-12)).join("\n  ")}`);
  }
  return spec;
}

/** Export the service from its current place, unless the recorded export still matches it. */
async function ensureExport(ctx: MoveContext, spec: Spec, service: ServiceSpec, log: string[], ignoreSessions: boolean): Promise<string> {
  const recorded = service.move?.export;
  if (recorded && fs.existsSync(path.resolve(ctx.projectDir, recorded))) {
    const { manifest } = await openMoveExport(ctx, spec, service.name);
    if ((await differencesFrom(ctx, spec, service, manifest)).length === 0) return recorded;
    log.push(`export ${manifest.id} no longer matches ${locationOf(service)}: exporting again`);
  }
  const open = await openSessions(ctx, spec, service);
  if (open.length > 0 && !ignoreSessions) {
    throw new BackupCommandError(
      `service ${service.name} has open sessions on server ${service.server}: ${open.join(", ")}. Stop the service first: what it writes after the export would not reach the new place (or pass --ignore-sessions when they only read)`,
    );
  }
  await stackBackup(ctx, spec, service, log);
  const started = performance.now();
  const r = await exportService(backupContext(ctx, spec), {
    service: service.name,
    to: { kind: "folder", dir: movesDir(ctx) },
    reason: `move to ${locationOf(service.move?.target ?? service)}`,
  });
  const rows = r.manifest.tables.reduce((n, t) => n + t.rows, 0);
  log.push(
    `export ${r.manifest.id}: ${r.manifest.tables.length} table(s), ${rows} row(s) from ${locationOf(service)} in ${seconds(started)}`,
  );
  return path.relative(ctx.projectDir, r.location);
}

/**
 * A stack that declares backups gets one of the service before its data moves, in its own
 * storage, beside the move's export: `backup restore` finds it whatever becomes of the export.
 */
async function stackBackup(ctx: MoveContext, spec: Spec, service: ServiceSpec, log: string[]): Promise<void> {
  if (!spec.backups) return;
  const [r] = await backupRun(backupContext(ctx, spec), { service: service.name });
  if (!r.ok || !r.manifest) {
    throw new BackupError(`the backup of ${service.name} before its move failed, nothing was moved: ${r.error}`);
  }
  const rows = r.manifest.tables.reduce((n, t) => n + t.rows, 0);
  log.push(`backup ${r.manifest.id} of ${service.name} in the stack's backups: ${rows} row(s) (db-platform backup restore finds it)`);
}

async function openMoveExport(ctx: MoveContext, spec: Spec, serviceName: string) {
  const service = serviceOf(spec, serviceName);
  const file = path.resolve(ctx.projectDir, service.move?.export ?? "");
  return openExport({ kind: "folder", dir: file }, undefined);
}

/** Restore the export into the target as its owner and compare; a target already restored from it is kept. */
async function restoreIntoTarget(ctx: MoveContext, spec: Spec, service: ServiceSpec, log: string[]): Promise<void> {
  const target = service.move?.target as ServiceSpec;
  const opened = await openMoveExport(ctx, spec, service.name);
  try {
    const filled = await holdsData(ctx, spec, target);
    if (filled && (await differencesFrom(ctx, spec, target, opened.manifest)).length === 0) {
      log.push(`restore: ${locationOf(target)} already holds export ${opened.manifest.id}, verified`);
      return;
    }
    const started = performance.now();
    const r = await restoreBackup(
      opened.store,
      opened.manifest,
      {
        connection: adminOf(ctx, spec, target),
        database: target.database,
        create: false,
        // Not serving yet: whatever an earlier, stale attempt left there is only a copy.
        overwrite: filled,
        ownerRole: target.owner.name,
        requireOwnerRole: true,
        scope: target.schemas,
      },
      clientTools(ctx.projectDir),
    ).catch((e: unknown) => {
      throw new MoveError(`restore into ${locationOf(target)}: ${message(e)}`);
    });
    log.push(
      `restore: ${r.tables} table(s), ${r.rows} row(s) as ${r.restoredAs}; row counts and schema hash match the manifest (${seconds(started)})`,
    );
  } finally {
    opened.close();
  }
  const changed = await differencesFrom(ctx, spec, service, opened.manifest);
  if (changed.length > 0) {
    throw new MoveError(
      `${locationOf(service)} changed during the copy (${changed.join("; ")}): the service wrote. Stop it and run move apply again (it exports and restores again)`,
    );
  }
}

export interface ApplyOptions {
  readonly to?: MoveTarget;
  /** `<stack>/<service>`: retire the old place once the new one serves. */
  readonly confirm?: string;
  readonly ignoreSessions?: boolean;
}

/** Run the move from where it stands to the switch, and on to the end when the retirement is confirmed. */
export async function moveApply(ctx: MoveContext, serviceName: string, opts: ApplyOptions = {}): Promise<MoveResult> {
  const plan = movePlan(ctx, serviceName, opts.to);
  if (opts.confirm !== undefined && opts.confirm !== plan.confirmation) {
    throw new BackupCommandError(
      `--confirm ${opts.confirm} does not name the service: retiring its old place takes --confirm ${plan.confirmation}`,
    );
  }
  const log: string[] = [];
  let spec = loadSpec(ctx.file);
  let service = serviceOf(spec, serviceName);
  // The session check, the export and the stack's backup need the servers (and local S3) running.
  const startLocal = async () => {
    if (localServers(spec).length > 0) await localCommand("start", spec, ctx.stack, ctx.projectDir, ctx.progress);
  };

  if (!service.move && !service.arrived) {
    writeMove(ctx.file, serviceName, requestedMove(ctx, service, opts.to as MoveTarget).move);
    spec = loadSpec(ctx.file);
    service = serviceOf(spec, serviceName);
    try {
      await startLocal();
      const exported = await ensureExport(ctx, spec, service, log, opts.ignoreSessions === true);
      writeMove(ctx.file, serviceName, rawMove(service, "copy", exported));
    } catch (e) {
      // Nothing was created yet: the stack file goes back to what it said.
      writeMove(ctx.file, serviceName, undefined);
      throw e;
    }
    spec = loadSpec(ctx.file);
    service = serviceOf(spec, serviceName);
  } else await startLocal();

  if (service.move?.phase === "copy") {
    spec = await apply(ctx, log, `create ${locationOf(service.move.target)}`);
    service = serviceOf(spec, serviceName);
    const exported = await ensureExport(ctx, spec, service, log, opts.ignoreSessions === true);
    if (exported !== service.move?.export) {
      writeMove(ctx.file, serviceName, rawMove(service, "copy", exported));
      spec = loadSpec(ctx.file);
      service = serviceOf(spec, serviceName);
    }
    await restoreIntoTarget(ctx, spec, service, log);
    writeMove(ctx.file, serviceName, rawMove(service, "serve", service.move?.export));
    service = serviceOf(loadSpec(ctx.file), serviceName);
  }

  if (service.move?.phase === "serve") {
    spec = await apply(ctx, log, `switch to ${locationOf(service.move.target)}`);
    service = serviceOf(spec, serviceName);
    // On RDS the login secrets' values are the rotation function's: rotated now, they name the target.
    if (service.move) log.push(...(await repointRotatedLogins(spec, service.move.target)));
    if (opts.confirm === undefined) return { plan: movePlan(ctx, serviceName), state: "serve", log };
    const lifted = await liftProtection(applyContext(ctx, spec), dataNames(spec, service, serviceName));
    log.push(`retire: protection lifted from ${lifted.join(", ") || "nothing (already lifted)"}`);
    writeMove(ctx.file, serviceName, rawMove(service, "retire", service.move?.export));
    service = serviceOf(loadSpec(ctx.file), serviceName);
  }

  if (service.move?.phase === "retire") {
    if (opts.confirm === undefined) {
      throw new BackupCommandError(`service ${serviceName}'s old place is being retired: finish with --confirm ${plan.confirmation}`);
    }
    const target = service.move.target;
    spec = await apply(ctx, log, `retire ${locationOf(service)}`);
    if (service.isolation === "schema" && target.server === service.server) await clearOwnerLeftovers(ctx, spec, service, log);
    writeArrived(ctx.file, serviceName, target, serviceDatabaseName(serviceName));
  }
  await apply(ctx, log, `finish: ${serviceName} declared at ${locationOf(serviceOf(loadSpec(ctx.file), serviceName))}`);
  writeMove(ctx.file, serviceName, undefined);
  return { plan, state: "done", log };
}

export interface RollbackOptions {
  /** After the switch: the target's writes since then are dropped with it. */
  readonly discardWrites?: boolean;
}

/** Undo a move that has not retired the old place: the old place serves again, the target goes. */
export async function moveRollback(ctx: MoveContext, serviceName: string, opts: RollbackOptions = {}): Promise<MoveResult> {
  let spec = loadSpec(ctx.file);
  const service = serviceOf(spec, serviceName);
  const move = service.move;
  if (!move) {
    throw new BackupCommandError(
      service.arrived
        ? `service ${serviceName}'s move has ended (phase done): finish it with move apply`
        : `service ${serviceName} is not moving: nothing to roll back`,
    );
  }
  const plan = movePlan(ctx, serviceName);
  const log: string[] = [];
  if (move.phase === "retire") {
    throw new BackupCommandError(
      `service ${serviceName} has left ${locationOf(service)} (phase retire): it cannot go back there; finish the move with move apply --confirm ${plan.confirmation}`,
    );
  }
  if (move.phase === "serve") {
    const { manifest, close } = await openMoveExport(ctx, spec, serviceName);
    close();
    const written = await differencesFrom(ctx, spec, move.target, manifest);
    if (written.length > 0 && !opts.discardWrites) {
      throw new BackupCommandError(
        `${locationOf(move.target)} has served since the switch and changed (${written.join("; ")}): a rollback drops those writes; pass --discard-writes to roll back anyway`,
      );
    }
    writeMove(ctx.file, serviceName, rawMove(service, "copy", move.export));
    spec = await apply(ctx, log, `switch back to ${locationOf(service)}`);
    log.push(...(await repointRotatedLogins(spec, serviceOf(spec, serviceName))));
  }
  const lifted = await liftProtection(applyContext(ctx, spec), dataNames(spec, move.target, moveTargetPrefix(serviceName)));
  log.push(`rollback: protection lifted from ${lifted.join(", ") || "nothing"}`);
  writeMove(ctx.file, serviceName, undefined);
  await apply(ctx, log, `drop ${locationOf(move.target)}`);
  return { plan, state: "done", log };
}
