/**
 * The data guard's pure parts: which protected databases and schemas of a stack's state a spec
 * would delete or replace (what `up` refuses before applying anything), and the engine's own
 * refusal read back into services.
 */
import { describe, expect, it } from "vitest";
import { dataResources } from "../../components/dataResources";
import { loadSpec } from "../../components/spec";
import { refusedByState, refusedData, protectedDataHint } from "../../operations/stack/dataProtection";
import { changed, devValues, input, services, type Values } from "../helpers/config";

const URN = "urn:pulumi:dev::db-platform::db-platform:index:DatabasePlatform$db-platform:service:ServiceDatabase$";
const SHARED_URN = "urn:pulumi:dev::db-platform::db-platform:index:DatabasePlatform$";

/** The protected data resources `up` of these values leaves in the state, as `pulumi stack export` shows them. */
function stateOf(values: Values) {
  return dataResources(loadSpec(input(values))).map((r) => ({
    type: `postgresql:index/${r.kind}:${r.kind === "database" ? "Database" : "Schema"}`,
    urn: `${r.service ? URN : SHARED_URN}postgresql:index/${r.kind}:${r.kind === "database" ? "Database" : "Schema"}::${r.resource}`,
    protect: !r.mayGo,
    inputs: r.kind === "schema" ? { name: r.name, database: r.database } : { name: r.name },
  }));
}

const refused = (before: Values, after: Values) => refusedByState(stateOf(before), loadSpec(input(after)));

describe("what up refuses before it applies anything", () => {
  const dev = devValues();

  it("nothing when the data stays where it is", () => {
    expect(refused(dev, dev)).toEqual([]);
    expect(
      refused(
        dev,
        changed(dev, (v) => (services(v).orders = { server: "local" })),
      ),
    ).toEqual([]);
  });

  it("a removed service: its database and schema", () => {
    expect(
      refused(
        dev,
        changed(dev, (v) => delete services(v).inventory),
      ),
    ).toEqual([
      { service: "inventory", kind: "database", name: "inventory-db" },
      { service: "inventory", kind: "schema", name: "inventory-schema-inventory" },
    ]);
  });

  it("a schema-isolated service moved to a database of its own: its schema", () => {
    const flipped = changed(dev, (v) => (services(v).payments = { server: "local" }));
    expect(refused(dev, flipped)).toEqual([{ service: "payments", kind: "schema", name: "payments-schema-payments" }]);
  });

  it("a renamed database or a dropped schema", () => {
    expect(
      refused(
        dev,
        changed(dev, (v) => (services(v).inventory.database = "stock_db")),
      ),
    ).toEqual([
      { service: "inventory", kind: "database", name: "inventory-db" },
      { service: "inventory", kind: "schema", name: "inventory-schema-inventory" },
    ]);
    expect(
      refused(
        dev,
        changed(dev, (v) => (services(v)["sv-sdk"].schemas = ["auth", "email", "audit"])),
      ),
    ).toEqual([{ service: "sv-sdk", kind: "schema", name: "sv-sdk-schema-permissions" }]);
  });

  it("a shared database whose services all left", () => {
    const after = changed(dev, (v) => {
      delete services(v).payments;
      delete services(v).profile;
    });
    expect(refused(dev, after)).toContainEqual({ kind: "shared database", name: "local-platform" });
  });

  describe("a move (db-platform move)", () => {
    const moving = (phase: string) =>
      changed(dev, (v) => (services(v).payments.move = { to: { server: "local", isolation: "database" }, phase }));
    const arrived = changed(dev, (v) => (services(v).payments = { server: "local" }));

    it("declares both places while it copies and serves: nothing refused, the target's own data resources named <service>.next-…", () => {
      expect(refused(dev, moving("copy"))).toEqual([]);
      expect(refused(moving("copy"), moving("serve"))).toEqual([]);
      const names = stateOf(moving("serve")).map((r) => r.urn.split("::").pop());
      expect(names).toEqual(expect.arrayContaining(["payments-schema-payments", "payments.next-db", "payments.next-schema-payments"]));
    });

    it("refuses to retire the old place until its protection was lifted (the command does that after --confirm)", () => {
      expect(refused(moving("serve"), moving("retire"))).toEqual([
        { service: "payments", kind: "schema", name: "payments-schema-payments" },
      ]);
    });

    it("when it is done, the target's resources are renamed to the service's own, not deleted", () => {
      const retired = stateOf(moving("serve")).filter((r) => !r.urn.endsWith("::payments-schema-payments"));
      expect(refusedByState(retired, loadSpec(input(arrived)))).toEqual([]);
    });

    it("a rollback drops the target only once its protection was lifted", () => {
      expect(refused(moving("copy"), dev)).toEqual([
        { service: "payments", kind: "database", name: "payments.next-db" },
        { service: "payments", kind: "schema", name: "payments.next-schema-payments" },
      ]);
    });
  });

  it("not a replacement the service allows in the same change; a removal always, until an up has lifted the protection", () => {
    const flippedAllowed = changed(dev, (v) => (services(v).payments = { server: "local", allowDataLoss: true }));
    expect(refused(dev, flippedAllowed)).toEqual([]);
    const allowed = changed(dev, (v) => (services(v).inventory.allowDataLoss = true));
    expect(
      refused(
        dev,
        changed(dev, (v) => delete services(v).inventory),
      ),
    ).toHaveLength(2);
    expect(
      refused(
        allowed,
        changed(dev, (v) => delete services(v).inventory),
      ),
    ).toEqual([]);
  });
});

describe("the engine's refusal, read back", () => {
  const engine = `error: resource "${URN}postgresql:index/schema:Schema::keep-schema-keep" cannot be deleted
because it is protected.
error: unable to replace resource "${URN}postgresql:index/schema:Schema::sv-sdk-schema-auth"
as it is currently marked for protection.`;

  it("names each service and what of it", () => {
    expect(refusedData(engine)).toEqual([
      { service: "keep", kind: "schema", name: "keep-schema-keep" },
      { service: "sv-sdk", kind: "schema", name: "sv-sdk-schema-auth" },
    ]);
    const hint = protectedDataHint(engine, "dev") as string;
    expect(hint).toContain("service keep: its schema (keep-schema-keep)");
    expect(hint).toContain("db-platform move plan --stack dev --service sv-sdk --to database|schema");
    expect(hint).toContain("allowDataLoss: true");
  });

  it("says nothing about other failures", () => {
    expect(protectedDataHint("error: pq: permission denied for database x", "dev")).toBeUndefined();
  });
});
