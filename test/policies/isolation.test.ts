/**
 * Isolation rules: each case starts from the synthesized dev stack (compliant) and makes one
 * change, like a person adding a raw resource in index.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { UNKNOWN } from "../../policies/engine/types";
import { check, find, happyPath, type Mutable, raw, summary } from "../helpers/policy";
import { STACK_FILES, T } from "../helpers/synth";

let base: Mutable[];
let provider: string;
beforeAll(async () => {
  base = await happyPath("Pulumi.dev.yaml");
  provider = find(base, T.pgProvider, "local-postgresql").urn;
});

const withExtra = (...extra: Mutable[]) => [...structuredClone(base), ...extra];
const grant = (name: string, props: Record<string, unknown>) => raw(T.grant, name, provider, props);

describe("the happy path", () => {
  it("has no violation at all", () => {
    expect(check(base)).toEqual([]);
  });
});

// [case, extra resource(s), policy, exact message]
const escapes: Array<[string, () => Mutable[], string, string]> = [
  [
    "CONNECT on another service's database",
    () => [grant("x", { role: "orders_app", database: "inventory_db", objectType: "database", privileges: ["CONNECT"] })],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted CONNECT on database "inventory_db" of service inventory on server local',
  ],
  [
    "USAGE on another service's schema",
    () => [grant("x", { role: "orders_app", database: "inventory_db", objectType: "schema", schema: "inventory", privileges: ["USAGE"] })],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted USAGE on schemas in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "SELECT on another service's tables",
    () => [
      grant("x", { role: "orders_readonly", database: "inventory_db", objectType: "table", schema: "inventory", privileges: ["SELECT"] }),
    ],
    "no-cross-service-privileges",
    'role "orders_readonly" (service orders) must not be granted SELECT on tables in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "a sequence",
    () => [
      grant("x", { role: "orders_app", database: "inventory_db", objectType: "sequence", schema: "inventory", privileges: ["USAGE"] }),
    ],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted USAGE on sequences in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "a function",
    () => [
      grant("x", { role: "orders_app", database: "inventory_db", objectType: "function", schema: "inventory", privileges: ["EXECUTE"] }),
    ],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted EXECUTE on functions in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "a procedure",
    () => [
      grant("x", { role: "orders_app", database: "inventory_db", objectType: "procedure", schema: "inventory", privileges: ["EXECUTE"] }),
    ],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted EXECUTE on procedures in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "a column",
    () => [
      grant("x", {
        role: "orders_app",
        database: "inventory_db",
        objectType: "column",
        schema: "inventory",
        objects: ["items"],
        columns: ["price"],
        privileges: ["SELECT"],
      }),
    ],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted SELECT on columns in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "the public schema of another service's database",
    () => [grant("x", { role: "orders_app", database: "inventory_db", objectType: "schema", schema: "public", privileges: ["USAGE"] })],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted USAGE on schemas in schema "public" in database "inventory_db" of service inventory on server local',
  ],
  [
    "another service's schema in the shared database",
    () => [grant("x", { role: "payments_app", database: "platform", objectType: "table", schema: "profile", privileges: ["SELECT"] })],
    "no-cross-service-privileges",
    'role "payments_app" (service payments) must not be granted SELECT on tables in schema "profile" in database "platform" of service profile on server local',
  ],
  [
    "CREATE on the shared database",
    () => [grant("x", { role: "payments_app", database: "platform", objectType: "database", privileges: ["CONNECT", "CREATE"] })],
    "no-cross-service-privileges",
    'role "payments_app" (service payments) must hold at most CONNECT, TEMPORARY on shared database "platform" on server local (its NOLOGIN owner role also CREATE: services.<name>.createSchemas), and only when its service has a schema there; found CONNECT, CREATE on database "platform"',
  ],
  [
    "CREATE on the shared database for the owner role of a service without a schema there",
    () => [grant("x", { role: "inventory_owner", database: "platform", objectType: "database", privileges: ["CONNECT", "CREATE"] })],
    "no-cross-service-privileges",
    'role "inventory_owner" (service inventory) must hold at most CONNECT, TEMPORARY on shared database "platform" on server local (its NOLOGIN owner role also CREATE: services.<name>.createSchemas), and only when its service has a schema there; found CONNECT, CREATE on database "platform"',
  ],
  [
    "CONNECT on the shared database for a service without a schema there",
    () => [grant("x", { role: "inventory_app", database: "platform", objectType: "database", privileges: ["CONNECT"] })],
    "no-cross-service-privileges",
    'role "inventory_app" (service inventory) must hold at most CONNECT, TEMPORARY on shared database "platform" on server local (its NOLOGIN owner role also CREATE: services.<name>.createSchemas), and only when its service has a schema there; found CONNECT on database "platform"',
  ],
  [
    "default privileges handing another service's future tables",
    () => [
      raw(T.defaultPrivileges, "x", provider, {
        database: "inventory_db",
        owner: "inventory_owner",
        role: "orders_app",
        schema: "inventory",
        objectType: "table",
        privileges: ["SELECT"],
      }),
    ],
    "no-cross-service-privileges",
    'role "orders_app" (service orders) must not be granted default privileges (SELECT) on future tables in schema "inventory" in database "inventory_db" of service inventory on server local',
  ],
  [
    "default privileges of another service's owner into one's own schema",
    () => [
      raw(T.defaultPrivileges, "x", provider, {
        database: "orders_db",
        owner: "inventory_owner",
        role: "orders_app",
        schema: "orders",
        objectType: "table",
        privileges: ["SELECT"],
      }),
    ],
    "no-cross-service-privileges",
    'default privileges of objects created by "inventory_owner" (service inventory) must not be given to role "orders_app" (service orders) on server local',
  ],
  [
    "a direct membership in another service's role (GrantRole)",
    () => [raw(T.grantRole, "x", provider, { role: "orders_app", grantRole: "inventory_owner" })],
    "no-cross-service-membership",
    'role "orders_app" (service orders) must not be a member of role "inventory_owner" (service inventory) on server local',
  ],
  [
    "a membership chain of length 2 through a role of no service",
    () => [
      raw(T.role, "bridge", provider, { name: "bridge", roles: ["inventory_owner"], login: false }),
      raw(T.grantRole, "x", provider, { role: "orders_readonly", grantRole: "bridge" }),
    ],
    "no-cross-service-membership",
    'role "orders_readonly" (service orders) must not be a member of role "inventory_owner" (service inventory) (through orders_readonly -> bridge -> inventory_owner) on server local',
  ],
  [
    "membership in pg_read_all_data",
    () => [raw(T.grantRole, "x", provider, { role: "orders_readonly", grantRole: "pg_read_all_data" })],
    "no-cross-service-membership",
    'role "orders_readonly" (service orders) must not be a member of cluster-wide role "pg_read_all_data" on server local',
  ],
  [
    "a grant to PUBLIC on a service database",
    () => [grant("x", { role: "public", database: "inventory_db", objectType: "database", privileges: ["CONNECT"] })],
    "no-public-access",
    'PUBLIC must not be granted CONNECT on database "inventory_db" on server local',
  ],
  [
    "a grant to PUBLIC on a shared database schema",
    () => [grant("x", { role: "PUBLIC", database: "platform", objectType: "table", schema: "payments", privileges: ["SELECT"] })],
    "no-public-access",
    'PUBLIC must not be granted SELECT on tables in database "platform" on server local',
  ],
  [
    "a grant to a role the stack does not manage",
    () => [grant("x", { role: "analytics", database: "inventory_db", objectType: "database", privileges: ["CONNECT"] })],
    "no-unmanaged-grantees",
    'role "analytics" must be declared by the stack on server local before it is granted anything',
  ],
  [
    "dblink in a service database",
    () => [raw(T.extension, "x", provider, { name: "dblink", database: "inventory_db" })],
    "no-database-backdoors",
    'extension "dblink" must not be installed in database "inventory_db" on server local: it reaches other databases',
  ],
  [
    "postgres_fdw in a service database",
    () => [raw(T.extension, "x", provider, { name: "postgres_fdw", database: "orders_db" })],
    "no-database-backdoors",
    'extension "postgres_fdw" must not be installed in database "orders_db" on server local: it reaches other databases',
  ],
  [
    "a foreign server",
    () => [raw("postgresql:index/server:Server", "x", provider, { serverName: "other", fdwName: "postgres_fdw" })],
    "no-database-backdoors",
    'foreign server "other" must not exist on server local: cross-database access is by API only',
  ],
  [
    "a user mapping",
    () => [raw("postgresql:index/userMapping:UserMapping", "x", provider, { serverName: "other", userName: "orders_app" })],
    "no-database-backdoors",
    'user mapping "other" must not exist on server local: cross-database access is by API only',
  ],
  [
    "a subscription",
    () => [
      raw("postgresql:index/subscription:Subscription", "x", provider, { name: "pull", database: "orders_db", publications: ["inv"] }),
    ],
    "no-database-backdoors",
    'subscription "pull" must not exist on server local: cross-database access is by API only',
  ],
  [
    "a grant on a foreign server",
    () => [
      grant("x", { role: "orders_app", database: "orders_db", objectType: "foreign_server", objects: ["other"], privileges: ["USAGE"] }),
    ],
    "no-database-backdoors",
    'role "orders_app" must not be granted USAGE on a foreign server on server local',
  ],
  [
    "the monitoring login with more than CONNECT",
    () => [
      grant("x", { role: "db_platform_monitor", database: "orders_db", objectType: "table", schema: "orders", privileges: ["SELECT"] }),
    ],
    "monitoring-role",
    'db_platform_monitor may hold CONNECT on databases only; found table privileges (SELECT) in database "orders_db"',
  ],
  [
    "the monitoring login joining another role",
    () => [raw(T.grantRole, "x", provider, { role: "db_platform_monitor", grantRole: "pg_read_all_data" })],
    "monitoring-role",
    "db_platform_monitor takes no membership but pg_monitor, and no role joins it",
  ],
  [
    "another role outside the services joining a built-in role",
    () => [
      raw(T.role, "x", provider, {
        name: "dashboards",
        login: true,
        roles: ["pg_monitor"],
        ...{ superuser: false, createDatabase: false, createRole: false, replication: false, bypassRowLevelSecurity: false },
      }),
    ],
    "monitoring-role",
    'role "dashboards" must not be a member of pg_monitor: only the monitoring login db_platform_monitor joins a built-in role (pg_monitor)',
  ],
];

describe("each escape is a mandatory violation naming the role, object and service", () => {
  it.each(escapes)("%s", (_title, extra, policy, message) => {
    const vs = check(withExtra(...extra()));
    expect(summary(vs)).toContainEqual([policy, "mandatory", message]);
  });
});

describe("changes to the platform's own resources", () => {
  it("a service role with SUPERUSER (or any power attribute)", () => {
    for (const [prop, sql] of [
      ["superuser", "SUPERUSER"],
      ["createRole", "CREATEROLE"],
      ["createDatabase", "CREATEDB"],
      ["replication", "REPLICATION"],
      ["bypassRowLevelSecurity", "BYPASSRLS"],
    ]) {
      const rs = structuredClone(base);
      find(rs, T.role, "orders-app").props[prop] = true;
      expect(summary(check(rs)), prop).toEqual([
        ["service-roles-unprivileged", "mandatory", `role "orders_app" (service orders) must not be ${sql}`],
      ]);
    }
  });

  it("a Role's roles list reaching another service", () => {
    const rs = structuredClone(base);
    find(rs, T.role, "orders-migrator").props.roles = ["orders_owner", "inventory_app"];
    expect(summary(check(rs))).toEqual([
      [
        "no-cross-service-membership",
        "mandatory",
        'role "orders_migrator" (service orders) must not be a member of role "inventory_app" (service inventory) on server local',
      ],
    ]);
  });

  it("a service database whose PUBLIC revoke was removed", () => {
    const rs = structuredClone(base).filter((r) => r.name !== "inventory-grant-db-revoke-public");
    expect(summary(check(rs))).toEqual([
      [
        "no-public-access",
        "mandatory",
        'database "inventory_db" (service inventory) must have PUBLIC\'s CONNECT and TEMPORARY revoked (a postgresql.Grant to role "public" with no privileges)',
      ],
    ]);
  });

  it("the shared database without its PUBLIC revoke", () => {
    const rs = structuredClone(base).filter((r) => r.name !== "local-platform-shared-db-revoke-public");
    expect(summary(check(rs))).toContainEqual([
      "no-public-access",
      "mandatory",
      'database "platform" (shared) must have PUBLIC\'s CONNECT and TEMPORARY revoked (a postgresql.Grant to role "public" with no privileges)',
    ]);
  });

  it("a role password that is not a secret", () => {
    const rs = structuredClone(base);
    find(rs, T.role, "orders-app").props.password = "hunter2";
    expect(summary(check(rs))).toEqual([["credentials-are-secrets", "mandatory", "password of orders-app must be a Pulumi secret"]]);
  });
});

describe("ownership comes from the graph, not from names", () => {
  it("does not flag the same names on another server", async () => {
    const seed = await happyPath("examples/seed-000-swisper/Pulumi.prod.yaml");
    const studio = find(seed, T.pgProvider, "studio-postgresql").urn;
    const extra = [
      raw(T.role, "lookalike-role", studio, { name: "swisper_app", login: true, superuser: false }),
      raw(T.database, "lookalike-db", studio, { name: "swisper" }),
      raw(T.grant, "lookalike-grant", studio, {
        role: "swisper_app",
        database: "swisper",
        objectType: "database",
        privileges: ["CONNECT"],
      }),
    ];
    expect(check([...seed, ...extra], { all: "mandatory" })).toEqual([]);
  });

  it("but flags the real thing on the same server", async () => {
    const seed = await happyPath("examples/seed-000-swisper/Pulumi.prod.yaml");
    const studio = find(seed, T.pgProvider, "studio-postgresql").urn;
    const extra = [
      raw(T.grant, "reach", studio, { role: "studio_app", database: "swisper", objectType: "database", privileges: ["CONNECT"] }),
    ];
    // "swisper" is not a database on server studio: the grant reaches outside studio's own.
    expect(summary(check([...seed, ...extra]))).toEqual([
      [
        "no-cross-service-privileges",
        "mandatory",
        'role "studio_app" (service studio) must not be granted CONNECT on database "swisper" of no service on server studio',
      ],
    ]);
  });

  it("attributes a renamed service role by its component, whatever its name", () => {
    const rs = structuredClone(base);
    find(rs, T.role, "orders-app").props.name = "totally_unrelated_name";
    for (const g of rs.filter((r) => r.props.role === "orders_app")) g.props.role = "totally_unrelated_name";
    const vs = check(
      withExtraOn(
        rs,
        grant("x", { role: "totally_unrelated_name", database: "inventory_db", objectType: "database", privileges: ["CONNECT"] }),
      ),
    );
    expect(summary(vs)).toEqual([
      [
        "no-cross-service-privileges",
        "mandatory",
        'role "totally_unrelated_name" (service orders) must not be granted CONNECT on database "inventory_db" of service inventory on server local',
      ],
    ]);
  });
});

function withExtraOn(rs: Mutable[], ...extra: Mutable[]): Mutable[] {
  return [...rs, ...extra];
}

describe("unknown values at preview", () => {
  it("are reported as unverifiable (advisory), not passed and not blocking", () => {
    const vs = check(
      withExtra(grant("pending", { role: UNKNOWN, database: "inventory_db", objectType: "database", privileges: ["CONNECT"] })),
    );
    expect(summary(vs)).toEqual([
      ["no-cross-service-privileges", "advisory", "pending: cannot verify isolation during preview (role, database or schema is unknown)"],
      ["no-unmanaged-grantees", "advisory", "pending: cannot verify the grantee during preview (role is unknown)"],
    ]);
  });
});

describe("the seed topologies", () => {
  it.each(STACK_FILES)("%s passes with zero violations under the strictest config", async (file) => {
    expect(
      check(await happyPath(file), {
        all: "mandatory",
        "rds-production-protection": { required: file.includes("prod") },
        "rds-backup-retention": { minimumDays: 7 },
      }),
    ).toEqual([]);
  });
});
