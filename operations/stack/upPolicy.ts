/**
 * The policy pack's rules around `db-platform up`.
 *
 * Every policy of the pack is a stack policy (isolation depends on how resources relate). In an
 * update the engine runs stack policies only once everything has been applied (its stack analysis
 * follows the last step), yet it asks the pack to remediate and to analyze each resource on the
 * way: two round trips per resource on the engine's serial path that no policy of ours answers,
 * a third of a 50-service `up` with nothing to change (docs/apply-speed.md). So `up` evaluates
 * the pack's own rules itself, with the stack's policy config, at the two points that matter:
 *
 * - before anything is applied, on the program run under the SDK's mocks (what `db-platform
 *   policy check --stack` evaluates): a mandatory violation refuses the `up` with nothing changed,
 *   which the engine's stack analysis never did;
 * - after the engine applied, on the state it saved (ids, ARNs and other values only known then):
 *   what the engine's stack analysis saw; a mandatory violation fails the `up`, as it did.
 *
 * `preview` keeps the pack inside the engine: the gate CI runs on every pull request.
 */
import { evaluate, resolveConfig, type Violation } from "../../policies/engine/evaluate";
import { fromStateDocument, fromSynth } from "../../policies/engine/sources";
import { formatViolations, policyConfigFor } from "./policyCheck";
import { readConfigFile, stackConfigPath } from "./stackConfig";
import { synth } from "./synth";

/** A mandatory violation: before the engine ran (`applied` false: nothing changed) or in the state it saved. */
export class PolicyViolationError extends Error {
  constructor(
    readonly violations: readonly Violation[],
    readonly applied: boolean,
  ) {
    super(
      applied
        ? `the stack as applied violates the policy pack:\n${formatViolations(violations)}`
        : `refused by the policy pack, nothing was applied:\n${formatViolations(violations)}`,
    );
  }
}

export interface StackPolicyTarget {
  readonly stack: string;
  readonly project: string;
  readonly projectDir: string;
}

/** The stack's policy config as the engine gets it. */
const policyConfig = (t: StackPolicyTarget) => policyConfigFor(t.stack, undefined, t.projectDir);

/** The rules on the stack file's program under the SDK's mocks: what `up` is about to apply. */
export async function violationsBeforeUp(t: StackPolicyTarget): Promise<Violation[]> {
  const resolved = resolveConfig(policyConfig(t));
  const config = readConfigFile(stackConfigPath(t.stack, t.projectDir));
  return evaluate(fromSynth(await synth(config, t.project, t.stack)), resolved);
}

/** The rules on a `pulumi stack export` document: what the engine applied. */
export function violationsOfState(t: StackPolicyTarget, state: unknown): Violation[] {
  return evaluate(fromStateDocument(state), resolveConfig(policyConfig(t)));
}

/** The violations of `after` not already reported in `before` (advisory ones are printed once); mandatory ones always. */
export function notYetSaid(after: readonly Violation[], before: readonly Violation[]): Violation[] {
  const key = (v: Violation) => `${v.policy}|${v.urn}|${v.message}`;
  const said = new Set(before.map(key));
  return after.filter((v) => v.enforcement === "mandatory" || !said.has(key(v)));
}

/** Advisory violations are printed; a mandatory one throws. */
export function enforce(violations: readonly Violation[], applied: boolean, say: (s: string) => void): void {
  if (violations.some((v) => v.enforcement === "mandatory")) throw new PolicyViolationError(violations, applied);
  if (violations.length > 0) say(`policy pack (advisory):\n${formatViolations(violations)}`);
}
