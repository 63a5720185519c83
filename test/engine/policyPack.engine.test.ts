/**
 * The policy pack inside the real Pulumi engine (the CLI built by scripts/engine/bootstrap.sh):
 * the engine loads the TypeScript pack through its Node.js analyzer launcher, validates the
 * per-stack policy config against the pack's schemas, and runs it on a preview and an update.
 * Run with `npm run test:engine` (it bootstraps the engine first).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/synth";

const POLICIES = path.join(ROOT, "policies");

class Probe extends pulumi.ComponentResource {
  constructor(name: string) {
    super("db-platform:test:Probe", name, {});
    this.registerOutputs({});
  }
}
let work: string;
let stack: Stack;

beforeAll(async () => {
  if (!process.env.PATH?.includes("pulumi-v"))
    throw new Error("run through `npm run test:engine`, which puts the bootstrapped engine on PATH");
  work = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-engine-"));
  fs.mkdirSync(path.join(work, "state"));
  stack = await LocalWorkspace.createOrSelectStack(
    {
      stackName: "engine-test",
      projectName: "db-platform-engine-test",
      // Component resources only: the engine needs no provider plugin for them.
      program: async () => {
        new Probe("probe");
        return { probe: "ok" };
      },
    },
    {
      workDir: work,
      envVars: {
        PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: "engine-test",
        PULUMI_HOME: path.join(work, "home"),
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_UPDATE_CHECK: "true",
      },
    },
  );
}, 120_000);

afterAll(async () => {
  await stack?.workspace.removeStack("engine-test", { force: true }).catch(() => undefined);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe("the policy pack in the real engine", () => {
  it("loads and passes on preview with the prod policy config", async () => {
    let out = "";
    const result = await stack.preview({
      policyPacks: [POLICIES],
      policyPackConfigs: [path.join(POLICIES, "config/prod.json")],
      onOutput: (s) => (out += s),
    });
    expect(result.changeSummary).toEqual({ create: 2 });
    expect(out).toContain("db-platform@v0.1.0");
  }, 180_000);

  it("runs on update too", async () => {
    const result = await stack.up({ policyPacks: [POLICIES], policyPackConfigs: [path.join(POLICIES, "config/dev.json")] });
    expect(result.summary.result).toBe("succeeded");
    expect(result.outputs.probe.value).toBe("ok");
  }, 180_000);

  it("refuses a policy config that does not match the pack's schema", async () => {
    const bad = path.join(work, "bad-policy-config.json");
    fs.writeFileSync(bad, JSON.stringify({ "rds-backup-retention": { minimumDays: "fourteen" } }));
    await expect(stack.preview({ policyPacks: [POLICIES], policyPackConfigs: [bad] })).rejects.toThrow(/minimumDays/);
  }, 180_000);
});
