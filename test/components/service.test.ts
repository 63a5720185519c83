import { beforeAll, describe, expect, it } from "vitest";
import { synthProgram } from "../../operations/stack/synth";
import type { ProgramOutputs } from "../../components/program";
import { devValues, input } from "../helpers/config";
import { Resources, resolve, T } from "../helpers/synth";

let dev: Resources;
let outputs: ProgramOutputs;

beforeAll(async () => {
  const result = await synthProgram(input(devValues()), "db-platform", "dev");
  dev = new Resources(result.resources);
  outputs = result.outputs;
});

const under = (service: string) => (r: { parent: string | null }) => r.parent?.endsWith(`ServiceDatabase::${service}`) ?? false;

describe("ServiceDatabase (isolation database)", () => {
  it("registers exactly the roles, database, schema, grants and passwords of the service", () => {
    const mine = dev.all.filter(under("inventory"));
    const count = (type: string) => mine.filter((r) => r.type === type).length;
    expect(count(T.role)).toBe(4);
    expect(count(T.database)).toBe(1);
    expect(count(T.schema)).toBe(1);
    expect(count(T.password)).toBe(3);
    // PUBLIC x2, app: db + usage + tables + sequences + functions, readonly: db + usage + tables + sequences,
    // the server's monitoring login: CONNECT
    expect(count(T.grant)).toBe(12);
    // PUBLIC's EXECUTE on functions revoked, app: tables + sequences + functions, readonly: tables + sequences
    expect(count(T.defaultPrivileges)).toBe(6);
    // the admin's membership in the owner role
    expect(count(T.grantRole)).toBe(1);
  });

  it("makes the server's admin a member of the owner role", () => {
    expect(dev.one(T.grantRole, "inventory-admin-member").props).toEqual({
      role: "platform_admin",
      grantRole: "inventory_owner",
      withAdminOption: false,
    });
  });

  it("takes PUBLIC's default EXECUTE on the owner's future functions away, database-wide", () => {
    expect(dev.one(T.defaultPrivileges, "inventory-default-functions-revoke-public").props).toEqual({
      database: "inventory_db",
      owner: "inventory_owner",
      role: "public",
      objectType: "function",
      privileges: [],
    });
  });

  it("makes the owner a NOLOGIN role that owns the database and schema", () => {
    expect(dev.one(T.role, "inventory-owner").props).toEqual({
      name: "inventory_owner",
      login: false,
      inherit: true,
      superuser: false,
      createDatabase: false,
      createRole: false,
      replication: false,
      bypassRowLevelSecurity: false,
    });
    expect(dev.one(T.database, "inventory-db").props).toEqual({
      name: "inventory_db",
      owner: "inventory_owner",
      template: "template0",
      encoding: "UTF8",
      allowConnections: true,
    });
    expect(dev.one(T.schema, "inventory-schema-inventory").props).toEqual({
      name: "inventory",
      database: "inventory_db",
      owner: "inventory_owner",
      ifNotExists: false,
      dropCascade: true,
    });
  });

  it("gives logins secret passwords, connection limits and search paths; the migrator works as the owner", () => {
    expect(dev.one(T.role, "inventory-app").props).toMatchObject({
      name: "inventory_app",
      login: true,
      password: "[secret]",
      connectionLimit: 100,
      searchPaths: ["inventory"],
      roles: [],
    });
    expect(dev.one(T.role, "inventory-readonly").props).toMatchObject({ name: "inventory_readonly", connectionLimit: 20 });
    expect(dev.one(T.role, "inventory-migrator").props).toMatchObject({
      name: "inventory_migrator",
      roles: ["inventory_owner"],
      assumeRole: "inventory_owner",
      connectionLimit: 5,
    });
    expect(dev.one(T.password, "inventory-app-password").props).toEqual({ length: 40, special: false });
  });

  it("revokes PUBLIC on the database and its public schema", () => {
    expect(dev.one(T.grant, "inventory-grant-db-revoke-public").props).toEqual({
      database: "inventory_db",
      role: "public",
      objectType: "database",
      privileges: [],
    });
    expect(dev.one(T.grant, "inventory-grant-public-schema-revoke-public").props).toEqual({
      database: "inventory_db",
      role: "public",
      objectType: "schema",
      schema: "public",
      privileges: [],
    });
  });

  it("grants read/write to the app and read to the readonly login, now and for future objects", () => {
    const grant = (n: string) => dev.one(T.grant, `inventory-grant-${n}`).props;
    expect(grant("app-db").privileges).toEqual(["CONNECT"]);
    expect(grant("readonly-db").privileges).toEqual(["CONNECT"]);
    expect(grant("app-inventory-tables")).toEqual({
      database: "inventory_db",
      role: "inventory_app",
      objectType: "table",
      schema: "inventory",
      privileges: ["DELETE", "INSERT", "SELECT", "UPDATE"],
    });
    expect(grant("readonly-inventory-tables").privileges).toEqual(["SELECT"]);
    expect(grant("app-inventory-sequences").privileges).toEqual(["SELECT", "UPDATE", "USAGE"]);
    expect(dev.one(T.defaultPrivileges, "inventory-default-app-inventory-tables").props).toEqual({
      database: "inventory_db",
      owner: "inventory_owner",
      role: "inventory_app",
      schema: "inventory",
      objectType: "table",
      privileges: ["DELETE", "INSERT", "SELECT", "UPDATE"],
    });
    expect(dev.one(T.defaultPrivileges, "inventory-default-readonly-inventory-tables").props.privileges).toEqual(["SELECT"]);
  });

  it("outputs connection URLs as secrets", async () => {
    const app = await resolve(outputs.services.inventory.urls.app);
    expect(app.secret).toBe(true);
    expect(app.value).toBe("postgresql://inventory_app:synth-inventory-app-password@127.0.0.1:54329/inventory_db?sslmode=disable");
    expect(Object.keys(outputs.services.inventory.urls)).toEqual(["app", "readonly", "migrator"]);
    expect(Object.keys(outputs.services["sv-sdk"].urls)).toEqual(["app", "readonly", "migrator", "auditor"]);
  });
});

