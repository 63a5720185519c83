/**
 * A service on the move (`services.<name>.move`, docs/data-moves.md), synthesized under the SDK's
 * mocks at each phase: both places are registered until the old one is retired, the target's
 * resources are named `<service>.next-…`, the roles stay the service's (on the target server
 * too when the server changes), the URLs follow the phase, and the policy pack and the
 * independent isolation check hold for both places.
 */
import { describe, expect, it } from "vitest";
import { loadSpec } from "../../components/spec";
import { synthProgram } from "../../operations/stack/synth";
import { changed, devValues, input, prodValues, services, type Values } from "../helpers/config";
import { isolationViolations } from "../helpers/isolation";
import { check, raw } from "../helpers/policy";
import { Resources, resolve, T } from "../helpers/synth";

/** The dev fixture with a second local server. */
function twoServers(): Values {
  return changed(devValues(), (v) => {
    (v.servers as Record<string, unknown>).second = {
      hosting: "local",
      version: "16",
      port: 54339,
      replicas: [{ name: "second-ro", port: 54340 }],
    };
    (v.adminPasswords as Record<string, string>).second = "second-admin-password";
  });
}

const moving = (service: string, to: Record<string, string>, phase: string) =>
  changed(twoServers(), (v) => (services(v)[service].move = { to, phase }));

async function synth(values: Values) {
  const r = await synthProgram(input(values), "db-platform", String(values.environment));
  return { resources: new Resources(r.resources), outputs: r.outputs, spec: loadSpec(input(values)) };
}

const named = (r: Resources, service: string) =>
  r.all.filter((x) => x.parent?.endsWith(`ServiceDatabase::${service}`) && x.type !== T.password).map((x) => x.name);
const providerName = (r: Resources, urn: string | null) => r.all.find((x) => x.urn === urn)?.name;

describe("a schema-isolated service moving to a database of its own on its server", () => {
  const to = { server: "local", isolation: "database" };

  it("copy: the old schema serves; the new database, schema, grants and default privileges exist beside it, under the same roles", async () => {
    const { resources, outputs, spec } = await synth(moving("payments", to, "copy"));
    const mine = named(resources, "payments");
    expect(mine).toEqual(expect.arrayContaining(["payments-schema-payments", "payments.next-db", "payments.next-schema-payments"]));
    // One set of roles: the same server.
    expect(mine.filter((n) => resources.all.some((x) => x.name === n && x.type === T.role)).sort()).toEqual(
      ["payments-app", "payments-migrator", "payments-owner", "payments-readonly"].sort(),
    );
    expect(resources.one(T.database, "payments.next-db").props).toMatchObject({ name: "payments_db", owner: "payments_owner" });
    expect(resources.one(T.database, "payments.next-db").protect).toBe(true);
    expect(resources.one(T.schema, "payments.next-schema-payments").props).toMatchObject({
      database: "payments_db",
      owner: "payments_owner",
    });
    const targetGrants = resources.ofType(T.grant).filter((g) => g.name.startsWith("payments.next-grant-"));
    // As any service with a database of its own: PUBLIC x2, app x5, readonly x4, the monitoring login's CONNECT.
    expect(targetGrants.length).toBe(12);
    expect(new Set(targetGrants.map((g) => g.props.database))).toEqual(new Set(["payments_db"]));
    expect((await resolve(outputs.services.payments.database)).value).toBe("platform");
    expect((await resolve(outputs.services.payments.urls.app)).value).toMatch(/\/platform\?sslmode=/);
    expect(isolationViolations(spec, resources.all)).toEqual([]);
    expect(check(resources.all).filter((v) => v.enforcement === "mandatory")).toEqual([]);
  });

  it("serve: the URLs point at the new database; retire: the old schema is no longer declared, the roles stay", async () => {
    const serve = await synth(moving("payments", to, "serve"));
    expect((await resolve(serve.outputs.services.payments.database)).value).toBe("payments_db");
    expect((await resolve(serve.outputs.services.payments.urls.readonly)).value).toMatch(/payments_readonly:.*\/payments_db\?sslmode=/);
    const retire = await synth(moving("payments", to, "retire"));
    const mine = named(retire.resources, "payments");
    expect(mine).not.toContain("payments-schema-payments");
    expect(mine.filter((n) => n.startsWith("payments-grant-"))).toEqual([]);
    expect(mine).toEqual(expect.arrayContaining(["payments-owner", "payments-app", "payments.next-db", "payments.next-schema-payments"]));
    expect(isolationViolations(retire.spec, retire.resources.all)).toEqual([]);
  });

  it("the pack still refuses another service's role on the new database", async () => {
    const { resources } = await synth(moving("payments", to, "serve"));
    const provider = resources.one(T.database, "payments.next-db").provider;
    const escape = raw(T.grant, "escape", provider, {
      database: "payments_db",
      role: "profile_app",
      objectType: "schema",
      schema: "payments",
      privileges: ["USAGE"],
    });
    const found = check([...resources.all, escape]).filter((v) => v.urn === escape.urn);
    expect(found.map((v) => v.enforcement)).toContain("mandatory");
  });
});

describe("a service moving to another server", () => {
  const to = { server: "second", isolation: "database" };

  it("copy: its roles, database and grants are created on the target server too; serve: its URLs point there", async () => {
    const { resources, outputs, spec } = await synth(moving("inventory", to, "copy"));
    for (const name of ["inventory.next-owner", "inventory.next-app", "inventory.next-db", "inventory.next-admin-member"]) {
      const r = resources.all.find((x) => x.name === name);
      expect(providerName(resources, r?.provider ?? null), name).toBe("second-postgresql");
    }
    expect(providerName(resources, resources.one(T.role, "inventory-owner").provider)).toBe("local-postgresql");
    expect((await resolve(outputs.services.inventory.urls.app)).value).toContain(":54329/inventory_db");
    expect(isolationViolations(spec, resources.all)).toEqual([]);
    expect(check(resources.all).filter((v) => v.enforcement === "mandatory")).toEqual([]);

    const serve = await synth(moving("inventory", to, "serve"));
    expect((await resolve(serve.outputs.services.inventory.urls.app)).value).toContain(":54339/inventory_db");
    // Read-only logins follow it to the target server's reader.
    expect((await resolve(serve.outputs.services.inventory.urls.readonly)).value).toContain(":54340/inventory_db");
    expect(serve.outputs.services.inventory.routing.readonly).toBe("replica second-ro");
    expect(serve.outputs.services.inventory.server).toBe("second");
  });

  it("on RDS its Secrets Manager secrets follow it: the same secrets, describing the serving place", async () => {
    const values = (phase: string) =>
      changed(prodValues(), (v) => (services(v).payments.move = { to: { server: "studio", isolation: "database" }, phase }));
    const description = async (phase: string) =>
      (await synth(values(phase))).resources.one(T.secret, "payments-app-secret").props.description;
    expect(await description("copy")).toBe("payments app login for platform");
    expect(await description("serve")).toBe("payments app login for payments_db");
  });

  it("retire: nothing of it is left on the old server", async () => {
    const { resources } = await synth(moving("inventory", to, "retire"));
    const onLocal = named(resources, "inventory").filter(
      (n) => providerName(resources, resources.all.find((x) => x.name === n)?.provider ?? null) === "local-postgresql",
    );
    expect(onLocal).toEqual([]);
  });
});
