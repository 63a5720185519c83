/** The `db-platform` command as a process, the way a user runs it: from the project folder. */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { ROOT } from "./synth";

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the whole command. */
  readonly ms: number;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  return runBin("bin/db-platform.js", args, env);
}

/** The backup runner's container entrypoint (bin/backup-task.js), told its stack and server by environment. */
export function runBackupTask(env: NodeJS.ProcessEnv): CliResult {
  return runBin("bin/backup-task.js", [], env);
}

function runBin(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): CliResult {
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, bin), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}
