/** What every command shares: the stack options, resolving them to a stack file, exit codes, output. */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Command, Option } from "commander";
import { formatProblem, type Spec, validateConfig } from "../components/spec";
import { findProjectDir, projectName, readConfigFile, stackConfigPath } from "../operations/stack/stackConfig";

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {}

export interface StackOptions {
  stack?: string;
  config?: string;
}

/** Where a command writes: stdout and stderr, replaceable in tests. */
export interface Output {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
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

export function stackOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-s, --stack <name>", "stack name: reads Pulumi.<name>.yaml from the project directory"))
    .addOption(new Option("-c, --config <file>", "a file in the Pulumi.<stack>.yaml format (overrides --stack's file)"));
}

/** The stack file's spec, or undefined after printing its problems on stdout (exit 1). */
export function validSpec(file: string, out: (s: string) => void): Spec | undefined {
  const result = validateConfig(readConfigFile(file));
  if (result.ok) return result.spec;
  for (const p of result.problems) out(`${formatProblem(p)}\n`);
  process.exitCode = EXIT_PROBLEMS;
  return undefined;
}

/** `--concurrency <n>` (audit, stats): `.option(...CONCURRENCY_OPTION)`. */
export const CONCURRENCY_OPTION = [
  "--concurrency <n>",
  "databases read at the same time per server",
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency ${v}: expected a whole number from 1 to 64`);
    return n;
  },
] as const;

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * A report command's run (audit, stats): its known failures end with their message on stderr
 * and `exitCode` (they could not run); anything else is a bug and throws.
 */
export async function runReport<R>(
  prefix: string,
  known: readonly ErrorClass[],
  exitCode: number,
  err: (s: string) => void,
  run: () => Promise<R>,
): Promise<R | undefined> {
  try {
    return await run();
  } catch (e) {
    if (!known.some((k) => e instanceof k)) throw e;
    err(`${prefix}: ${(e as Error).message}\n`);
    process.exitCode = exitCode;
    return undefined;
  }
}

/** A rendered report to `--out` (a one-line summary on stderr) or to stdout. */
export function emitReport(rendered: string, file: string | undefined, summary: string, { out, err }: Output): void {
  if (!file) {
    out(rendered);
    return;
  }
  fs.writeFileSync(file, rendered);
  err(`${file}: ${summary}\n`);
}
