/** The `db-platform` command as a process, the way a user runs it: from the project folder. */
import { spawn, spawnSync } from "node:child_process";
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

/**
 * `runCli` without blocking this process, for a test that acts while the command runs. The
 * command leads a process group of its own, so `kill` ends it with everything it started (the
 * engine, its plugins), as a machine that dies would.
 */
export function runCliAsync(args: readonly string[], env: NodeJS.ProcessEnv = {}): { kill(): void; done: Promise<CliResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(ROOT, "bin/db-platform.js"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
  return { kill: () => process.kill(-(child.pid as number), "SIGKILL"), done };
}