describe("ServiceDatabase (isolation schema)", () => {
  it("creates its schema in the shared database, which is closed to PUBLIC and created once", () => {
    expect(dev.ofType(T.database).filter((d) => d.props.name === "platform")).toHaveLength(1);
    expect(dev.one(T.schema, "payments-schema-payments").props).toMatchObject({ database: "platform", owner: "payments_owner" });
    expect(dev.one(T.grant, "local-platform-shared-db-revoke-public").props).toEqual({
      database: "platform",
      role: "public",
      objectType: "database",
      privileges: [],
    });
    expect(dev.all.filter(under("payments")).filter((r) => r.type === T.database)).toHaveLength(0);
  });

  it("hands out URLs to the shared database", async () => {
    const url = await resolve(outputs.services.payments.urls.readonly);
    expect(url.value).toMatch(/^postgresql:\/\/payments_readonly:[^@]+@127\.0\.0\.1:54329\/platform\?sslmode=disable$/);
  });
});

describe("local server", () => {
  it("connects as the configured admin, not a superuser, with the secret password", () => {
    expect(dev.one(T.pgProvider, "local-postgresql").props).toEqual({
      host: "127.0.0.1",
      port: "54329",
      username: "platform_admin",
      password: "[secret]",
      database: "postgres",
      sslmode: "disable",
      superuser: "false",
      expectedVersion: "16",
      connectTimeout: "15",
      // Unbounded pool: a bounded one deadlocks the provider under parallel creates (docs/apply-speed.md).
      maxConnections: "0",
    });
  });
});

// Each server's monitoring login (components/monitoring.ts, docs/stats.md): pg_monitor and CONNECT
// on every database a service uses, nothing else; its URL a secret stack output.
describe("the monitoring login of server local", () => {
  it("is a login in pg_monitor with a generated password and no power", () => {
    expect(dev.one(T.role, "local-monitor").props).toEqual({
      name: "db_platform_monitor",
      login: true,
      password: "[secret]",
      inherit: true,
      roles: ["pg_monitor"],
      connectionLimit: 5,
      superuser: false,
      createDatabase: false,
      createRole: false,
      replication: false,
      bypassRowLevelSecurity: false,
    });
    expect(dev.one(T.password, "local-monitor-password").props).toEqual({ length: 40, special: false });
  });

  it("gets CONNECT on each service database and the shared database, and no other grant", () => {
    const grants = dev.all.filter((r) => r.type === T.grant && r.props.role === "db_platform_monitor");
    expect(grants.map((g) => [g.name, g.props.database, g.props.objectType, g.props.privileges]).sort()).toEqual(
      [
        ["inventory-grant-monitor-db", "inventory_db", "database", ["CONNECT"]],
        ["local-platform-shared-db-monitor", "platform", "database", ["CONNECT"]],
        ["sv-sdk-grant-monitor-db", "sv_sdk_db", "database", ["CONNECT"]],
      ].sort(),
    );
  });

  it("creates the statement statistics in the postgres database, and hands its URL out as a secret", async () => {
    expect(dev.one(T.extension, "local-pg-stat-statements").props).toEqual({ name: "pg_stat_statements", database: "postgres" });
    const url = await resolve(outputs.monitoring.local);
    expect(url.secret).toBe(true);
    expect(url.value).toMatch(/^postgresql:\/\/db_platform_monitor:.+@127\.0\.0\.1:54329\/postgres\?sslmode=disable$/);
  });
});
