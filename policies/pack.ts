/**
 * The pack's policies: each rule as a @pulumi/policy stack policy over the whole resource
 * graph, because isolation depends on how resources relate (which provider, which component,
 * which role) rather than on one resource alone.
 */
import { type ReportViolation, type StackValidationArgs, type StackValidationPolicy } from "@pulumi/policy";
import { evaluate } from "./engine/evaluate";
import { fromPreview, type PreviewResource } from "./engine/sources";
import type { Rule } from "./engine/types";
import { ALL_RULES } from "./rules";

function configSchema(rule: Rule): StackValidationPolicy["configSchema"] {
  if (!rule.configSchema) return undefined;
  return {
    properties: Object.fromEntries(Object.entries(rule.configSchema).map(([k, v]) => [k, { ...v }])),
  } as StackValidationPolicy["configSchema"];
}

export function toPolicy(rule: Rule): StackValidationPolicy {
  return {
    name: rule.name,
    description: rule.description,
    enforcementLevel: rule.enforcementLevel,
    configSchema: configSchema(rule),
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
      const input = fromPreview(args.resources as unknown as PreviewResource[]);
      const config = {
        ...Object.fromEntries(Object.entries(rule.configSchema ?? {}).map(([k, v]) => [k, v.default])),
        ...(args.getConfig<Record<string, unknown>>() ?? {}),
      };
      for (const v of evaluate(input, [{ rule, enforcement: "mandatory", config }])) {
        if (v.enforcement === "mandatory") report(v.message, v.urn);
      }
    },
  };
}

/** Values unknown during preview make a rule unverifiable: reported here, as advisory, never passed silently. */
export const unverifiable: StackValidationPolicy = {
  name: "unverifiable-at-preview",
  description: "Lists checks that depend on values only known after deployment; they are enforced at `pulumi up`.",
  enforcementLevel: "advisory",
  validateStack: (args, report) => {
    const input = fromPreview(args.resources as unknown as PreviewResource[]);
    const resolved = ALL_RULES.map((rule) => ({
      rule,
      enforcement: "mandatory" as const,
      config: Object.fromEntries(Object.entries(rule.configSchema ?? {}).map(([k, v]) => [k, v.default])),
    }));
    for (const v of evaluate(input, resolved)) if (v.enforcement === "advisory") report(`${v.policy}: ${v.message}`, v.urn);
  },
};

export const policies: StackValidationPolicy[] = [...ALL_RULES.map(toPolicy), unverifiable];
