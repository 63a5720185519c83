/**
 * `services.<name>.createSchemas`: the service's owner role gets CREATE on its shared database
 * (for migration tools' `CREATE SCHEMA IF NOT EXISTS`), which `no-cross-service-privileges` admits
 * for that NOLOGIN role only, and `service-creates-schemas` reports at every preview.
 */
import { describe, expect, it } from "vitest";
import { changed, devValues, input, services } from "../helpers/config";
import { check, raw, summary } from "../helpers/policy";
import { synthInput, T } from "../helpers/synth";
import type { Mutable } from "../helpers/policy";

async function devWith(createSchemas: boolean): Promise<Mutable[]> {
  const values = changed(devValues(), (v) => (services(v).payments.createSchemas = createSchemas));
  return structuredClone((await synthInput(input(values))).all) as Mutable[];
}

const ownerGrant = (resources: readonly Mutable[]) => resources.find((r) => r.type === T.grant && r.name === "payments-grant-owner-db");

describe("createSchemas", () => {
  it("grants the owner role CONNECT and CREATE on the shared database, and nothing more to anyone", async () => {
    const [plain, creating] = [await devWith(false), await devWith(true)];
    expect(ownerGrant(plain)?.props).toMatchObject({ role: "payments_owner", database: "platform", privileges: ["CONNECT"] });
    expect(ownerGrant(creating)?.props).toMatchObject({ role: "payments_owner", database: "platform", privileges: ["CONNECT", "CREATE"] });
    // The same resources otherwise, input for input.
    const strip = (rs: readonly Mutable[]) => rs.filter((r) => r.name !== "payments-grant-owner-db").map((r) => [r.urn, r.props]);
    expect(strip(creating)).toEqual(strip(plain));
  });

  it("is reported by service-creates-schemas (advisory), and mandatory where every rule is", async () => {
    const resources = await devWith(true);
    const message =
      'role "payments_owner" (service payments) may create schemas in shared database "platform" on server local (services.payments.createSchemas): a schema it creates is outside the stack until declared';
    expect(summary(check(resources))).toEqual([["service-creates-schemas", "advisory", message]]);
    expect(summary(check(resources, { all: "mandatory" }))).toEqual([["service-creates-schemas", "mandatory", message]]);
    expect(summary(check(await devWith(false), { all: "mandatory" }))).toEqual([]);
  });

  it("admits CREATE on the shared database only for a tenant's NOLOGIN owner role, never for a login", async () => {
    const resources = await devWith(true);
    const provider = resources.find((r) => r.type === T.pgProvider && r.name === "local-postgresql")?.urn ?? null;
    const extra = raw(T.grant, "x", provider, {
      role: "payments_migrator",
      database: "platform",
      objectType: "database",
      privileges: ["CREATE"],
    });
    expect(summary(check([...resources, extra])).filter(([p]) => p === "no-cross-service-privileges")).toEqual([
      [
        "no-cross-service-privileges",
        "mandatory",
        'role "payments_migrator" (service payments) must hold at most CONNECT, TEMPORARY on shared database "platform" on server local (its NOLOGIN owner role also CREATE: services.<name>.createSchemas), and only when its service has a schema there; found CREATE on database "platform"',
      ],
    ]);
  });
});
