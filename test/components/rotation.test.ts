/**
 * Credential rotation (docs/rotation.md) offline: the slots of each generation, the config's
 * credentials and rotation period checked with the config path, and under Pulumi's mocks what a
 * rotated login registers — its alternate role, the passwords' keepers, the URLs and RDS secrets
 * that follow the current slot — and the pack's `rotation-alternates` rule.
 */
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { formatProblem, validateConfig } from "../../components/spec";
import { currentRoleName, loginRoleNames, previousRoleName, slotGeneration, type RoleSpec } from "../../components/spec";
import { synthProgram } from "../../operations/stack/synth";
import { changed, devValues, input, prodValues, services, type Values } from "../helpers/config";
import { check, find } from "../helpers/policy";
import { credentialFindings } from "../../operations/audit/rules/credentialAge";
import { resolve, ROOT, synthInput, T } from "../helpers/synth";

const AT = "2026-12-01T10:00:00Z";
const login = (generation: number): RoleSpec => ({
  name: "orders_app",
  key: "app",
  kind: "app",
  login: true,
  read: ["orders"],
  write: ["orders"],
  connectionLimit: 100,
  ...(generation > 0 && { credential: { generation, rotatedAt: AT } }),
});
const rotated = (values: Values, credentials: Record<string, number>, extra: Record<string, unknown> = {}) =>
  changed(values, (v) => {
    services(v).inventory.credentials = Object.fromEntries(
      Object.entries(credentials).map(([k, g]) => [k, { generation: g, rotatedAt: AT }]),
    );
    Object.assign(services(v).inventory, extra);
  });
const problemsOf = (values: Values) => {
  const r = validateConfig(input(values));
  return r.ok ? [] : r.problems.map(formatProblem);
};

describe("credential slots", () => {
  it.each([
    [0, "orders_app", undefined, 0, undefined],
    [1, "orders_app_alt", "orders_app", 0, 1],
    [2, "orders_app", "orders_app_alt", 2, 1],
    [3, "orders_app_alt", "orders_app", 2, 3],
  ])("generation %i: URL names %s, previous %s; slot a holds generation %s, slot b %s", (g, current, previous, a, b) => {
    expect(currentRoleName(login(g))).toBe(current);
    expect(previousRoleName(login(g))).toBe(previous);
    expect(slotGeneration(login(g), "a")).toBe(a);
    expect(slotGeneration(login(g), "b")).toBe(b);
    expect(loginRoleNames(login(g))).toEqual(g === 0 ? ["orders_app"] : ["orders_app", "orders_app_alt"]);
  });
});

describe("config", () => {
  it("accepts credentials of the service's logins and a rotation period", () => {
    expect(problemsOf(rotated(devValues(), { app: 1, migrator: 2 }, { rotation: "90d" }))).toEqual([]);
  });

  it("refuses a credential of no login, a bad generation, a bad time and a bad period, naming the path", () => {
    const values = changed(devValues(), (v) => {
      services(v).inventory.credentials = { apps: { generation: 1, rotatedAt: AT }, app: { generation: 0, rotatedAt: "yesterday" } };
      services(v).inventory.rotation = "3 months";
    });
    const problems = problemsOf(values);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^services\.inventory\.credentials\.app\.generation: /),
        expect.stringMatching(/^services\.inventory\.credentials\.app\.rotatedAt: /),
        expect.stringMatching(/^services\.inventory\.rotation: must be a period in days, such as "90d"/),
      ]),
    );
    expect(
      problemsOf(
        changed(
          values,
          (v) => void Object.assign(services(v).inventory, { rotation: "90d", credentials: { apps: { generation: 1, rotatedAt: AT } } }),
        ),
      ),
    ).toEqual([
      expect.stringMatching(
        /^services\.inventory\.credentials\.apps: "apps" is not a login of service inventory \(its logins: app, readonly, migrator\)/,
      ),
    ]);
  });

  it("reads a rotation time the engine's YAML 1.1 reader turned into Go's time format, as the ISO time it was", () => {
    const values = changed(devValues(), (v) => {
      services(v).inventory.credentials = { app: { generation: 1, rotatedAt: "2026-12-03 13:19:23.379 +0000 UTC" } };
    });
    const r = validateConfig(input(values));
    expect(r.ok && r.spec.services.find((x) => x.name === "inventory")?.logins[0].credential).toEqual({
      generation: 1,
      rotatedAt: "2026-12-03T13:19:23.379+00:00",
    });
  });

  it("refuses a rotation whose alternate role would be too long, or taken by another role", () => {
    const long = "s".repeat(51);
    const tooLong = changed(devValues(), (v) => {
      services(v)[long] = { server: "local", credentials: { readonly: { generation: 1, rotatedAt: AT } } };
    });
    expect(problemsOf(tooLong)).toEqual([
      expect.stringMatching(
        new RegExp(`^services\\.${long}\\.credentials\\.readonly: its alternate login for rotation: ".*_readonly_alt" is 64 bytes`),
      ),
    ]);
    const taken = changed(devValues(), (v) => {
      services(v).inventory.roles = { app_alt: { read: ["*"] } };
      services(v).inventory.credentials = { app: { generation: 1, rotatedAt: AT } };
    });
    expect(problemsOf(taken)).toEqual([
      "services.inventory.credentials.app: its alternate login for rotation, inventory_app_alt, is the role of roles.app_alt: rename that role",
    ]);
  });
});

