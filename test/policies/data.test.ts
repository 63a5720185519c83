/**
 * service-data-protected: a service's database and schemas (and a shared database) are protected
 * unless the service sets allowDataLoss, and the pack shows every such relaxation — advisory by
 * default, mandatory under prod's policy config — from synth output and stack exports alike.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { PolicyConfigFile } from "../../policies/engine/evaluate";
import { fromStackExport } from "../../policies/engine/sources";
import { changed, devValues, input, services } from "../helpers/config";
import { check, happyPath, type Mutable, summary } from "../helpers/policy";
import { ROOT, synthInput } from "../helpers/synth";

const POLICY = "service-data-protected";
/** This rule's violations, by message. */
const only = (rs: readonly Mutable[], config?: PolicyConfigFile) =>
  summary(check(rs, config).filter((v) => v.policy === POLICY)).sort((a, b) => String(a[2]).localeCompare(String(b[2])));
let relaxed: Mutable[];

beforeAll(async () => {
  const values = changed(devValues(), (v) => {
    for (const s of ["inventory", "payments", "profile"]) services(v)[s].allowDataLoss = true;
  });
  relaxed = structuredClone((await synthInput(input(values), "dev")).all) as Mutable[];
});

describe("service-data-protected", () => {
  it("passes the dev stack as declared: every database and schema of a service is protected", async () => {
    expect(only(await happyPath("Pulumi.dev.yaml"))).toEqual([]);
  });

  it("reports each database and schema a service lets go, and a shared database once all its services do", () => {
    expect(only(relaxed)).toEqual([
      [
        POLICY,
        "advisory",
        `database "inventory_db" of service inventory is not protected: a config change can delete it with its data (services.inventory.allowDataLoss)`,
      ],
      [
        POLICY,
        "advisory",
        `database "platform" of services payments, profile is not protected: a config change can delete it with its data (services.payments.allowDataLoss, services.profile.allowDataLoss)`,
      ],
      [
        POLICY,
        "advisory",
        `schema "inventory" of service inventory is not protected: a config change can delete it with its data (services.inventory.allowDataLoss)`,
      ],
      [
        POLICY,
        "advisory",
        `schema "payments" of service payments is not protected: a config change can delete it with its data (services.payments.allowDataLoss)`,
      ],
      [
        POLICY,
        "advisory",
        `schema "profile" of service profile is not protected: a config change can delete it with its data (services.profile.allowDataLoss)`,
      ],
    ]);
  });

  it("is mandatory under prod's policy config", () => {
    const prod = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8")) as PolicyConfigFile;
    expect(only(relaxed, prod).map(([, enforcement]) => enforcement)).toEqual(Array(5).fill("mandatory"));
  });

  it("reads protect from a stack export as from synth output", () => {
    const urn = "urn:pulumi:dev::db-platform::postgresql:index/database:Database::x-db";
    const exported = (protect?: boolean) =>
      fromStackExport({
        deployment: { resources: [{ urn, type: "postgresql:index/database:Database", inputs: { name: "x" }, protect } as never] },
      }).resources[0].protect;
    expect(exported(true)).toBe(true);
    expect(exported(false)).toBeUndefined();
    expect(exported()).toBeUndefined();
  });
});
