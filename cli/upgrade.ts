/**
 * `db-platform upgrade plan|apply|rollback`: a local server to a newer PostgreSQL major with
 * pg_upgrade, an RDS server through the phases RDS needs, guarded, verified per service,
 * resumable (operations/upgrade/upgrade.ts and rds.ts, docs/upgrades.md). Exit codes: 0 done or
 * verified (a local server's old cluster kept until --confirm); 1 a check refused it or a step
 * failed (the message says where it stands; apply resumes, rollback undoes); 2 bad arguments.
 */
import * as path from "node:path";
import type { Command } from "commander";
import { parseServerUrls, ServerReadError } from "../operations/connect";
import { parseNamedUrls } from "../operations/backup/command";
import { backupFailureCode } from "../operations/backup/task";
import { findProjectDir } from "../operations/stack/stackConfig";
import {
  type UpgradeContext,
  UpgradeError,
  type UpgradeMode,
  type UpgradePlan,
  type UpgradeResult,
  upgradeApply,
  upgradePlan,
  upgradeRollback,
} from "../operations/upgrade/upgrade";
import { collect } from "./backup";
import { type Output, resolveStack, type StackOptions, stackOptions, UsageError } from "./common";

interface UpgradeOptions extends StackOptions {
  server: string;
  to?: string;
  mode?: string;
  confirm?: boolean;
  ignoreSessions?: boolean;
  discardWrites?: boolean;
  url?: string[];
  serverUrl?: string[];
  json?: boolean;
}

const MODES: readonly UpgradeMode[] = ["clone", "copy", "link"];

function context(opts: UpgradeOptions, err: (s: string) => void): UpgradeContext {
  const { file, stack, project } = resolveStack(opts);
  return { file, stack, project, projectDir: findProjectDir(path.dirname(file)), progress: err, tty: process.stderr.isTTY === true };
}

export function upgradePlanText(p: UpgradePlan): string {
  return [
    `upgrade server ${p.server} of stack ${p.stack}: PostgreSQL ${p.from} → ${p.to}${p.phase ? ` (in progress: ${p.phase})` : ""}`,
    "steps:",
    ...p.steps.map((s, i) => `  ${i + 1}. ${s}`),
    `downtime: ${p.downtime}`,
    `undo: ${p.undo}`,
    "",
  ].join("\n");
}

function resultText(r: UpgradeResult, stackFlag: string): string {
  const lines = r.log.map((l) => `  ${l}`);
  if (r.state === "verified") {
    lines.push(
      `${r.plan.server} serves PostgreSQL ${r.plan.to}, verified; the ${r.plan.from} cluster is kept until you confirm:`,
      `  npx db-platform upgrade apply ${stackFlag} --server ${r.plan.server} --confirm`,
      `  (or go back: npx db-platform upgrade rollback ${stackFlag} --server ${r.plan.server} --discard-writes)`,
    );
  } else lines.push(`${r.plan.server}: ${r.state}`);
  return `${lines.join("\n")}\n`;
}

const guarded =
  (err: (s: string) => void) =>
  <T extends unknown[]>(f: (...a: T) => Promise<void>) =>
  async (...a: T) => {
    try {
      await f(...a);
    } catch (e) {
      const code = e instanceof UpgradeError ? 1 : e instanceof ServerReadError ? 2 : backupFailureCode(e);
      if (code === undefined) throw e;
      err(`db-platform upgrade: ${(e as Error).message}\n`);
      process.exitCode = code;
    }
  };

export function upgradeCommands(program: Command, { out, err }: Output): void {
  const guard = guarded(err);
  const group = program
    .command("upgrade")
    .description("upgrade a local or RDS server to a newer PostgreSQL major: plan, apply, rollback (docs/upgrades.md)");
  const common = (cmd: Command) =>
    stackOptions(cmd)
      .requiredOption("--server <name>", "the server (hosting local or rds)")
      .option("--json", "print the plan and the result as JSON");
  const stackFlag = (opts: UpgradeOptions) => (opts.config ? `--config ${opts.config}` : `--stack ${resolveStack(opts).stack}`);

  common(group.command("plan").description("what an upgrade will do, its checks, downtime window and what cannot be undone"))
    .option("--to <major>", "the PostgreSQL major to upgrade to")
    .action(
      guard(async (opts: UpgradeOptions) => {
        const p = upgradePlan(context(opts, err), opts.server, opts.to);
        out(opts.json ? `${JSON.stringify(p, null, 2)}\n` : upgradePlanText(p));
      }),
    );
  common(
    group
      .command("apply")
      .description("run the upgrade (or resume it) up to a verified new major; with --confirm, delete the kept old cluster"),
  )
    .option("--to <major>", "the PostgreSQL major to upgrade to")
    .option("--mode <mode>", "pg_upgrade's data transfer: clone (default where the filesystem can, else copy), copy, link")
    .option("--confirm", "once verified, delete the kept old cluster (rollback is no longer possible)")
    .option("--ignore-sessions", "upgrade although service logins have sessions open")
    .option(
      "--url <service=url>",
      "RDS: a service's read-only login URL for its backups (repeatable; else its DB_PLATFORM_LOGIN_* secret)",
      collect,
      [],
    )
    .option("--server-url <server=url>", "RDS: the master user's URL, for extension updates, statistics and the audit", collect, [])
    .action(
      guard(async (opts: UpgradeOptions) => {
        if (opts.mode !== undefined && !(MODES as readonly string[]).includes(opts.mode))
          throw new UsageError(`--mode ${opts.mode}: expected ${MODES.join(", ")}`);
        const ctx = context(opts, err);
        if (!opts.json) out(upgradePlanText(upgradePlan(ctx, opts.server, opts.to)));
        const r = await upgradeApply(ctx, opts.server, {
          to: opts.to,
          mode: opts.mode as UpgradeMode | undefined,
          confirm: opts.confirm,
          ignoreSessions: opts.ignoreSessions,
          urls: parseNamedUrls("--url", opts.url ?? []),
          serverUrls: parseServerUrls(opts.serverUrl ?? []),
        });
        out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : resultText(r, stackFlag(opts)));
      }),
    );
  common(group.command("rollback").description("return to the kept old cluster, from any step before --confirm"))
    .option("--discard-writes", "once the new major has served: drop what was written to it since")
    .action(
      guard(async (opts: UpgradeOptions) => {
        const r = await upgradeRollback(context(opts, err), opts.server, { discardWrites: opts.discardWrites });
        out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : resultText(r, stackFlag(opts)));
      }),
    );
}
