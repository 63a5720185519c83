/**
 * The neutral view the rules read: the same for `pulumi preview` (PolicyResource), a
 * `pulumi stack export` document and `db-platform synth --json` output, so every route runs
 * the same rules with the same messages.
 */

import type { StackGraph } from "./graph";

/** A secret value whose content the rules never see. */
export const SECRET = "[secret]";
/** A value the engine does not know yet (preview). */
export const UNKNOWN = "[unknown]";

export interface PolicyInputResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent: string | null;
  /** URN of the provider resource, or null for a default provider. */
  readonly provider: string | null;
  readonly props: Readonly<Record<string, unknown>>;
  /** Pulumi's `protect` option: the engine refuses to delete or replace the resource. Absent: not protected. */
  readonly protect?: boolean;
}

export interface StackInput {
  readonly resources: readonly PolicyInputResource[];
  /** False in `pulumi preview`, where @pulumi/policy unwraps secrets before rules see them. */
  readonly secretsVisible: boolean;
}

export interface Finding {
  readonly urn: string;
  readonly message: string;
  /** The rule could not decide because a value is unknown (preview); reported as advisory. */
  readonly unverifiable?: boolean;
}

export type EnforcementLevel = "advisory" | "mandatory" | "disabled";

export interface ConfigProperty {
  readonly type: "number" | "string" | "boolean" | "array";
  readonly description: string;
  readonly default: unknown;
  readonly items?: { readonly type: string };
}

export interface Rule {
  /** kebab-case */
  readonly name: string;
  /** One line. */
  readonly description: string;
  readonly enforcementLevel: "advisory" | "mandatory";
  /** Isolation rules: mandatory in every stack; config may not lower them. */
  readonly alwaysMandatory?: boolean;
  readonly configSchema?: Readonly<Record<string, ConfigProperty>>;
  check(graph: StackGraph, config: Readonly<Record<string, unknown>>): Finding[];
}

export const isUnknown = (v: unknown): boolean => v === UNKNOWN;
export const isSecret = (v: unknown): boolean => v === SECRET;
