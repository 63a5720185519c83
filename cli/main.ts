/**
 * The `db-platform` command line. Exit codes: 0 success, 1 the stack has problems (invalid
 * config, policy violations), 2 the command could not run (bad arguments, unreadable files).
 * `audit` answers with its verdict instead: 2 critical, 1 high, 0 otherwise, 3 could not run.
 * The commands are defined by group: offline.ts, engine.ts, backup.ts, restore.ts, exchange.ts, move.ts, upgrade.ts, rotate.ts, audit.ts, stats.ts.
 */
import { CommandError } from "@pulumi/pulumi/automation";
import { Command, CommanderError } from "commander";
import { ConfigFileError } from "../operations/stack/stackConfig";
import { LocalCommandError } from "../operations/local/local";
import { LocalPostgresError } from "../operations/local/postgres";
import { LocalS3Error } from "../operations/local/s3";
import { PolicyConfigError } from "../policies/engine/evaluate";
import { StateFormatError } from "../policies/engine/sources";
import { PluginError } from "../operations/stack/stackApply";
import { DataProtectionError } from "../operations/stack/dataProtection";
import { PolicyViolationError } from "../operations/stack/upPolicy";
import { auditCommand } from "./audit";
import { backupCommands } from "./backup";
import { EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError } from "./common";
import { engineCommands } from "./engine";
import { exchangeCommands } from "./exchange";
import { moveCommands } from "./move";
import { offlineCommands } from "./offline";
import { baseBackupCommand, restoreCommand } from "./restore";
import { rotateCommand } from "./rotate";
import { statsCommand } from "./stats";
import { upgradeCommands } from "./upgrade";

export { EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, resolveStack, UsageError } from "./common";

export function buildProgram(
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Command {
  const program = new Command("db-platform")
    .description("PostgreSQL platform on Pulumi: validate, synthesize and check stacks offline.")
    .configureOutput({ writeOut: out, writeErr: err })
    .exitOverride()
    .showHelpAfterError();
  offlineCommands(program, { out, err });
  engineCommands(program, { out, err });
  const backup = backupCommands(program, { out, err });
  baseBackupCommand(backup, { out, err });
  restoreCommand(program, { out, err });
  exchangeCommands(program, { out, err });
  moveCommands(program, { out, err });
  upgradeCommands(program, { out, err });
  rotateCommand(program, { out, err });
  auditCommand(program, { out, err });
  statsCommand(program, { out, err });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0.
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (e instanceof PolicyViolationError) {
      // Refused before anything was applied, or the state the engine saved violates: exit 1, as policy check.
      process.stderr.write(`db-platform: ${e.message}`);
      return EXIT_PROBLEMS;
    }
    if (e instanceof DataProtectionError) {
      process.stderr.write(`db-platform: ${e.message}\n`);
      return EXIT_PROBLEMS;
    }
    if (e instanceof CommandError) {
      // The engine refused the stack (policy violations, provider errors): its own words, exit 1.
      process.stderr.write(`db-platform: the Pulumi engine failed:\n${e.message.trim()}\n`);
      return EXIT_PROBLEMS;
    }
    if (
      e instanceof UsageError ||
      e instanceof ConfigFileError ||
      e instanceof PolicyConfigError ||
      e instanceof StateFormatError ||
      e instanceof LocalCommandError ||
      e instanceof LocalPostgresError ||
      e instanceof LocalS3Error ||
      e instanceof PluginError
    ) {
      process.stderr.write(`db-platform: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
