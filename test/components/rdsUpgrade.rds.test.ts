/**
 * An RDS major upgrade of the prod stack's `main` (a same-region reader main-ro-1, a
 * cross-region replica main-dr) phase by phase, as `db-platform upgrade apply` writes
 * `servers.main.upgrade` and applies each: every input that a phase changes, asserted exactly,
 * everything else as in the steady state, and the policy pack clean in every phase.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../components/spec";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synthProgram } from "../../operations/stack/synth";
import { evaluate, resolveConfig } from "../../policies/engine/evaluate";
import { fromSynth } from "../../policies/engine/sources";
import { Resources, ROOT, T } from "../helpers/synth";

type Phase = "unprotect-replicas" | "detach-replicas" | "upgrade";

function prodWith(version: string, upgrade?: { from: string; phase: Phase }): ConfigInput {
  const input = readConfigFile(`${ROOT}/Pulumi.prod.yaml`);
  const servers = structuredClone(input.values.servers) as Record<string, Record<string, unknown>>;
  servers.main.version = version;
  if (upgrade) servers.main.upgrade = upgrade;
  return { ...input, values: { ...input.values, servers } };
}

const synth = async (input: ConfigInput) => new Resources((await synthProgram(input, "db-platform", "prod")).resources);

let at16: Resources;
let at17: Resources;
const phases: Partial<Record<Phase, Resources>> = {};

beforeAll(async () => {
  at16 = await synth(prodWith("16"));
  at17 = await synth(prodWith("17"));
  for (const phase of ["unprotect-replicas", "detach-replicas", "upgrade"] as const)
    phases[phase] = await synth(prodWith("17", { from: "16", phase }));
});

const at = (p: Phase) => phases[p] as Resources;
const instance = (rs: Resources, name = "main-instance") => rs.one(T.rds, name).props;
const groups = (rs: Resources) =>
  rs
    .ofType(T.parameterGroup)
    .filter((g) => String(g.props.name).startsWith("prod-main"))
    .map((g) => [g.name, g.props.name, g.props.family])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
const UPGRADE_TAGS = (phase: Phase) => ({ "db-platform:upgrade": "16 to 17", "db-platform:upgrade-phase": phase });
const without = (props: Record<string, unknown>, ...keys: string[]) =>
  Object.fromEntries(Object.entries(props).filter(([k]) => !keys.includes(k)));
const CHANGED = ["engineVersion", "parameterGroupName", "allowMajorVersionUpgrade", "applyImmediately", "tags", "deletionProtection"];

describe("RDS major upgrade of main, 16 → 17, phase by phase", () => {
  it("names a parameter group per family in the steady state, before and after", () => {
    expect(groups(at16)).toEqual([
      ["main-params-postgres16", "prod-main-postgres16", "postgres16"],
      ["main-replica-main-dr-params-postgres16", "prod-main-dr-postgres16", "postgres16"],
      ["main-replica-main-ro-1-params-postgres16", "prod-main-ro-1-postgres16", "postgres16"],
    ]);
    expect(groups(at17)).toEqual([
      ["main-params-postgres17", "prod-main-postgres17", "postgres17"],
      ["main-replica-main-dr-params-postgres17", "prod-main-dr-postgres17", "postgres17"],
      ["main-replica-main-ro-1-params-postgres17", "prod-main-ro-1-postgres17", "postgres17"],
    ]);
    expect(instance(at16)).toMatchObject({ engineVersion: "16", allowMajorVersionUpgrade: false, applyImmediately: false });
    expect(instance(at17)).toMatchObject({ engineVersion: "17", allowMajorVersionUpgrade: false, applyImmediately: false });
  });

  it("unprotect-replicas: both families' groups exist; only main-dr's deletion protection is lifted", () => {
    const rs = at("unprotect-replicas");
    expect(groups(rs).map((g) => g[1])).toEqual([
      "prod-main-postgres16",
      "prod-main-postgres17",
      "prod-main-dr-postgres16",
      "prod-main-dr-postgres17",
      "prod-main-ro-1-postgres16",
      "prod-main-ro-1-postgres17",
    ]);
    expect(rs.one(T.parameterGroup, "main-params-postgres17").props.parameters).toEqual(
      at17.one(T.parameterGroup, "main-params-postgres17").props.parameters,
    );
    expect(instance(rs)).toEqual({
      ...instance(at16),
      tags: { ...(instance(at16).tags as object), ...UPGRADE_TAGS("unprotect-replicas") },
    });
    expect(instance(rs, "main-replica-main-dr")).toMatchObject({
      deletionProtection: false,
      parameterGroupName: "prod-main-dr-postgres16",
    });
    expect(instance(rs, "main-replica-main-ro-1")).toMatchObject({
      deletionProtection: true,
      parameterGroupName: "prod-main-ro-1-postgres16",
    });
  });

  it("detach-replicas: main-dr's instance, group and lag alarm leave the stack; its region's key, network and topic stay", () => {
    const rs = at("detach-replicas");
    expect(
      rs
        .ofType(T.rds)
        .map((r) => r.name)
        .sort(),
    ).toEqual(["main-instance", "main-replica-main-ro-1", "studio-instance"]);
    expect(rs.all.filter((r) => r.name.startsWith("main-replica-main-dr")).map((r) => r.name)).toEqual(
      at16.all
        .filter((r) => r.name.startsWith("main-replica-main-dr"))
        .map((r) => r.name)
        .filter((n) => !["main-replica-main-dr", "main-replica-main-dr-lag", "main-replica-main-dr-params-postgres16"].includes(n)),
    );
    expect(instance(rs)).toMatchObject({
      engineVersion: "16",
      parameterGroupName: "prod-main-postgres16",
      allowMajorVersionUpgrade: false,
    });
  });

  it("upgrade: the primary's one update to 17 with the new family's group, allowed and applied now; in-region replicas follow it", () => {
    const rs = at("upgrade");
    const props = instance(rs);
    expect(without(props, ...CHANGED)).toEqual(without(instance(at16), ...CHANGED));
    expect(props).toMatchObject({
      engineVersion: "17",
      parameterGroupName: "prod-main-postgres17",
      allowMajorVersionUpgrade: true,
      applyImmediately: true,
      deletionProtection: true,
      tags: { "db-platform:environment": "prod", "db-platform:server": "main", "managed-by": "db-platform", ...UPGRADE_TAGS("upgrade") },
    });
    // RDS upgrades in-region replicas with their primary: the replica's inputs stay on the old group.
    expect(instance(rs, "main-replica-main-ro-1")).toMatchObject({
      parameterGroupName: "prod-main-ro-1-postgres16",
      applyImmediately: false,
      deletionProtection: true,
    });
    expect(instance(rs, "main-replica-main-ro-1").engineVersion).toBeUndefined();
    expect(rs.ofType(T.rds).map((r) => r.name)).not.toContain("main-replica-main-dr");
    // The other server is untouched by main's upgrade.
    expect(instance(rs, "studio-instance")).toEqual(instance(at16, "studio-instance"));
  });

  it("done (the block removed): the flags off, replicas on the new groups, main-dr created again from the upgraded primary", () => {
    expect(without(instance(at17), "engineVersion", "parameterGroupName")).toEqual(
      without(instance(at16), "engineVersion", "parameterGroupName"),
    );
    expect(instance(at17, "main-replica-main-ro-1").parameterGroupName).toBe("prod-main-ro-1-postgres17");
    expect(instance(at17, "main-replica-main-dr")).toMatchObject({
      parameterGroupName: "prod-main-dr-postgres17",
      deletionProtection: true,
      replicateSourceDb: "arn:aws:rds:eu-central-1:000000000000:db:prod-main",
    });
  });

  it("the policy pack passes every phase with prod's config, and refuses the flags without the upgrade's tags", () => {
    const config = resolveConfig(JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8")));
    for (const rs of [at16, ...Object.values(phases), at17]) expect(evaluate(fromSynth(rs!.all), config).map((v) => v.message)).toEqual([]);
    const bare = structuredClone(at("upgrade").all);
    const main = bare.find((r) => r.name === "main-instance")!;
    main.props.tags = { "db-platform:environment": "prod", "db-platform:server": "main", "managed-by": "db-platform" };
    const replica = bare.find((r) => r.name === "main-replica-main-ro-1")!;
    replica.props.parameterGroupName = "prod-main-ro-1-postgres17";
    expect(evaluate(fromSynth(bare), config).map((v) => [v.policy, v.message])).toEqual([
      [
        "rds-major-upgrade-guarded",
        'RDS instance "prod-main" sets allowMajorVersionUpgrade and applyImmediately outside a major upgrade (only db-platform upgrade\'s own update, tagged db-platform:upgrade-phase=upgrade, may)',
      ],
    ]);
    const inRegion = structuredClone(at("unprotect-replicas").all);
    inRegion.find((r) => r.name === "main-replica-main-ro-1")!.props.deletionProtection = false;
    expect(evaluate(fromSynth(inRegion), config).map((v) => v.policy)).toEqual(["rds-production-protection", "rds-replica-consistent"]);
    const mismatched = structuredClone(at16.all);
    mismatched.find((r) => r.name === "main-instance")!.props.engineVersion = "17";
    expect(evaluate(fromSynth(mismatched), config).map((v) => v.message)).toEqual([
      'RDS instance "prod-main" runs PostgreSQL 17 with parameter group "prod-main-postgres16" of family postgres16',
    ]);
  });
});
