/**
 * Runs the rules over a stack with the policy config applied the way the Pulumi engine applies
 * it (`all`, then per-policy enforcement levels and properties, schema defaults underneath).
 */
import { ALL_RULES } from "../rules";
import { StackGraph } from "./graph";
import type { EnforcementLevel, Rule, StackInput } from "./types";

export interface Violation {
  readonly policy: string;
  readonly urn: string;
  readonly message: string;
  readonly enforcement: "advisory" | "mandatory";
}

/** The policy config file format of `pulumi preview --policy-pack-config`. */
export type PolicyConfigFile = Record<string, EnforcementLevel | ({ enforcementLevel?: EnforcementLevel } & Record<string, unknown>)>;

export class PolicyConfigError extends Error {}

const LEVELS: ReadonlySet<string> = new Set(["advisory", "mandatory", "disabled"]);

export interface ResolvedRule {
  readonly rule: Rule;
  readonly enforcement: EnforcementLevel;
  readonly config: Readonly<Record<string, unknown>>;
}

/** Apply a policy config file to the rules; refuses unknown policies and lowered isolation rules. */
export function resolveConfig(file: PolicyConfigFile = {}, rules: readonly Rule[] = ALL_RULES): ResolvedRule[] {
  const names = new Set(rules.map((r) => r.name));
  const problems: string[] = [];
  for (const [k, v] of Object.entries(file)) {
    if (k !== "all" && !names.has(k)) problems.push(`${k}: unknown policy`);
    const level = typeof v === "string" ? v : v?.enforcementLevel;
    if (level !== undefined && !LEVELS.has(level))
      problems.push(`${k}: enforcement level must be advisory, mandatory or disabled (found "${String(level)}")`);
  }
  const all = typeof file.all === "string" ? file.all : file.all?.enforcementLevel;
  const resolved = rules.map((rule) => {
    const entry = file[rule.name];
    const level = (typeof entry === "string" ? entry : entry?.enforcementLevel) ?? all ?? rule.enforcementLevel;
    if (rule.alwaysMandatory && level !== "mandatory" && (entry !== undefined || all !== undefined)) {
      problems.push(`${rule.name}: isolation policies are mandatory in every stack (found "${level}")`);
    }
    const config: Record<string, unknown> = {};
    for (const [prop, schema] of Object.entries(rule.configSchema ?? {})) config[prop] = schema.default;
    if (entry && typeof entry === "object") {
      for (const [prop, value] of Object.entries(entry)) {
        if (prop === "enforcementLevel") continue;
        if (!rule.configSchema?.[prop]) problems.push(`${rule.name}.${prop}: unknown property`);
        config[prop] = value;
      }
    }
    return { rule, enforcement: rule.alwaysMandatory ? "mandatory" : level, config };
  });
  if (problems.length > 0) throw new PolicyConfigError(problems.join("\n"));
  return resolved;
}

/** Every violation, mandatory first; unverifiable findings are advisory. */
export function evaluate(input: StackInput, resolved: readonly ResolvedRule[] = resolveConfig()): Violation[] {
  const graph = new StackGraph(input);
  const out: Violation[] = [];
  for (const { rule, enforcement, config } of resolved) {
    if (enforcement === "disabled") continue;
    for (const f of rule.check(graph, config)) {
      out.push({ policy: rule.name, urn: f.urn, message: f.message, enforcement: f.unverifiable ? "advisory" : enforcement });
    }
  }
  return out.sort((a, b) => (a.enforcement === b.enforcement ? 0 : a.enforcement === "mandatory" ? -1 : 1));
}
