/**
 * `db-platform policy check`: the policy pack's rules on a `pulumi stack export` document, on
 * `synth --json` output, or on a stack synthesized offline, with the stack's policy config.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { evaluate, type PolicyConfigFile, resolveConfig, type Violation } from "../../policies/engine/evaluate";
import { fromStateDocument, fromSynth } from "../../policies/engine/sources";
import { validateConfig, formatProblem } from "../../components/spec";
import { ConfigFileError, findProjectDir, readConfigFile } from "./stackConfig";
import { synth } from "./synth";

export interface PolicyCheckOptions {
  readonly state?: string;
  readonly stack?: string;
  readonly config?: string;
  readonly policyConfig?: string;
  readonly json?: boolean;
}

export function readJson(file: string): unknown {
  if (!fs.existsSync(file)) throw new ConfigFileError(`${file}: no such file`);
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigFileError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** The stack named in the first URN of a state document. */
function stackFromUrns(urns: string[]): string | undefined {
  return urns.map((u) => /^urn:pulumi:([^:]+)::/.exec(u)?.[1]).find(Boolean);
}

/** A stack's policy config file in a project, policies/config/<stack>.json, when it exists: what the engine gets too. */
export function stackPolicyConfigFile(projectDir: string, stack: string): string | undefined {
  const file = path.join(projectDir, "policies", "config", `${stack}.json`);
  return fs.existsSync(file) ? file : undefined;
}

/** `--policy-config`, else the stack's policy config file in `projectDir` (default: the project found from here), else rule defaults. */
export function policyConfigFor(stack: string | undefined, explicit?: string, projectDir?: string): PolicyConfigFile {
  if (explicit) return readJson(explicit) as PolicyConfigFile;
  if (!stack) return {};
  let dir: string;
  try {
    dir = projectDir ?? findProjectDir();
  } catch {
    return {};
  }
  const file = stackPolicyConfigFile(dir, stack);
  return file ? (readJson(file) as PolicyConfigFile) : {};
}

export type PolicyCheckResult = { ok: true; violations: Violation[] } | { ok: false; problems: string[] };

export async function policyCheck(
  opts: PolicyCheckOptions,
  resolveStack: (o: { stack?: string; config?: string }) => { file: string; stack: string; project: string },
): Promise<PolicyCheckResult> {
  let input;
  let stack = opts.stack;
  if (opts.state) {
    input = fromStateDocument(readJson(opts.state));
    stack ??= stackFromUrns(input.resources.map((r) => r.urn));
  } else {
    const target = resolveStack(opts);
    const config = readConfigFile(target.file);
    const valid = validateConfig(config);
    if (!valid.ok) return { ok: false, problems: valid.problems.map(formatProblem) };
    input = fromSynth(await synth(config, target.project, target.stack));
    stack = target.stack;
  }
  return { ok: true, violations: evaluate(input, resolveConfig(policyConfigFor(stack, opts.policyConfig))) };
}

export function formatViolations(violations: readonly Violation[]): string {
  const lines = violations.map((v) => `${v.enforcement.padEnd(9)} ${v.policy}\n          ${v.urn}\n          ${v.message}\n`);
  const mandatory = violations.filter((v) => v.enforcement === "mandatory").length;
  lines.push(`${mandatory} mandatory, ${violations.length - mandatory} advisory violation(s)\n`);
  return lines.join("");
}
