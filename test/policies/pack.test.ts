/**
 * The @pulumi/policy adapter: the same rules run inside `pulumi preview`, where resources come
 * wrapped in @pulumi/policy's unknown-checking proxy and secrets are already unwrapped.
 */
import * as policyProxy from "@pulumi/policy/proxy";
import type { PolicyResource, StackValidationArgs } from "@pulumi/policy";
import { beforeAll, describe, expect, it } from "vitest";
import { policies } from "../../policies/pack";
import { ALL_RULES } from "../../policies/rules";
import { find, happyPath, type Mutable, raw } from "../helpers/policy";
import { T } from "../helpers/synth";

// The same proxy and sentinel @pulumi/policy uses during preview (internal in its typings).
const { unknownCheckingProxy, unknownStringValue } = policyProxy as unknown as {
  unknownCheckingProxy<T>(o: T): T;
  unknownStringValue: string;
};

let base: Mutable[];
beforeAll(async () => {
  base = await happyPath("Pulumi.dev.yaml");
});

/** Shape synth resources the way @pulumi/policy hands them to stack policies. */
function asPolicyResources(rs: readonly Mutable[]): PolicyResource[] {
  const byUrn = new Map<string, PolicyResource>();
  const out = rs.map((r) => {
    const pr = {
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: unknownCheckingProxy(r.props),
      opts: { protect: r.protect === true, ignoreChanges: [], aliases: [], additionalSecretOutputs: [] },
      dependencies: [],
      propertyDependencies: {},
    } as unknown as PolicyResource;
    byUrn.set(r.urn, pr);
    return pr;
  });
  rs.forEach((r, i) => {
    const pr = out[i] as { parent?: PolicyResource; provider?: { urn: string } };
    if (r.parent) pr.parent = byUrn.get(r.parent);
    if (r.provider) pr.provider = { urn: r.provider };
  });
  return out;
}

async function preview(rs: readonly Mutable[], config: Record<string, Record<string, unknown>> = {}) {
  const reports: Array<[string, string]> = [];
  for (const p of policies) {
    const args = {
      resources: asPolicyResources(rs),
      getConfig: () => config[p.name] ?? {},
      stackTags: new Map(),
      notApplicable: () => {
        throw new Error("not applicable");
      },
    } as unknown as StackValidationArgs;
    await p.validateStack(args, (message: string) => reports.push([p.name, message]));
  }
  return reports;
}

describe("policy pack adapter", () => {
  it("has one stack policy per rule, with kebab-case names, plus the advisory unverifiable list", () => {
    expect(policies.map((p) => p.name)).toEqual([...ALL_RULES.map((r) => r.name), "unverifiable-at-preview"]);
    for (const p of policies) expect(p.name).toMatch(/^[a-z]+(-[a-z0-9]+)*$/);
    expect(policies.find((p) => p.name === "rds-backup-retention")?.configSchema).toEqual({
      properties: { minimumDays: { type: "number", description: "Minimum backupRetentionPeriod in days.", default: 7 } },
    });
  });

  it("reports nothing on the dev stack", async () => {
    expect(await preview(base)).toEqual([]);
  });

  it("blocks a cross-database grant with the same message as policy check", async () => {
    const provider = find(base, T.pgProvider, "local-postgresql").urn;
    const escape = raw(T.grant, "x", provider, {
      role: "orders_app",
      database: "inventory_db",
      objectType: "database",
      privileges: ["CONNECT"],
    });
    expect(await preview([...base, escape])).toEqual([
      [
        "no-cross-service-privileges",
        'role "orders_app" (service orders) must not be granted CONNECT on database "inventory_db" of service inventory on server local',
      ],
    ]);
  });

  it("lists unknown values as unverifiable instead of failing or passing the mandatory rule", async () => {
    const provider = find(base, T.pgProvider, "local-postgresql").urn;
    const pending = raw(T.grant, "pending", provider, {
      role: unknownStringValue,
      database: "inventory_db",
      objectType: "database",
      privileges: ["CONNECT"],
    });
    expect(await preview([...base, pending])).toEqual([
      [
        "unverifiable-at-preview",
        "no-cross-service-privileges: pending: cannot verify isolation during preview (role, database or schema is unknown)",
      ],
      ["unverifiable-at-preview", "no-unmanaged-grantees: pending: cannot verify the grantee during preview (role is unknown)"],
    ]);
  });

  it("applies config defaults under the stack's config", async () => {
    const rs = await happyPath("Pulumi.prod.yaml");
    find(rs, T.rds, "main-instance").props.backupRetentionPeriod = 10;
    expect(await preview(rs)).toEqual([]);
    expect(await preview(rs, { "rds-backup-retention": { minimumDays: 14 } })).toEqual([
      ["rds-backup-retention", 'RDS instance "prod-main" must keep automated backups at least 14 days (backupRetentionPeriod is 10)'],
    ]);
  });
});
