/**
 * `db-platform up` and the policy pack's rules (operations/stack/upPolicy.ts), through the real
 * engine and plugins on a local stack whose policy config makes an advisory rule mandatory (a
 * service with `allowDataLoss`, refused by `service-data-protected`).
 *
 * First what the engine itself does with the pack attached to its update — what `up` did before:
 * the pack's stack policies run only after the update has applied everything, so the update fails
 * with the service's database and roles already on the server. Then `db-platform up`, which
 * evaluates the same rules with the same policy config before anything is applied: refused, exit
 * 1, the policy and the resource named, nothing created on the server and nothing in the state.
 * Without the stricter policy config the same stack applies, the advisory finding printed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProgram } from "../../components/program";
import { configFromPulumi } from "../../components/spec/pulumiConfig";
import { DEV_PASSPHRASE, engineEnv } from "../../operations/local/local";
import { policyPackArgs } from "../../operations/stack/stackApply";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { type LocalStack, localStack } from "../helpers/localStack";
import { ROOT } from "../helpers/synth";

const STACK = "uppolicytest";
const POLICY_CONFIG = path.join(ROOT, "policies", "config", `${STACK}.json`);
const env = { PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE };
let fixture: LocalStack;

/** The service's databases and roles on the server. */
async function onServer(): Promise<string[]> {
  const c = await fixture.server.superuserClient();
  try {
    const { rows } = await c.query(
      "SELECT datname AS name FROM pg_database WHERE datname LIKE 'lossy%' UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'lossy%' ORDER BY 1",
    );
    return rows.map((r) => String(r.name));
  } finally {
    await c.end();
  }
}

/** The resources the engine's state holds for the stack. */
async function stateResources(): Promise<number> {
  const ws = await LocalWorkspace.create({ workDir: ROOT, envVars: engineEnv(ROOT, STACK) });
  const doc = await ws.exportStack(STACK);
  return ((doc.deployment as { resources?: unknown[] }).resources ?? []).length;
}

describe("db-platform up and the policy pack's rules", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    fixture = await localStack(STACK, { lossy: { server: "local", allowDataLoss: true } });
    fs.writeFileSync(POLICY_CONFIG, JSON.stringify({ "service-data-protected": "mandatory" }));
    const start = runCli(["local", "start", "--stack", STACK], env);
    expect(start.code, start.stderr).toBe(0);
  });

  afterAll(async () => {
    fs.rmSync(POLICY_CONFIG, { force: true });
    await fixture?.cleanup();
  });

  it("the engine with the pack attached to its update: the violation fails the update after it applied", async () => {
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: STACK, projectName: "db-platform", program: async () => ({ environment: runProgram(configFromPulumi()).environment }) },
      { workDir: ROOT, envVars: engineEnv(ROOT, STACK) },
    );
    await expect(stack.up(policyPackArgs(ROOT, STACK))).rejects.toThrow(/service-data-protected[\s\S]*lossy/);
    // Created before the stack's policies ran.
    expect(await onServer()).toEqual(["lossy_app", "lossy_db", "lossy_migrator", "lossy_owner", "lossy_readonly"]);
    expect(await stateResources()).toBeGreaterThan(20);
    await stack.destroy();
    expect(await onServer()).toEqual([]);
  }, 300_000);

  it("db-platform up refuses before anything is applied, naming the policy and the resource", async () => {
    const r = runCli(["up", "--stack", STACK], env);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    expect(r.stderr).toContain("db-platform: refused by the policy pack, nothing was applied:\nmandatory service-data-protected\n");
    expect(r.stderr).toMatch(/database "lossy_db" of service lossy is not protected[^\n]*\(services\.lossy\.allowDataLoss\)/);
    expect(r.stderr).not.toMatch(/up: \d+ done/);
    expect(await onServer()).toEqual([]);
    expect(await stateResources()).toBe(0);
  }, 300_000);

  it("applies the same stack under the default policy config, printing the advisory finding", async () => {
    fs.rmSync(POLICY_CONFIG);
    const r = runCli(["up", "--stack", STACK], env);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/policy pack \(advisory\):\nadvisory {2}service-data-protected\n[\s\S]*lossy-db/);
    // Said before the engine ran; the same finding in the state after is not repeated.
    expect(r.stderr.match(/policy pack \(advisory\)/g)).toHaveLength(1);
    expect(await onServer()).toEqual(["lossy_app", "lossy_db", "lossy_migrator", "lossy_owner", "lossy_readonly"]);
    const again = runCli(["up", "--stack", STACK], env);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toMatch(/no changes/);
  }, 300_000);
});
