/**
 * Stand-ins for tools a laptop may have installed, for the tests of how the scripts choose among
 * them: a folder holding `name`, a shell script that answers `name <versionArg>` with a fixed
 * line and exits `exitCode` for anything else. Only the choice is tested with them; the chosen
 * tools themselves are the real ones in every other suite.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface FakeTool {
  readonly dir: string;
  readonly file: string;
}

const made: string[] = [];

/** A temporary folder, deleted by removeFakeTools. */
export function scratchDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `db-platform-${prefix}-`));
  made.push(dir);
  return dir;
}

/** Delete every folder this module made (call in afterAll). */
export function removeFakeTools(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function fakeTool(name: string, versionArg: string, versionLine: string, exitCode = 0): FakeTool {
  const dir = scratchDir(`fake-${name}`);
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\nif [ "$1" = ${versionArg} ]; then echo '${versionLine}'; exit 0; fi\nexit ${exitCode}\n`, {
    mode: 0o755,
  });
  return { dir, file };
}

/** A PATH of links to just `tools` (and the shell), so a test can leave out go, pulumi or minio. */
export function minimalPath(tools: readonly string[]): string {
  const dir = scratchDir("path");
  for (const tool of ["bash", "sh", ...tools]) {
    const found = spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
    if (!found) throw new Error(`minimalPath: ${tool} is not on this machine's PATH`);
    fs.symlinkSync(found, path.join(dir, tool));
  }
  return dir;
}

export interface ScriptRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run one of the project's bash scripts with `env` added to (or, as undefined, removed from) this process's. */
export function runScript(script: string, args: readonly string[], env: Record<string, string | undefined>): ScriptRun {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) merged[k] = v;
  const r = spawnSync("bash", [script, ...args], { encoding: "utf8", env: merged, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

/** The coreutils the scripts use, for minimalPath. */
export const SCRIPT_TOOLS = [
  "node",
  "dirname",
  "basename",
  "head",
  "cat",
  "mkdir",
  "mktemp",
  "ln",
  "readlink",
  "date",
  "sleep",
  "chmod",
  "rm",
  "mv",
  "id",
  "uname",
  "grep",
  "sed",
  "tail",
];
