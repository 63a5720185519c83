/**
 * The policy pack's rules around `db-platform up` (operations/stack/upPolicy.ts), without a server:
 * the stack file's program before anything is applied, with the stack's own policy config, and a
 * state as the engine saves it after. The engine path is test/engine/upPolicy.engine.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enforce, notYetSaid, PolicyViolationError, violationsBeforeUp, violationsOfState } from "../../operations/stack/upPolicy";
import { synth } from "../../operations/stack/synth";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { ROOT } from "../helpers/synth";

const STACK = "dev";
let dir: string;
const target = () => ({ stack: STACK, project: "db-platform", projectDir: dir });

/** A project folder of the test's own: the dev stack file, with `edit` applied to its services. */
function project(edit: (services: Record<string, Record<string, unknown>>) => void, policyConfig?: unknown): void {
  const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
  edit(doc.config["db-platform:services"]);
  fs.writeFileSync(path.join(dir, `Pulumi.${STACK}.yaml`), stringify(doc));
  const config = path.join(dir, "policies", "config", `${STACK}.json`);
  fs.rmSync(config, { force: true });
  if (policyConfig !== undefined) fs.writeFileSync(config, JSON.stringify(policyConfig));
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-uppolicy-"));
  fs.mkdirSync(path.join(dir, "policies", "config"), { recursive: true });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("before up: the stack file's program under the SDK's mocks", () => {
  it("passes the dev stack as it is", async () => {
    project(() => undefined);
    expect(await violationsBeforeUp(target())).toEqual([]);
  });

  it("applies the stack's policy config: an advisory rule made mandatory refuses, naming policy, resource and fix", async () => {
    project((s) => (s.orders.allowDataLoss = true), { "service-data-protected": "mandatory" });
    const violations = await violationsBeforeUp(target());
    // orders' database and its schema, each with the config path that relaxed it.
    expect(violations).toEqual(
      ["orders-db", "orders-schema-orders"].map((name) => ({
        policy: "service-data-protected",
        urn: expect.stringMatching(new RegExp(`::${name}$`)),
        message: expect.stringContaining("(services.orders.allowDataLoss)"),
        enforcement: "mandatory",
      })),
    );
    const said: string[] = [];
    let error: unknown;
    try {
      enforce(violations, false, (s) => said.push(s));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyViolationError);
    expect((error as PolicyViolationError).applied).toBe(false);
    expect((error as Error).message).toMatch(
      /^refused by the policy pack, nothing was applied:\nmandatory service-data-protected\n.*orders-db\n/,
    );
    expect(said).toEqual([]);
  });

  it("prints advisory violations and goes on", async () => {
    project((s) => (s.orders.allowDataLoss = true));
    const violations = await violationsBeforeUp(target());
    expect(violations.map((v) => [v.policy, v.enforcement])).toEqual([
      ["service-data-protected", "advisory"],
      ["service-data-protected", "advisory"],
    ]);
    const said: string[] = [];
    enforce(violations, false, (s) => said.push(s));
    expect(said.join("")).toMatch(/^policy pack \(advisory\):\nadvisory {2}service-data-protected\n/);
  });

  it("refuses a policy config the pack would refuse, before anything runs", async () => {
    project(() => undefined, { "no-cross-service-privileges": "advisory" });
    await expect(violationsBeforeUp(target())).rejects.toThrow(/no-cross-service-privileges: isolation policies are mandatory/);
  });
});

describe("after up: the state the engine saved", () => {
  /** The dev stack as a `pulumi stack export` document, inputs as applied. */
  async function state(extra: Array<Record<string, unknown>> = []): Promise<unknown> {
    const resources = await synth(readConfigFile(path.join(ROOT, "Pulumi.dev.yaml")), "db-platform", STACK);
    return {
      version: 3,
      deployment: {
        resources: [
          ...resources.map((r) => ({
            urn: r.urn,
            type: r.type,
            ...(r.parent ? { parent: r.parent } : {}),
            ...(r.provider ? { provider: `${r.provider}::04da6b54-80e4-46f7-96ec-b56ff0331ba9` } : {}),
            inputs: r.props,
            ...(r.protect ? { protect: true } : {}),
          })),
          ...extra,
        ],
      },
    };
  }

  it("passes what the dev stack applies", async () => {
    project(() => undefined);
    expect(violationsOfState(target(), await state())).toEqual([]);
  });

  it("fails the up on a cross-service grant found in the state", async () => {
    project(() => undefined);
    const resources = await synth(readConfigFile(path.join(ROOT, "Pulumi.dev.yaml")), "db-platform", STACK);
    const provider = resources.find((r) => r.type === "pulumi:providers:postgresql" && r.props.database === "postgres");
    expect(provider).toBeDefined();
    const grant = {
      urn: `urn:pulumi:${STACK}::db-platform::postgresql:index/grant:Grant::inventory-into-orders`,
      type: "postgresql:index/grant:Grant",
      provider: `${provider?.urn}::04da6b54-80e4-46f7-96ec-b56ff0331ba9`,
      inputs: { database: "orders_db", role: "inventory_app", objectType: "database", privileges: ["CONNECT"] },
    };
    const violations = violationsOfState(target(), await state([grant]));
    expect(violations.filter((v) => v.enforcement === "mandatory").map((v) => v.policy)).toContain("no-cross-service-privileges");
    expect(() => enforce(violations, true, () => undefined)).toThrow(
      /^the stack as applied violates the policy pack:\n[\s\S]*inventory_app/,
    );
  });

  it("prints an advisory finding once: not again after the up when it was said before", () => {
    const advisory = { policy: "service-data-protected", urn: "urn:a", message: "m", enforcement: "advisory" as const };
    const mandatory = { policy: "no-public-access", urn: "urn:b", message: "n", enforcement: "mandatory" as const };
    const fresh = { ...advisory, urn: "urn:c" };
    expect(notYetSaid([advisory, mandatory, fresh], [advisory, mandatory])).toEqual([mandatory, fresh]);
  });
});
