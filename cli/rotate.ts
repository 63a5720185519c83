/**
 * `db-platform rotate`: new credentials for a stack's service logins without downtime — the
 * previous credential keeps working until the next rotation (operations/rotate/rotate.ts,
 * docs/rotation.md). `--plan` says what a run would rotate and does nothing. Exit codes: 0
 * rotated and verified; 1 a step failed (the rotation stays pending in the stack file, and
 * running `rotate` again resumes it); 2 it could not run (bad arguments, a stack its validation
 * refuses, a service in a move).
 */
import * as path from "node:path";
import type { Command } from "commander";
import { type RotateContext, type RotatePlan, rotateApply, rotatePlan } from "../operations/rotate/rotate";
import { findProjectDir } from "../operations/stack/stackConfig";
import { guardedBy } from "./backup";
import { type Output, resolveStack, type StackOptions, stackOptions } from "./common";

interface RotateOptions extends StackOptions {
  service?: string;
  login?: string;
  plan?: boolean;
  json?: boolean;
}

function context(opts: RotateOptions, err: (s: string) => void): RotateContext {
  const { file, stack, project } = resolveStack(opts);
  return { file, stack, project, projectDir: findProjectDir(path.dirname(file)), progress: err, tty: process.stderr.isTTY === true };
}

export function rotatePlanText(p: RotatePlan): string {
  return [
    `rotate ${p.logins.length} login(s) of stack ${p.stack}${p.resuming ? " (resuming a rotation that was written, not yet verified)" : ""}:`,
    ...p.logins.map((l) =>
      l.by === "secrets-manager"
        ? `  ${l.service} ${l.login}: by Secrets Manager, now: its secret names the slot (${l.role} or ${l.role}_alt) it does not name yet; the other keeps the previous credential until the next rotation`
        : `  ${l.service} ${l.login}: generation ${l.generation}: its URL and secret name ${l.role}; ${l.previousRole} keeps the previous credential until the next rotation`,
    ),
    "",
  ].join("\n");
}

export function rotateCommand(program: Command, { out, err }: Output): void {
  const guarded = guardedBy(err, "db-platform rotate");
  stackOptions(
    program
      .command("rotate")
      .description(
        "new credentials for the service logins, without downtime: the previous ones stay valid until the next rotation (docs/rotation.md)",
      ),
  )
    .option("--service <name>", "only this service's logins")
    .option("--login <key>", "only this login of each service: app, readonly, migrator or a scoped role's key")
    .option("--plan", "say what a run would rotate, and do nothing")
    .option("--json", "print the plan and the result as JSON")
    .action(
      guarded(async (opts: RotateOptions) => {
        const ctx = context(opts, err);
        const request = { service: opts.service, login: opts.login };
        const plan = rotatePlan(ctx, request);
        if (opts.plan) {
          out(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : rotatePlanText(plan));
          return;
        }
        if (!opts.json) out(rotatePlanText(plan));
        const r = await rotateApply(ctx, request);
        out(opts.json ? `${JSON.stringify({ plan: r.plan, log: r.log }, null, 2)}\n` : `${r.log.map((l) => `  ${l}`).join("\n")}\ndone\n`);
      }),
    );
}