describe("a rotated login under mocks", () => {
  it("registers the alternate role as a member of its login with its settings, and keeps the unrotated logins as they were", async () => {
    const r = await synthInput(input(rotated(devValues(), { app: 2, migrator: 1 })), "dev");
    const app = r.one(T.role, "inventory-app").props;
    const alt = r.one(T.role, "inventory-app-alt").props;
    expect(alt).toMatchObject({
      name: "inventory_app_alt",
      login: true,
      inherit: true,
      roles: ["inventory_app"],
      connectionLimit: app.connectionLimit,
      searchPaths: app.searchPaths,
      superuser: false,
    });
    expect(r.one(T.role, "inventory-migrator-alt").props).toMatchObject({ roles: ["inventory_migrator"], assumeRole: "inventory_owner" });
    expect(r.one(T.password, "inventory-app-password").props.keepers).toEqual({ generation: "2" });
    expect(r.one(T.password, "inventory-app-alt-password").props.keepers).toEqual({ generation: "1" });
    expect(r.one(T.password, "inventory-readonly-password").props.keepers).toBeUndefined();
    expect(
      r.all
        .filter((x) => x.type === T.role && x.name.endsWith("-alt"))
        .map((x) => x.name)
        .sort(),
    ).toEqual(["inventory-app-alt", "inventory-migrator-alt"]);
    expect(r.all.some((x) => x.name.startsWith("orders-") && x.name.endsWith("-alt"))).toBe(false);
    expect(check(r.all)).toEqual([]);
  });

  it("points the URL at the current slot and gives the previous credential's URL beside it", async () => {
    const { outputs } = await synthProgram(input(rotated(devValues(), { app: 1, readonly: 2 })), "db-platform", "dev");
    const user = async (o: Parameters<typeof resolve>[0] | undefined) =>
      new URL((await resolve(o as Parameters<typeof resolve<string>>[0])).value as string).username;
    const inventory = outputs.services.inventory;
    expect(await user(inventory.urls.app)).toBe("inventory_app_alt");
    expect(await user(inventory.previousUrls?.app)).toBe("inventory_app");
    expect(await user(inventory.urls.readonly)).toBe("inventory_readonly");
    expect(await user(inventory.previousUrls?.readonly)).toBe("inventory_readonly_alt");
    expect(inventory.previousUrls?.migrator).toBeUndefined();
    expect((await resolve(inventory.previousUrls!.app as Parameters<typeof resolve<string>>[0])).secret).toBe(true);
  });

  it("writes the current slot's username and password into the login's RDS secret", async () => {
    const r = await synthInput(input(rotated(prodValues(), { app: 1 }), { awsRegion: "eu-central-1" }), "prod");
    const version = r.one(T.secretVersion, "inventory-app-secret-version");
    expect(String(version.props.secretString)).toBe("[secret]");
    expect(r.one(T.role, "inventory-app-alt").props.roles).toEqual(["inventory_app"]);
  });
});

