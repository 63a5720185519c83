/**
 * `db-platform rotate`: new credentials for a stack's service logins, without downtime
 * (docs/rotation.md, components/spec/rotation.ts).
 *
 * The stack file is the rotation's journal, as it is a move's: each login rotated gets
 * `services.<name>.credentials.<key>: { generation: N + 1, rotatedAt, pending: true }`, checked by
 * the stack's own validation before anything is applied. Then `up` gives the slot of generation
 * N + 1 a new password (creating the login's alternate role at its first rotation) and points the
 * login's URL and secret at it, while the slot of generation N keeps its password. Each login is
 * then verified with both credentials — the new one and the previous one log in as their own
 * roles, members of the login — and `pending` is cleared. A rotation stopped anywhere (an engine
 * error, a killed process, a failed verification) is resumed by running `rotate` again: a pending
 * generation is applied and verified, not incremented.
 *
 * The logins of services on rds servers are Secrets Manager's to rotate, on their schedule and
 * with their server's rotation function (operations/rotate/secretsManager.ts): for them `rotate`
 * asks Secrets Manager to rotate now and waits for it (operations/rotate/onAws.ts).
 */
import type { OutputMap } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { type Document, isScalar } from "yaml";
import * as fs from "node:fs";
import {
  currentRoleName,
  generationOf,
  type LoginCredential,
  previousRoleName,
  type RoleSpec,
  type ServiceSpec,
  type Spec,
} from "../../components/spec";
import { NAMESPACE } from "../../components/spec/naming";
import { BackupCommandError, selectServices } from "../backup/command";
import { BackupError, message } from "../backup/runner";
import { ownEntry } from "../move/journal";
import { loadSpec, type MoveContext } from "../move/plan";
import { describeChanges, upStack } from "../stack/stackApply";
import { rotateWithSecretsManager } from "./onAws";
import { editConfigFile } from "../stack/stackConfig";

/** A step of a rotation failed: the journal says where it stands, and `rotate` resumes it. */
export class RotateError extends BackupError {}

/** The stack (its file is the rotation's journal) and where progress goes, as a move has them. */
export type RotateContext = Pick<MoveContext, "file" | "stack" | "project" | "projectDir" | "progress" | "tty">;

export interface RotateRequest {
  /** Only this service's logins (`--service`). */
  readonly service?: string;
  /** Only this login key of each selected service (`--login`: app, readonly, migrator or a scoped key). */
  readonly login?: string;
  /** @default new Date() */
  readonly now?: Date;
}

/** One login of a rotation. */
export interface LoginRotation {
  readonly service: string;
  readonly login: string;
  /** `engine`: a new generation applied by `up`; `secrets-manager`: its secret rotated by Secrets Manager (rds servers, onAws.ts). */
  readonly by: "engine" | "secrets-manager";
  readonly generation: number;
  /** The role its URL and secret now name. */
  readonly role: string;
  /** The previous generation's role, valid until the next rotation. */
  readonly previousRole: string;
}

export interface RotatePlan {
  readonly stack: string;
  /** True when an earlier rotation stopped before it was verified: these logins are resumed, not rotated again. */
  readonly resuming: boolean;
  readonly logins: readonly LoginRotation[];
}

