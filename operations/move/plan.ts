/**
 * What `db-platform move` will do (operations/move/move.ts): the request checked by the stack's
 * own validation, the target as a service spec, and the steps still to run from where the move
 * stands. Offline: it reads the stack file only.
 */
import * as path from "node:path";
import { formatProblem, locationOf, type ServiceSpec, type Spec, validateConfig } from "../../components/spec";
import type { RawMove } from "../../components/spec/schema";
import { BackupCommandError, selectServices } from "../backup/command";
import { BackupError } from "../backup/runner";
import { readConfigFile } from "../stack/stackConfig";

/** A move that failed part-way (exit 1): the state is one the next `move apply` resumes or `move rollback` undoes. */
export class MoveError extends BackupError {}

export interface MoveTarget {
  readonly isolation: "database" | "schema";
  readonly database?: string;
  readonly server?: string;
}

export interface MoveContext {
  /** The stack file: the move's journal. */
  readonly file: string;
  readonly stack: string;
  readonly project: string;
  readonly projectDir: string;
  readonly progress: (s: string) => void;
  readonly tty?: boolean;
  /** `--url <service>=…`: the service's read-only login (servers that are not local). */
  readonly urls?: Readonly<Record<string, string>>;
  /** `--admin-url <server>=…`: a login that may act as the service's roles (servers that are not local). */
  readonly adminUrls?: Readonly<Record<string, string>>;
  /** Where exports are kept. @default <project>/.db-platform/moves/<stack> */
  readonly dir?: string;
}

export interface MovePlan {
  readonly stack: string;
  readonly service: string;
  readonly from: string;
  readonly to: string;
  readonly phase: "start" | RawMove["phase"];
  /** The steps still to run, in order. */
  readonly steps: readonly string[];
  readonly downtime: string;
  /** What `--confirm` must say to retire the old place. */
  readonly confirmation: string;
}

export function loadSpec(file: string): Spec {
  const result = validateConfig(readConfigFile(file));
  if (!result.ok) throw new BackupCommandError(`${file}:\n  ${result.problems.map(formatProblem).join("\n  ")}`);
  return result.spec;
}

/** The service a move names (`--service`), as `backup` and `export` find it. */
export const serviceOf = (spec: Spec, name: string): ServiceSpec => selectServices(spec, { service: name })[0];

/** The `move` entry a request asks for and its target, checked by the stack's own validation (paths name `services.<name>.move`). */
export function requestedMove(ctx: MoveContext, service: ServiceSpec, to: MoveTarget): { move: RawMove; target: ServiceSpec } {
  const move: RawMove = {
    to: { server: to.server ?? service.server, isolation: to.isolation, ...(to.database && { database: to.database }) },
    phase: "copy",
  };
  const input = readConfigFile(ctx.file);
  const services = { ...(input.values.services as Record<string, Record<string, unknown>>) };
  services[service.name] = { ...services[service.name], move };
  const result = validateConfig({ ...input, values: { ...input.values, services } });
  if (!result.ok) throw new BackupCommandError(result.problems.map(formatProblem).join("\n"));
  const moved = result.spec.services.find((s) => s.name === service.name);
  return { move, target: moved?.move?.target as ServiceSpec };
}

/** The target as a service spec: the one being moved to, or the one a request asks for. */
function targetOf(ctx: MoveContext, service: ServiceSpec, to?: MoveTarget): ServiceSpec {
  // Declared at its new place, the move's last `up` still to run.
  if (service.arrived && !to) return service;
  if (service.move) {
    const t = service.move.target;
    const same =
      !to || (to.isolation === t.isolation && (to.server ?? service.server) === t.server && (!to.database || to.database === t.database));
    if (!same) {
      throw new BackupCommandError(
        `service ${service.name} is already moving to ${locationOf(t)} (phase ${service.move.phase}): finish it with move apply, or undo it with move rollback`,
      );
    }
    return t;
  }
  if (!to) {
    throw new BackupCommandError(`service ${service.name} is not moving: give --to database|schema (with --database, --server)`);
  }
  return requestedMove(ctx, service, to).target;
}

const STEP = {
  sessions: (s: ServiceSpec) =>
    `check that no session of ${s.name}'s logins is open on ${s.server} (stop the service now: the downtime window starts)`,
  backup: (s: ServiceSpec) => `back up ${s.name} into the stack's backups (db-platform backup run: what backup restore finds later)`,
  export: (s: ServiceSpec, dir: string) =>
    `export ${s.name} from ${locationOf(s)} into ${dir} (its read-only login, one snapshot; row counts and schema hash in the manifest)`,
  create: (t: ServiceSpec, sameServer: boolean) =>
    `up (move phase copy): create ${locationOf(t)} with ${t.name}'s schemas, grants and default privileges${sameServer ? "" : `, and its roles on server ${t.server}`}; the old place still serves`,
  restore: (s: ServiceSpec, t: ServiceSpec) =>
    `restore the export into ${locationOf(t)} as ${t.owner.name}; verify row counts and schema hash against the manifest; verify ${locationOf(s)} still matches it`,
  serve: (t: ServiceSpec) =>
    `up (move phase serve): ${t.name}'s URLs and secrets point at ${locationOf(t)} (the downtime window ends: start the service)`,
  retire: (s: ServiceSpec, sameServer: boolean) =>
    `with --confirm only: up (move phase retire): drop ${locationOf(s)}${sameServer ? "" : ` and ${s.name}'s roles on server ${s.server}`}`,
  finish: (t: ServiceSpec) =>
    `declare ${t.name} at ${locationOf(t)} in the stack file (move phase done); up: the new place's resources take the service's own names (no change in PostgreSQL); the move entry goes`,
};

export const movesDir = (ctx: MoveContext) => ctx.dir ?? path.join(ctx.projectDir, ".db-platform", "moves", ctx.stack);

/** What `move apply` will do from where the move stands. */
export function movePlan(ctx: MoveContext, serviceName: string, to?: MoveTarget): MovePlan {
  const spec = loadSpec(ctx.file);
  const service = serviceOf(spec, serviceName);
  const target = targetOf(ctx, service, to);
  const sameServer = target.server === service.server;
  const phase = service.arrived ? "done" : (service.move?.phase ?? "start");
  const all = [
    ["start", STEP.sessions(service)],
    ...(spec.backups ? ([["start", STEP.backup(service)]] as const) : []),
    ["start", STEP.export(service, path.relative(ctx.projectDir, movesDir(ctx)) || ".")],
    ["copy", STEP.create(target, sameServer)],
    ["copy", STEP.restore(service, target)],
    ["copy", STEP.serve(target)],
    ["serve", STEP.retire(service, sameServer)],
    ["done", STEP.finish(target)],
  ] as const;
  const order = ["start", "copy", "serve", "retire", "done"];
  return {
    stack: ctx.stack,
    service: service.name,
    from: locationOf(service),
    to: locationOf(target),
    phase,
    steps: all.filter(([p]) => order.indexOf(p) >= order.indexOf(phase)).map(([, step]) => step),
    downtime:
      "from the session check before the export until the switch (phase serve): the service must not write; the export, the target's creation and the restore take that long",
    confirmation: `${ctx.stack}/${service.name}`,
  };
}
