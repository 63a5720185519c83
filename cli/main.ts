/**
 * The `db-platform` command line. Exit codes: 0 success, 1 the stack has problems (invalid
 * config, policy violations), 2 the command could not run (bad arguments, unreadable files).
 * `audit` answers with its verdict instead: 2 critical, 1 high, 0 otherwise, 3 could not run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CommandError } from "@pulumi/pulumi/automation";
import { Command, CommanderError, Option } from "commander";
import { formatProblem, validateConfig } from "../components/spec";
import { ConfigFileError, findProjectDir, projectName, readConfigFile, stackConfigPath } from "../operations/stack/stackConfig";
import { synth } from "../operations/stack/synth";
import { LocalCommandError, localCommand } from "../operations/local/local";
import { LocalPostgresError } from "../operations/local/postgres";
import { formatViolations, policyCheck } from "../operations/stack/policyCheck";
import { PolicyConfigError } from "../policies/engine/evaluate";
import { StateFormatError } from "../policies/engine/sources";
import { AuditError, parseServerUrls, runAudit } from "../operations/audit/run";
import { backupCommands } from "./backup";
import {
  baselineBackups,
  describeChanges,
  destroyStack,
  formatServiceUrls,
  PluginError,
  previewStack,
  upStack,
} from "../operations/stack/stackApply";
import { AUDIT_EXIT, exitCodeOf, REPORT_FORMATS, type ReportFormat, render } from "../operations/audit/report";

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

interface StackOptions {
  stack?: string;
  config?: string;
}

/** Resolve `--stack` / `--config` to a config file, a stack name and the project name. */
export function resolveStack(opts: StackOptions): { file: string; stack: string; project: string } {
  if (!opts.stack && !opts.config) throw new UsageError("give --stack <name> or --config <file>");
  if (opts.config) {
    const file = path.resolve(opts.config);
    const fromName = /^Pulumi\.(.+)\.ya?ml$/.exec(path.basename(file))?.[1];
    let project = "db-platform";
    try {
      project = projectName(findProjectDir(path.dirname(file)));
    } catch {
      // A config file outside a project is fine: use the default project name.
    }
    return { file, stack: opts.stack ?? fromName ?? "stack", project };
  }
  const dir = findProjectDir();
  return { file: stackConfigPath(opts.stack as string, dir), stack: opts.stack as string, project: projectName(dir) };
}

function stackOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-s, --stack <name>", "stack name: reads Pulumi.<name>.yaml from the project directory"))
    .addOption(new Option("-c, --config <file>", "a file in the Pulumi.<stack>.yaml format (overrides --stack's file)"));
}