describe("a rotated login behind RDS Proxy", () => {
  it("gets a second secret with the previous credential, and the proxy admits both roles, each by its own secret", async () => {
    const file = readConfigFile(`${ROOT}/Pulumi.prod.yaml`);
    const values = structuredClone(file.values) as Values;
    services(values).orders.pool = {};
    (values.servers as Record<string, Record<string, unknown>>).main.pooler = {};
    services(values).orders.credentials = { app: { generation: 1, rotatedAt: AT } };
    const r = await synthInput({ ...file, values }, "prod");
    const auths = (r.one("aws:rds/proxy:Proxy", "main-proxy").props.auths as Array<Record<string, unknown>>).map((a) => [
      a.username,
      a.secretArn,
    ]);
    const arn = (name: string) => r.one(T.secret, name).urn;
    expect(auths.map(([u]) => u)).toEqual(["orders_app_alt", "orders_app"]);
    expect(r.one(T.secret, "orders-app-previous-secret").props).toMatchObject({ name: "db-platform/prod/orders/app/previous" });
    expect(r.one(T.secret, "orders-app-secret").props).toMatchObject({ name: "db-platform/prod/orders/app" });
    expect(auths.every(([, secretArn]) => typeof secretArn === "string" && secretArn !== "")).toBe(true);
    expect(arn("orders-app-secret")).not.toBe(arn("orders-app-previous-secret"));
    expect(r.all.some((x) => x.name === "orders-readonly-previous-secret")).toBe(false);
    // The pooled login's secret names it, for the rotation function's finishSecret (docs/rotation.md, "On AWS").
    expect((r.one(T.secret, "orders-app-secret").props.tags as Record<string, string>)["db-platform:previous-secret"]).toBe(
      "db-platform/prod/orders/app/previous",
    );
    expect(check(r.all, JSON.parse(fs.readFileSync(`${ROOT}/policies/config/prod.json`, "utf8")))).toEqual([]);
  });
});

describe("the pack's rotation-alternates rule", () => {
  const base = () => synthInput(input(rotated(devValues(), { app: 1 })), "dev");
  const rule = (violations: ReturnType<typeof check>) => violations.filter((v) => v.policy === "rotation-alternates").map((v) => v.message);

  it("refuses an alternate that joins more than its login", async () => {
    const r = await base();
    find(r.all, T.role, "inventory-app-alt").props.roles = ["inventory_app", "inventory_owner"];
    expect(rule(check(r.all))).toEqual([
      expect.stringContaining(
        `role "inventory_app_alt" (service inventory) is inventory_app's alternate login: it must be a member of "inventory_app" only`,
      ),
    ]);
  });

  it("refuses an alternate with other settings than its login", async () => {
    const r = await base();
    find(r.all, T.role, "inventory-app-alt").props.connectionLimit = -1;
    expect(rule(check(r.all))).toEqual([expect.stringContaining("connectionLimit differ")]);
  });

  it("refuses a privilege given to an alternate itself", async () => {
    const r = await base();
    const grant = r.all.find((x) => x.type === T.grant && x.props.role === "inventory_app" && x.props.objectType === "table");
    expect(grant).toBeDefined();
    (grant as { props: Record<string, unknown> }).props.role = "inventory_app_alt";
    expect(rule(check(r.all))).toEqual([expect.stringContaining("an alternate login holds nothing of its own")]);
  });
});

describe("the audit's credential-age rule", () => {
  const spec = (values: Values) => {
    const r = validateConfig(input(values));
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join("\n"));
    return r.spec;
  };
  const now = new Date("2026-12-31T10:00:00Z");

  it("reports, for a service with a period, a login rotated longer ago, never rotated, or left pending; and nothing without a period", () => {
    const values = changed(rotated(devValues(), { app: 1, migrator: 3 }, { rotation: "20d" }), (v) => {
      const creds = services(v).inventory.credentials as Record<string, Record<string, unknown>>;
      creds.migrator.rotatedAt = "2026-12-20T10:00:00Z";
      creds.readonly = { generation: 1, rotatedAt: "2026-12-30T10:00:00Z", pending: true };
    });
    const s = spec(values);
    const found = credentialFindings(s.services, now).map((f) => [f.rule, f.severity, f.object, f.message]);
    expect(found).toEqual([
      [
        "credential-age",
        "medium",
        "role inventory_app",
        "login inventory_app was last rotated 30 days ago (generation 1); the period is 20 days",
      ],
      [
        "credential-age",
        "medium",
        "role inventory_readonly",
        "login inventory_readonly's rotation to generation 1 was written but not verified",
      ],
    ]);
    expect(credentialFindings(spec(changed(values, (v) => void delete services(v).inventory.rotation)).services, now)).toEqual([]);
    const never = credentialFindings(spec(changed(devValues(), (v) => void (services(v).profile.rotation = "90d"))).services, now);
    expect(never.map((f) => f.message)).toEqual([
      "login profile_app has never been rotated (the period is 90 days)",
      "login profile_readonly has never been rotated (the period is 90 days)",
      "login profile_migrator has never been rotated (the period is 90 days)",
    ]);
  });
});
