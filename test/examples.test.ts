/**
 * Every seed topology (examples/) and both real stacks synthesize, and every service stays
 * inside its own database and schemas.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { readConfigFile } from "../operations/stack/stackConfig";
import { loadSpec } from "../components/spec";
import { isolationViolations } from "./helpers/isolation";
import { ROOT, STACK_FILES, synthFile, T } from "./helpers/synth";

const STACKS = STACK_FILES;

const specOf = (file: string) => loadSpec(readConfigFile(path.join(ROOT, file)));

describe.each(STACKS)("%s", (file) => {
  it("keeps every service role inside its own database and schemas, PUBLIC revoked", async () => {
    const resources = await synthFile(file);
    expect(resources.all.length).toBeGreaterThan(0);
    expect(isolationViolations(specOf(file), resources.all)).toEqual([]);
  });

  it("registers every database object with its server's provider, explicitly", async () => {
    const resources = await synthFile(file);
    const pg = resources.all.filter((r) => r.type.startsWith("postgresql:index/"));
    expect(pg.length).toBeGreaterThan(0);
    // The server's provider, or the same server's provider for a shared database (schema-isolated owner roles).
    for (const r of pg) expect(r.provider, r.urn).toMatch(/\$pulumi:providers:postgresql::[a-z0-9-]+-postgresql(-[a-z0-9_]+)?$/);
    const perDatabase = pg.filter((r) => /-postgresql-[a-z0-9_]+$/.test(r.provider ?? ""));
    expect(perDatabase.every((r) => r.type === T.role && /-owner$/.test(r.name))).toBe(true);
  });
});

describe("the isolation check can fail", () => {
  it("flags a cross-database grant, cross-service memberships, a PUBLIC grant and a missing admin membership", async () => {
    const file = "Pulumi.dev.yaml";
    const resources = await synthFile(file);
    const provider = resources.one(T.pgProvider, "local-postgresql").urn;
    const tampered = [
      ...resources.all,
      {
        type: T.grant,
        name: "escape",
        urn: "u1",
        parent: null,
        provider,
        props: { role: "inventory_app", database: "sv_sdk_db", objectType: "database", privileges: ["CONNECT"] },
      },
      {
        type: T.role,
        name: "member",
        urn: "u2",
        parent: null,
        provider,
        props: {
          name: "orders_app",
          roles: ["inventory_owner"],
          superuser: false,
          createDatabase: false,
          createRole: false,
          replication: false,
          bypassRowLevelSecurity: false,
        },
      },
      {
        type: T.grant,
        name: "open",
        urn: "u3",
        parent: null,
        provider,
        props: { role: "public", database: "inventory_db", objectType: "database", privileges: ["CONNECT"] },
      },
      {
        type: T.grantRole,
        name: "join",
        urn: "u4",
        parent: null,
        provider,
        props: { role: "orders_app", grantRole: "inventory_owner" },
      },
    ].filter((r) => r.name !== "orders-admin-member");
    expect(isolationViolations(specOf(file), tampered)).toEqual([
      "escape: inventory_app (service inventory) reaches sv_sdk_db/",
      "member: orders_app is a member of inventory_owner",
      "open: grants CONNECT to PUBLIC",
      "join: unexpected role membership grant (inventory_owner to orders_app)",
      "service orders: the admin is not a member of orders_owner",
    ]);
  });
});

describe("seed topologies produce what their ADRs ask for", () => {
  it("000: each service on its own dedicated server", async () => {
    const r = await synthFile("examples/seed-000-swisper/Pulumi.prod.yaml");
    expect(r.ofType(T.rds).map((i) => i.props.identifier)).toEqual(["prod-swisper", "prod-studio"]);
    const dbs = r.ofType(T.database).map((d) => [d.props.name, d.provider?.split("::").pop()]);
    expect(dbs).toEqual([
      ["swisper", "swisper-postgresql"],
      ["swisper_studio", "studio-postgresql"],
    ]);
  });

  it("001: a database per app on one PostgreSQL 15 server, with a replica", async () => {
    const r = await synthFile("examples/seed-001-ovu/Pulumi.staging.yaml");
    expect(r.ofType(T.database).map((d) => [d.props.name, d.props.owner])).toEqual([
      ["ulm_db", "ulm_owner"],
      ["inventory_db", "inventory_owner"],
      ["crm_db", "crm_owner"],
      ["reports_db", "reports_owner"],
    ]);
    expect(r.one(T.rds, "ovu-instance").props.engineVersion).toBe("15");
    expect(r.one(T.rds, "ovu-replica-ovu-ro-1").props.replicateSourceDb).toBe("staging-ovu");
  });

  it("002: one database, four schemas, a read-only login on all and an auditor on audit only", async () => {
    const r = await synthFile("examples/seed-002-sv-sdk/Pulumi.dev.yaml");
    expect(r.ofType(T.schema).map((s) => [s.props.name, s.props.database, s.props.owner])).toEqual(
      ["auth", "email", "audit", "permissions"].map((s) => [s, "sv_sdk_db", "sv_sdk_owner"]),
    );
    const usage = (role: string) =>
      r
        .ofType(T.grant)
        .filter((g) => g.props.role === role && g.props.objectType === "schema")
        .map((g) => g.props.schema);
    expect(usage("sv_sdk_readonly")).toEqual(["auth", "email", "audit", "permissions"]);
    expect(usage("sv_sdk_auditor")).toEqual(["audit"]);
    expect(
      r
        .ofType(T.grant)
        .filter((g) => g.props.role === "sv_sdk_auditor" && g.props.objectType === "table")
        .map((g) => g.props.privileges),
    ).toEqual([["SELECT"]]);
  });

  it("003: database-per-service and schema-per-service side by side, profile moving from one to the other", async () => {
    const r = await synthFile("examples/seed-003-poc/Pulumi.staging.yaml");
    expect(
      r
        .ofType(T.database)
        .map((d) => d.props.name)
        .sort(),
    ).toEqual(["auth_db", "payments_db", "platform", "profile_db"]);
    expect(
      r
        .ofType(T.schema)
        .map((s) => [s.props.name, s.props.database])
        .sort(),
    ).toEqual([
      ["admin", "platform"],
      ["auth", "auth_db"],
      ["payments", "payments_db"],
      ["profile", "platform"],
      ["profile", "profile_db"],
    ]);
    // Both of profile's places are protected while it moves.
    expect([r.one(T.schema, "profile-schema-profile").protect, r.one(T.database, "profile.next-db").protect]).toEqual([true, true]);
  });

  it("004: the alpha and prod stacks share no server and tag everything with their own environment", async () => {
    const alpha = await synthFile("examples/seed-004-piper/Pulumi.alpha.yaml");
    const prod = await synthFile("examples/seed-004-piper/Pulumi.prod.yaml");
    expect(alpha.one(T.container, "piper-container").props.name).toBe("db-platform-alpha-piper");
    expect(prod.one(T.rds, "piper-instance").props.identifier).toBe("prod-piper");
    for (const r of prod.all.filter((x) => x.type.startsWith("aws:") && x.props.tags)) {
      expect((r.props.tags as Record<string, string>)["db-platform:environment"], r.urn).toBe("prod");
    }
    const urnsAlpha = new Set(alpha.all.map((r) => r.urn));
    expect(prod.all.some((r) => urnsAlpha.has(r.urn))).toBe(false);
  });
});