export function buildProgram(
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Command {
  const program = new Command("db-platform")
    .description("PostgreSQL platform on Pulumi: validate, synthesize and check stacks offline.")
    .configureOutput({ writeOut: out, writeErr: err })
    .exitOverride()
    .showHelpAfterError();

  stackOptions(
    program.command("validate").description("check a stack's db-platform config; one line per problem, each starting with its config path"),
  ).action((opts: StackOptions) => {
    const { file } = resolveStack(opts);
    const result = validateConfig(readConfigFile(file));
    if (!result.ok) {
      for (const p of result.problems) out(`${formatProblem(p)}\n`);
      err(`${path.basename(file)}: ${result.problems.length} problem(s)\n`);
      process.exitCode = EXIT_PROBLEMS;
      return;
    }
    const { spec } = result;
    err(
      `${path.basename(file)}: valid (environment ${spec.environment}, ${spec.servers.length} server(s), ${spec.services.length} service(s))\n`,
    );
  });

  stackOptions(program.command("synth").description("print the full desired state offline (the real program under the SDK's mocks)"))
    .option("--json", "print a JSON array of { type, name, urn, parent, provider, props }")
    .action(async (opts: StackOptions & { json?: boolean }) => {
      const { file, stack, project } = resolveStack(opts);
      const input = readConfigFile(file);
      const result = validateConfig(input);
      if (!result.ok) {
        for (const p of result.problems) out(`${formatProblem(p)}\n`);
        process.exitCode = EXIT_PROBLEMS;
        return;
      }
      const resources = await synth(input, project, stack);
      if (opts.json) {
        out(`${JSON.stringify(resources, null, 2)}\n`);
        return;
      }
      const byType = new Map<string, number>();
      for (const r of resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
      for (const [type, n] of [...byType].sort()) out(`${String(n).padStart(5)}  ${type}\n`);
      out(`${String(resources.length).padStart(5)}  resources in stack ${stack}\n`);
    });

  const policy = program.command("policy").description("the policy pack's rules, offline");
  stackOptions(
    policy
      .command("check")
      .description(
        "evaluate the policy pack on a stack export, synth --json output, or a stack synthesized offline; exit 1 on a mandatory violation",
      ),
  )
    .option("--state <file>", "a `pulumi stack export` document or `db-platform synth --json` output")
    .option("--policy-config <file>", "policy config (default: policies/config/<stack>.json when it exists)")
    .option("--json", "print an array of { policy, urn, message, enforcement }")
    .action(async (opts: StackOptions & { state?: string; policyConfig?: string; json?: boolean }) => {
      if (!opts.state && !opts.stack && !opts.config) throw new UsageError("give --state <file>, --stack <name> or --config <file>");
      const result = await policyCheck(opts, resolveStack);
      if (!result.ok) {
        for (const line of result.problems) out(`${line}\n`);
        process.exitCode = EXIT_PROBLEMS;
        return;
      }
      const { violations } = result;
      out(opts.json ? `${JSON.stringify(violations, null, 2)}\n` : formatViolations(violations));
      if (violations.some((v) => v.enforcement === "mandatory")) process.exitCode = EXIT_PROBLEMS;
    });

  const local = program
    .command("local")
    .description("the real PostgreSQL servers of a stack's `local` servers (127.0.0.1, data in .db-platform/)");
  for (const action of ["start", "stop", "status"] as const) {
    stackOptions(local.command(action).description(`${action} the stack's local PostgreSQL servers`)).action(async (opts: StackOptions) => {
      const { file, stack } = resolveStack(opts);
      const result = validateConfig(readConfigFile(file));
      if (!result.ok) {
        for (const p of result.problems) out(`${formatProblem(p)}\n`);
        process.exitCode = EXIT_PROBLEMS;
        return;
      }
      const ok = await localCommand(action, result.spec, stack, findProjectDir(path.dirname(file)), out);
      if (!ok) process.exitCode = EXIT_PROBLEMS;
    });
  }

  const applyContext = (opts: StackOptions) => {
    const { file, stack, project } = resolveStack(opts);
    const result = validateConfig(readConfigFile(file));
    if (!result.ok) {
      for (const p of result.problems) out(`${formatProblem(p)}\n`);
      return undefined;
    }
    return {
      spec: result.spec,
      stack,
      project,
      projectDir: findProjectDir(path.dirname(file)),
      progress: err,
      tty: process.stderr.isTTY === true,
    };
  };
  // Ctrl-C reaches the engine too, which finishes the operations in flight and saves the state;
  // this process waits for it. A second Ctrl-C quits at once (the next `up` then recovers).
  const waitForEngineOnInterrupt = () => {
    let interrupted = false;
    process.on("SIGINT", () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      err("\ninterrupted: the engine finishes what is in flight and saves the state (Ctrl-C again to quit at once)\n");
    });
  };
  stackOptions(
    program
      .command("up")
      .description(
        "start the stack's local servers, apply it through the Pulumi engine with the policy pack, and print each service's connection URLs",
      ),
  )
    .option("--show-secrets", "print the URLs' passwords instead of ****")
    .action(async (opts: StackOptions & { showSecrets?: boolean }) => {
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      waitForEngineOnInterrupt();
      const result = await upStack(ctx);
      out(`stack ${ctx.stack}: ${describeChanges(result.changes)} in ${result.seconds.toFixed(1)} s\n`);
      out(formatServiceUrls(result.outputs, opts.showSecrets === true));
      const first = await baselineBackups(ctx);
      for (const b of first) {
        out(
          b.ok
            ? `backups: first backup of ${b.service} (${b.manifest?.id})\n`
            : `backups: first backup of ${b.service} failed: ${b.error}\n`,
        );
      }
      if (first.some((b) => !b.ok)) process.exitCode = EXIT_PROBLEMS;
    });
  stackOptions(
    program.command("preview").description("preview the stack through the Pulumi engine with the policy pack; exit 1 on policy violations"),
  )
    .option("--expect-no-changes", "exit 1 when the preview would change anything")
    .action(async (opts: StackOptions & { expectNoChanges?: boolean }) => {
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      out(`stack ${ctx.stack}: ${describeChanges(await previewStack(ctx, opts.expectNoChanges === true))}\n`);
    });
  stackOptions(
    program
      .command("destroy")
      .description("delete every resource of the stack through the Pulumi engine (databases, schemas and roles with their data)"),
  )
    .option("--yes", "confirm: the stack's databases and their data are deleted")
    .action(async (opts: StackOptions & { yes?: boolean }) => {
      if (!opts.yes) throw new UsageError("destroy deletes every database of the stack with its data: confirm with --yes");
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      waitForEngineOnInterrupt();
      out(`stack ${ctx.stack}: ${describeChanges(await destroyStack(ctx))}\n`);
    });

  backupCommands(program, stackOptions, resolveStack, out, err);

  stackOptions(
    program
      .command("audit")
      .description(
        "compare what the databases really allow with what the stack declares; exit 2 on a critical finding, 1 on high, 3 when it could not run",
      ),
  )
    .option("--service <name>", "only findings that concern this service, and only its server")
    .addOption(new Option("--format <format>", "report format").choices(REPORT_FORMATS).default("text"))
    .option("--out <file>", "write the report to a file (a one-line summary goes to stderr)")
    .option("--state <file>", "read the declared side from a `pulumi stack export` document or synth --json output")
    .option(
      "--server-url <server=url>",
      "connect to a server with this PostgreSQL URL (repeatable; required for rds, container and external servers)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--password-max-age <days>", "report logins whose password is valid longer than this (low)", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--password-max-age ${v}: expected a positive whole number of days`);
      return n;
    })
    .option("--concurrency <n>", "databases read at the same time per server", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency ${v}: expected a whole number from 1 to 64`);
      return n;
    })
    .option("--no-backups", "skip the backup freshness check (each service's latest backup against the RPO)")
    .action(
      async (
        opts: StackOptions & {
          service?: string;
          format: ReportFormat;
          out?: string;
          state?: string;
          serverUrl: string[];
          passwordMaxAge?: number;
          concurrency?: number;
          backups: boolean;
        },
      ) => {
        const { file, stack, project } = resolveStack(opts);
        let report;
        try {
          report = await runAudit({
            file,
            stack,
            project,
            projectDir: findProjectDir(path.dirname(file)),
            state: opts.state,
            service: opts.service,
            serverUrls: parseServerUrls(opts.serverUrl),
            passwordMaxAgeDays: opts.passwordMaxAge,
            concurrency: opts.concurrency,
            backups: opts.backups,
          });
        } catch (e) {
          if (!(e instanceof AuditError || e instanceof ConfigFileError || e instanceof StateFormatError)) throw e;
          err(`db-platform audit: ${e.message}\n`);
          process.exitCode = AUDIT_EXIT.couldNotRun;
          return;
        }
        const rendered = render(report, opts.format);
        if (opts.out) {
          fs.writeFileSync(opts.out, rendered);
          const s = report.summary;
          err(
            `${opts.out}: ${report.findings.length} finding(s) (${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low)\n`,
          );
        } else {
          out(rendered);
        }
        process.exitCode = exitCodeOf(report);
      },
    );

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
      e instanceof PluginError
    ) {
      process.stderr.write(`db-platform: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
