/**
 * The major version guard's pure part: which RDS servers of a stack's state a spec would move to
 * another PostgreSQL major by a bare `version` edit (what `up` refuses before applying anything).
 * The state is the prod stack's RDS instances as the program registers them under Pulumi's mocks.
 */
import { describe, expect, it } from "vitest";
import { loadSpec } from "../../components/spec";
import { majorChangeText, majorChanges } from "../../operations/stack/versionGuard";
import { changed, devValues, input, prodValues, servers, type Values } from "../helpers/config";
import { synthInput } from "../helpers/synth";

/** The RDS instances `up` of these values leaves in the state, as `pulumi stack export` shows them. */
async function stateOf(values: Values) {
  const synth = await synthInput(input(values), "prod");
  return synth.ofType("aws:rds/instance:Instance").map((r) => ({ type: r.type, urn: r.urn, inputs: r.props }));
}

describe("the major version guard", () => {
  const prod = prodValues();

  it("lets an unchanged stack and a minor version through", async () => {
    const state = await stateOf(prod);
    expect(state.some((r) => r.urn.endsWith("::main-instance"))).toBe(true);
    expect(majorChanges(state, loadSpec(input(prod)))).toEqual([]);
    const minor = state.map((r) => ({
      ...r,
      inputs: { ...r.inputs, engineVersion: r.urn.endsWith("::main-instance") ? "16.4" : r.inputs.engineVersion },
    }));
    expect(majorChanges(minor, loadSpec(input(prod)))).toEqual([]);
  });

  it.each([
    ["an upgrade", "17"],
    ["a downgrade", "15"],
  ])("refuses %s of one server, naming its config path", async (_, to) => {
    const state = await stateOf(prod);
    const spec = loadSpec(input(changed(prod, (v) => (servers(v).main.version = to))));
    expect(majorChanges(state, spec)).toEqual([{ server: "main", hosting: "rds", from: "16", to }]);
    expect(majorChangeText(majorChanges(state, spec), "prod")).toContain(
      `servers.main.version: 16 → ${to} (the server runs 16; set version back to 16 and run: db-platform upgrade plan --stack prod --server main --to ${to}, then upgrade apply)`,
    );
  });

  it.each(["unprotect-replicas", "detach-replicas", "upgrade"])(
    "lets the phase %s of an upgrade that db-platform upgrade wrote through, before and after the instance's update",
    async (phase) => {
      const upgrading = changed(prod, (v) => Object.assign(servers(v).main, { version: "17", upgrade: { from: "16", phase } }));
      const spec = loadSpec(input(upgrading));
      expect(majorChanges(await stateOf(prod), spec)).toEqual([]);
      expect(majorChanges(await stateOf(upgrading), spec)).toEqual([]);
      // Once the block is gone the stack says 17: a state still at 16 is refused again.
      expect(majorChanges(await stateOf(prod), loadSpec(input(changed(prod, (v) => (servers(v).main.version = "17")))))).toHaveLength(1);
    },
  );

  it("does not count a replica or a server the state does not have yet", async () => {
    const withReplica = changed(prod, (v) => (servers(v).main.replicas = [{ name: "main-ro" }]));
    const state = await stateOf(withReplica);
    expect(state.length).toBeGreaterThan(2);
    const spec = loadSpec(input(changed(withReplica, (v) => (servers(v).fresh = { hosting: "rds", version: "17" }))));
    expect(majorChanges(state, spec)).toEqual([]);
  });

  it("refuses a container server's major change by its official image, and leaves an image of its own alone", async () => {
    const before = changed(devValues(), (v) => (servers(v).box = { hosting: "container", port: 55432 }));
    const state = (await synthInput(input(before), "dev"))
      .ofType("docker:index/remoteImage:RemoteImage")
      .map((r) => ({ type: r.type, urn: r.urn, inputs: r.props }));
    expect(state.map((r) => r.inputs.name)).toEqual(["postgres:16.10-bookworm"]);
    expect(majorChanges(state, loadSpec(input(before)))).toEqual([]);
    const bumped = loadSpec(input(changed(before, (v) => (servers(v).box.version = "17"))));
    expect(majorChanges(state, bumped)).toEqual([{ server: "box", hosting: "container", from: "16", to: "17" }]);
    expect(majorChangeText(majorChanges(state, bumped))).toContain("db-platform upgrade runs on local and RDS servers");
    const own = loadSpec(
      input(changed(before, (v) => Object.assign(servers(v).box, { version: "17", image: "registry.example/pg:custom" }))),
    );
    expect(majorChanges(state, own)).toEqual([]);
  });
});