export interface RotateResult {
  readonly plan: RotatePlan;
  /** What was done, one line each, with timings. */
  readonly log: readonly string[];
  /** The stack's outputs after the rotation (secret values as the engine gives them). */
  readonly outputs: OutputMap;
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** The logins a rotation of this stack concerns: the pending ones, else the ones the request selects. */
export function rotatePlan(ctx: RotateContext, req: RotateRequest = {}): RotatePlan {
  const spec = loadSpec(ctx.file);
  // Secrets Manager's logins keep no journal here (a pending generation left from before is not theirs to resume).
  const pending = spec.services.flatMap((s) => s.logins.filter((l) => l.credential?.pending && !l.rotatedBy).map((l) => ({ s, l })));
  const chosen =
    pending.length > 0 ? pending : selected(spec, req).map(({ s, l }) => ({ s, l: l.rotatedBy ? l : next(l, req.now ?? new Date()) }));
  return {
    stack: ctx.stack,
    resuming: pending.length > 0,
    logins: chosen.map(({ s, l }) => ({
      service: s.name,
      login: l.key,
      by: l.rotatedBy ?? "engine",
      generation: generationOf(l),
      role: l.rotatedBy ? l.name : currentRoleName(l),
      previousRole: previousRoleName(l) ?? l.name,
    })),
  };
}

/** The login at its next generation. */
function next(login: RoleSpec, now: Date): RoleSpec {
  const credential: LoginCredential = { generation: generationOf(login) + 1, rotatedAt: now.toISOString(), pending: true };
  return { ...login, credential };
}

function selected(spec: Spec, req: RotateRequest): Array<{ s: ServiceSpec; l: RoleSpec }> {
  const services = selectServices(spec, { service: req.service });
  if (services.length === 0) throw new BackupCommandError(`stack has no services: nothing to rotate`);
  const moving = services.filter((s) => s.move || s.arrived);
  if (moving.length > 0) {
    throw new BackupCommandError(
      `service ${moving.map((s) => s.name).join(", ")} is moving (services.<name>.move): finish the move (db-platform move apply) before rotating its logins`,
    );
  }
  const out = services.flatMap((s) => s.logins.filter((l) => req.login === undefined || l.key === req.login).map((l) => ({ s, l })));
  if (out.length === 0) {
    const keys = [...new Set(services.flatMap((s) => s.logins.map((l) => l.key)))];
    throw new BackupCommandError(
      `--login ${req.login}: no such login${req.service ? ` of service ${req.service}` : " in the stack"} (logins: ${keys.join(", ")})`,
    );
  }
  return out;
}

const servicesKey = `${NAMESPACE}:services`;

/** Write the logins' credentials to the stack file (one edit), or take `pending` off them. */
function writeCredentials(ctx: RotateContext, logins: readonly LoginRotation[], credential: (l: LoginRotation) => LoginCredential): void {
  editConfigFile(ctx.file, (doc: Document) => {
    for (const service of new Set(logins.map((l) => l.service))) ownEntry(doc, ctx.file, service);
    for (const l of logins) {
      const node = doc.createNode(credential(l));
      // Quoted: YAML 1.1 readers (the engine's) would take a bare ISO time for a timestamp and rewrite it.
      const at = node.get("rotatedAt", true);
      if (isScalar(at)) at.type = "QUOTE_DOUBLE";
      doc.setIn(["config", servicesKey, l.service, "credentials", l.login], node);
    }
  });
}

/**
 * Rotate (or resume) the plan's logins: journal, `up`, verification of both credentials of each,
 * journal cleared; the logins Secrets Manager rotates, by asking it to rotate now (onAws.ts).
 */
export async function rotateApply(ctx: RotateContext, req: RotateRequest = {}): Promise<RotateResult> {
  const plan = rotatePlan(ctx, req);
  const byEngine = { ...plan, logins: plan.logins.filter((l) => l.by === "engine") };
  const result = byEngine.logins.length > 0 ? await rotateByEngine(ctx, byEngine, req) : { plan, log: [], outputs: {} };
  const spec = loadSpec(ctx.file);
  const log = [...result.log];
  for (const l of plan.logins.filter((x) => x.by === "secrets-manager")) {
    const server = spec.servers.find((s) => s.name === selectServices(spec, { service: l.service })[0].server);
    const region = server?.hosting === "rds" ? server.region : "";
    log.push(await rotateWithSecretsManager({ service: l.service, login: l.login, region }, { environment: spec.environment }));
  }
  return { plan, log, outputs: result.outputs };
}

async function rotateByEngine(ctx: RotateContext, plan: RotatePlan, req: RotateRequest): Promise<RotateResult> {
  const log: string[] = [];
  const now = (req.now ?? new Date()).toISOString();
  if (!plan.resuming) {
    const before = fs.readFileSync(ctx.file, "utf8");
    writeCredentials(ctx, plan.logins, (l) => ({ generation: l.generation, rotatedAt: now, pending: true }));
    try {
      loadSpec(ctx.file);
    } catch (e) {
      // Refused by the stack's validation (an alternate role's name too long, or taken): nothing was applied.
      fs.writeFileSync(ctx.file, before);
      throw new BackupCommandError(`the rotation is refused, nothing changed: ${message(e)}`);
    }
  } else log.push(`resuming the rotation of ${plan.logins.map((l) => `${l.service} ${l.login}`).join(", ")} (written, not yet verified)`);

  const spec = loadSpec(ctx.file);
  const started = performance.now();
  let outputs: OutputMap;
  try {
    const r = await upStack({
      spec,
      stack: ctx.stack,
      project: ctx.project,
      projectDir: ctx.projectDir,
      progress: ctx.progress,
      tty: ctx.tty,
    });
    outputs = r.outputs;
    log.push(`up: ${describeChanges(r.changes)} in ${seconds(started)}`);
  } catch (e) {
    const lines = message(e).split("\n");
    // The engine's error lines, with what follows the first (the program's own message: a config problem, a provider error).
    const first = lines.findIndex((l) => /\berror:/.test(l));
    const errors =
      first < 0
        ? []
        : [
            ...new Set(
              lines
                .slice(first, first + 12)
                .map((l) => l.trim())
                .filter(Boolean),
            ),
          ];
    throw new RotateError(
      `the engine failed; the rotation stays pending in ${ctx.file} and \`db-platform rotate --stack ${ctx.stack}\` resumes it:\n  ${(errors.length > 0 ? errors : lines.slice(-12)).join("\n  ")}`,
    );
  }
  const verifying = performance.now();
  for (const l of plan.logins) log.push(await verifyLogin(spec, outputs, l));
  log.push(`verified ${plan.logins.length} login(s), both credentials each, in ${seconds(verifying)}`);
  // Verified: the journal keeps each login's generation and when it was made, no longer pending.
  writeCredentials(ctx, plan.logins, (l) => ({ generation: l.generation, rotatedAt: loginOf(spec, l).credential?.rotatedAt ?? now }));
  return { plan, log, outputs };
}

const loginOf = (spec: Spec, l: LoginRotation): RoleSpec =>
  selectServices(spec, { service: l.service })[0].logins.find((x) => x.key === l.login) as RoleSpec;

interface ServiceUrls {
  readonly urls: Readonly<Record<string, string>>;
  readonly directUrls?: Readonly<Record<string, string>>;
  readonly previousUrls?: Readonly<Record<string, string>>;
  readonly previousDirectUrls?: Readonly<Record<string, string>>;
}

/** Each of the login's URLs (current and previous, pooled and direct) logs in as its own role, a member of the login. */
async function verifyLogin(spec: Spec, outputs: OutputMap, l: LoginRotation): Promise<string> {
  const login = loginOf(spec, l);
  const urls = ((outputs.services?.value ?? {}) as Record<string, ServiceUrls>)[l.service];
  const checks: Array<[string, string | undefined, string]> = [
    ["current", urls?.urls[l.login], l.role],
    ["current (direct)", urls?.directUrls?.[l.login], l.role],
    ["previous", urls?.previousUrls?.[l.login], l.previousRole],
    ["previous (direct)", urls?.previousDirectUrls?.[l.login], l.previousRole],
  ];
  const done: string[] = [];
  for (const [what, url, role] of checks) {
    if (!url) {
      if (what.endsWith("(direct)")) continue;
      throw new RotateError(`${l.service} ${l.login}: the stack has no ${what} URL after the rotation; run rotate again`);
    }
    const user = decodeURIComponent(new URL(url).username);
    if (user !== role) throw new RotateError(`${l.service} ${l.login}: its ${what} URL names ${user}, not ${role}; run rotate again`);
    await loginCheck(url, role, login, what, l);
    done.push(what);
  }
  return `${l.service} ${l.login}: generation ${l.generation}, now ${l.role} (previous ${l.previousRole}, valid until the next rotation); logged in with ${done.join(", ")}`;
}

async function loginCheck(url: string, role: string, login: RoleSpec, what: string, l: LoginRotation): Promise<void> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    const { rows } = await c.query<{ session_user: string; member: boolean }>(
      "SELECT session_user, pg_has_role(session_user, $1, 'USAGE') AS member",
      [login.name],
    );
    if (rows[0]?.session_user !== role || !rows[0].member) {
      throw new RotateError(
        `${l.service} ${l.login}: the ${what} credential logs in as ${rows[0]?.session_user}, not as ${role} with ${login.name}'s privileges`,
      );
    }
  } catch (e) {
    if (e instanceof RotateError) throw e;
    throw new RotateError(
      `${l.service} ${l.login}: the ${what} credential (${role}) does not log in: ${message(e)}; the rotation stays pending, run rotate again`,
    );
  } finally {
    await c.end().catch(() => undefined);
  }
}
