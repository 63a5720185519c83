/**
 * `db-platform move plan|apply|rollback`: a service's data to another place — its own database,
 * a shared database, another server — through the engine, verified, resumable
 * (operations/move/move.ts, docs/data-moves.md). Exit codes: 0 done (or waiting for the
 * confirmation to retire the old place); 1 a step failed, the move stands where the message says
 * and `move apply` resumes it or `move rollback` undoes it; 2 it could not run (bad arguments, a
 * target the stack's validation refuses, open sessions, no confirmation).
 */
import * as path from "node:path";
import type { Command } from "commander";
import { parseNamedUrls } from "../operations/backup/command";
import {
  type MoveContext,
  type MovePlan,
  type MoveResult,
  type MoveTarget,
  moveApply,
  movePlan,
  moveRollback,
} from "../operations/move/move";
import { findProjectDir } from "../operations/stack/stackConfig";
import { collect, guardedBy } from "./backup";
import { type Output, resolveStack, type StackOptions, stackOptions, UsageError } from "./common";

interface MoveOptions extends StackOptions {
  service: string;
  to?: string;
  database?: string;
  server?: string;
  confirm?: string;
  ignoreSessions?: boolean;
  discardWrites?: boolean;
  url: string[];
  adminUrl: string[];
  json?: boolean;
}

function target(opts: MoveOptions): MoveTarget | undefined {
  if (opts.to === undefined) {
    if (opts.database || opts.server) throw new UsageError("--database and --server go with --to database|schema");
    return undefined;
  }
  if (opts.to !== "database" && opts.to !== "schema") throw new UsageError(`--to ${opts.to}: expected database or schema`);
  return { isolation: opts.to, database: opts.database, server: opts.server };
}

function context(opts: MoveOptions, err: (s: string) => void): MoveContext {
  const { file, stack, project } = resolveStack(opts);
  return {
    file,
    stack,
    project,
    projectDir: findProjectDir(path.dirname(file)),
    progress: err,
    tty: process.stderr.isTTY === true,
    urls: parseNamedUrls("--url", opts.url),
    adminUrls: parseNamedUrls("--admin-url", opts.adminUrl),
  };
}

export function planText(p: MovePlan): string {
  return [
    `move service ${p.service} of stack ${p.stack}${p.phase === "start" ? "" : ` (in progress: phase ${p.phase})`}`,
    `  from ${p.from}`,
    `  to   ${p.to}`,
    "steps:",
    ...p.steps.map((s, i) => `  ${i + 1}. ${s}`),
    `downtime: ${p.downtime}`,
    "",
  ].join("\n");
}

function resultText(r: MoveResult): string {
  const lines = [...r.log.map((l) => `  ${l}`)];
  if (r.state === "serve") {
    lines.push(
      `${r.plan.service} now serves from ${r.plan.to}; ${r.plan.from} is kept, unchanged, until you retire it:`,
      `  npx db-platform move apply --stack ${r.plan.stack} --service ${r.plan.service} --confirm ${r.plan.confirmation}`,
      `  (or go back: npx db-platform move rollback --stack ${r.plan.stack} --service ${r.plan.service})`,
    );
  } else lines.push(`${r.plan.service}: done`);
  return `${lines.join("\n")}\n`;
}

export function moveCommands(program: Command, { out, err }: Output): void {
  const guarded = guardedBy(err, "db-platform move");
  const group = program
    .command("move")
    .description(
      "move a service's data to its own database, a shared database or another server: plan, apply, rollback (docs/data-moves.md)",
    );
  const common = (cmd: Command) =>
    stackOptions(cmd)
      .requiredOption("--service <name>", "the service")
      .option("--url <service=url>", "the service's read-only login URL (servers that are not local)", collect, [])
      .option("--admin-url <server=url>", "a login that may act as the service's roles (servers that are not local)", collect, [])
      .option("--json", "print the plan and the result as JSON");
  const where = (cmd: Command) =>
    cmd
      .option("--to <isolation>", "database (a database of its own) or schema (schemas in a shared database)")
      .option("--database <name>", "the shared database (--to schema) or the new database's name (--to database; default <service>_db)")
      .option("--server <name>", "the server to move to (default: the service's own)");

  where(common(group.command("plan").description("what a move will do from where it stands, in order, and its downtime window"))).action(
    guarded(async (opts: MoveOptions) => {
      const p = movePlan(context(opts, err), opts.service, target(opts));
      out(opts.json ? `${JSON.stringify(p, null, 2)}\n` : planText(p));
    }),
  );
  where(
    common(
      group.command("apply").description("run the move (or resume it) up to the switch; with --confirm, retire the old place and finish"),
    ),
  )
    .option("--confirm <stack/service>", "retire the old place once the new one serves (drops its database or schemas)")
    .option("--ignore-sessions", "export although the service's logins have sessions open (they must not write)")
    .action(
      guarded(async (opts: MoveOptions) => {
        const ctx = context(opts, err);
        const to = target(opts);
        if (!opts.json) out(planText(movePlan(ctx, opts.service, to)));
        const r = await moveApply(ctx, opts.service, { to, confirm: opts.confirm, ignoreSessions: opts.ignoreSessions });
        out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : resultText(r));
      }),
    );
  common(
    group.command("rollback").description("undo a move that has not retired the old place: the old place serves, the new one is dropped"),
  )
    .option("--discard-writes", "after the switch: drop what the service wrote to the new place since")
    .action(
      guarded(async (opts: MoveOptions) => {
        const r = await moveRollback(context(opts, err), opts.service, { discardWrites: opts.discardWrites });
        out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : resultText(r));
      }),
    );
}
