/**
 * Policy test harness: start from a synthesized, compliant stack (the happy path), change one
 * thing, and evaluate with the config defaults applied exactly as the CLI and pack apply them.
 */
import { evaluate, type PolicyConfigFile, resolveConfig, type Violation } from "../../policies/engine/evaluate";
import { fromSynth } from "../../policies/engine/sources";
import type { PolicyInputResource } from "../../policies/engine/types";
import { synthFile } from "./synth";

export type Mutable = PolicyInputResource & { props: Record<string, unknown> };

/** A deep copy of a synthesized stack file's resources, safe to mutate. */
export async function happyPath(file: string): Promise<Mutable[]> {
  return structuredClone((await synthFile(file)).all) as Mutable[];
}

export function check(resources: readonly PolicyInputResource[], config: PolicyConfigFile = {}): Violation[] {
  return evaluate(fromSynth(resources), resolveConfig(config));
}

export function find(resources: readonly Mutable[], type: string, name: string): Mutable {
  const r = resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`no ${type} named ${name}`);
  return r;
}

/** A resource added outside the platform's components, like a raw `new postgresql.Grant` in index.ts. */
export function raw(type: string, name: string, provider: string | null, props: Record<string, unknown>): Mutable {
  return { type, name, urn: `urn:pulumi:test::db-platform::${type}::${name}`, parent: null, provider, props };
}

/** [policy, enforcement, message] of each violation, for exact assertions. */
export const summary = (vs: readonly Violation[]) => vs.map((v) => [v.policy, v.enforcement, v.message]);
