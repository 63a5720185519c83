import { describe, expect, it } from "vitest";
import { formatProblem, loadSpec, SpecError, validateConfig } from "../../components/spec";
import { changed, devValues, input, prodValues, servers, services, type Values } from "../helpers/config";

function problemsOf(values: Values, opts?: Parameters<typeof input>[1]): string[] {
  const result = validateConfig(input(values, opts));
  return result.ok ? [] : result.problems.map(formatProblem);
}

describe("valid configs", () => {
  it("accepts the dev and prod factories", () => {
    expect(problemsOf(devValues())).toEqual([]);
    expect(problemsOf(prodValues())).toEqual([]);
  });
});

// Each case: one change to a valid config, and the exact line that must be reported.
const badInput: Array<[string, () => Values, string]> = [
  [
    "unknown top-level key, with suggestion",
    () => changed(devValues(), (v) => (v.sevices = {})),
    'sevices: unknown key (did you mean "services"?)',
  ],
  [
    "unknown service key, with suggestion",
    () => changed(devValues(), (v) => (services(v).inventory.isolaton = "schema")),
    'services.inventory.isolaton: unknown key (did you mean "isolation"?)',
  ],
  [
    "unknown server key for its hosting kind",
    () => changed(devValues(), (v) => (servers(v).local.instanceClass = "db.t4g.micro")),
    "servers.local.instanceClass: unknown key (valid: hosting, version, replicas, reader, pooler, host, port, adminUser, sslMode)",
  ],
  [
    "createSchemas on a service with a database of its own",
    () => changed(devValues(), (v) => (services(v).inventory.createSchemas = true)),
    "services.inventory.createSchemas: only for isolation schema: a service's own database already lets its owner role create schemas",
  ],
  [
    "unknown server reference lists the known servers",
    () => changed(devValues(), (v) => (services(v).inventory.server = "locl")),
    'services.inventory.server: unknown server "locl" (known: local) (did you mean "local"?)',
  ],
  [
    "identifier too long for PostgreSQL",
    () => changed(devValues(), (v) => (services(v).inventory.database = "d".repeat(64))),
    `services.inventory.database: "${"d".repeat(64)}" is 64 bytes; PostgreSQL truncates identifiers to 63`,
  ],
  [
    "upper-case schema would be folded",
    () => changed(devValues(), (v) => (services(v)["sv-sdk"].schemas = ["Auth"])),
    'services.sv-sdk.schemas[0]: "Auth" has upper-case letters; PostgreSQL folds unquoted names to lower case (use "auth")',
  ],
  [
    "reserved database name",
    () => changed(devValues(), (v) => (services(v).inventory.database = "postgres")),
    'services.inventory.database: "postgres" is a reserved name',
  ],
  [
    "reserved template database",
    () => changed(devValues(), (v) => (services(v).inventory.database = "template1")),
    'services.inventory.database: "template1" is a reserved name',
  ],
  [
    "schema named public",
    () => changed(devValues(), (v) => (services(v).inventory.schemas = ["public"])),
    'services.inventory.schemas[0]: "public" is a reserved name',
  ],
  [
    "names starting with pg_",
    () => changed(devValues(), (v) => (services(v).inventory.schemas = ["pg_stuff"])),
    'services.inventory.schemas[0]: "pg_stuff" starts with "pg_", which PostgreSQL reserves',
  ],
  [
    "rdsadmin is reserved",
    () => changed(devValues(), (v) => (services(v).payments.database = "rdsadmin")),
    'services.payments.database: "rdsadmin" is a reserved name',
  ],
  [
    "schema isolation without a shared database",
    () => changed(devValues(), (v) => delete services(v).payments.database),
    "services.payments.database: required when isolation is schema: the shared database the service's schemas live in",
  ],
  [
    "an RDS-only key on a container standby",
    () =>
      changed(devValues(), (v) => {
        servers(v).box = { hosting: "container", port: 55432, replicas: [{ name: "box-ro", instanceClass: "db.t4g.small" }] };
      }),
    "servers.box.replicas[0].instanceClass: only RDS replicas have instanceClass (this is a container standby)",
  ],
  [
    "a region on a local standby",
    () => changed(devValues(), (v) => (servers(v).local.replicas = [{ name: "local-ro", region: "eu-west-1" }])),
    "servers.local.replicas[0].region: only RDS replicas have region (this is a local standby)",
  ],
  [
    "a local standby on its primary's port",
    () => changed(devValues(), (v) => (servers(v).local.replicas = [{ name: "local-ro", port: servers(v).local.port }])),
    "servers.local.replicas[0].port: port 54329 is already used by servers.local",
  ],
  [
    "a local server of a major without a pinned build",
    () => changed(devValues(), (v) => (servers(v).local.version = "14")),
    "servers.local.version: hosting local runs the pinned PostgreSQL builds (15, 16, 17, 18; scripts/postgres/wheels.tsv), not 14",
  ],
  [
    "an RDS upgrade block from the same or a newer major",
    () => changed(prodValues(), (v) => (servers(v).main.upgrade = { from: "16", phase: "upgrade" })),
    "servers.main.upgrade.from: 16 is not older than version 16: an upgrade goes to a newer major (db-platform upgrade rollback clears this block)",
  ],
  [
    "an RDS upgrade without automated backups",
    () =>
      changed(prodValues(), (v) =>
        Object.assign(servers(v).main, { version: "17", backupRetentionDays: 0, upgrade: { from: "16", phase: "upgrade" } }),
      ),
    "servers.main.backupRetentionDays: a major upgrade needs automated backups (at least 1 day): RDS takes its pre-upgrade snapshot only then",
  ],
  [
    "an RDS upgrade phase that does not exist",
    () => changed(prodValues(), (v) => Object.assign(servers(v).main, { version: "17", upgrade: { from: "16", phase: "switch" } })),
    "servers.main.upgrade.phase: must be one of unprotect-replicas, detach-replicas, upgrade",
  ],
  [
    "a pool on a server without a pooler",
    () => changed(devValues(), (v) => (services(v).inventory.pool = {})),
    "services.inventory.pool: server local has no pooler; declare servers.local.pooler",
  ],
  [
    "a pool on an RDS server",
    () => changed(prodValues(), (v) => (services(v).inventory.pool = { size: 10 })),
    "services.inventory.pool: server main has no pooler; declare servers.main.pooler",
  ],
  [
    "a pool larger than the read-only login's connection limit",
    () =>
      changed(devValues(), (v) => {
        servers(v).local.pooler = {};
        services(v).inventory.pool = { size: 30 };
      }),
    "services.inventory.pool.size: 30 server connections per login is above inventory_readonly's connection limit 20: the pool could not open them",
  ],
  [
    "pools that together exceed the server's max_connections",
    () =>
      changed(devValues(), (v) => {
        servers(v).local.pooler = { defaultPoolSize: 20 };
        Object.assign(services(v), { orders: { server: "local" }, ledger: { server: "local" } });
        for (const s of Object.values(services(v))) s.pool = {};
      }),
    "servers.local.pooler: the pools of inventory, payments, profile, sv-sdk, orders, ledger may open 240 server connections; the server has max_connections 200, 40 of them kept for direct logins: lower services.<name>.pool.size",
  ],
  [
    "pools that exceed it once a login is rotated (each credential slot has a pool of its own)",
    () =>
      changed(devValues(), (v) => {
        servers(v).local.pooler = { defaultPoolSize: 20 };
        for (const s of Object.values(services(v))) s.pool = {};
        services(v).inventory.credentials = { app: { generation: 1, rotatedAt: "2026-12-01T00:00:00.000Z" } };
      }),
    "servers.local.pooler: the pools of inventory, payments, profile, sv-sdk may open 180 server connections; the server has max_connections 200, 40 of them kept for direct logins: lower services.<name>.pool.size",
  ],
  [
    "a pooler on its server's port",
    () => changed(devValues(), (v) => (servers(v).local.pooler = { port: servers(v).local.port })),
    "servers.local.pooler.port: port 54329 is already used by servers.local",
  ],
  [
    "an unknown pool mode",
    () => changed(devValues(), (v) => (servers(v).local.pooler = { mode: "statement" })),
    "servers.local.pooler.mode: must be one of transaction, session",
  ],
  [
    "two standbys on one port",
    () =>
      changed(
        devValues(),
        (v) =>
          (servers(v).local.replicas = [
            { name: "ro-a", port: 54400 },
            { name: "ro-b", port: 54400 },
          ]),
      ),
    "servers.local.replicas[1].port: port 54400 is already used by servers.local.replicas[0] (ro-a)",
  ],
  [
    "a reader that is not a replica",
    () =>
      changed(prodValues(), (v) => {
        servers(v).main.replicas = [{ name: "main-ro-1" }];
        servers(v).main.reader = "main-ro";
      }),
    'servers.main.reader: unknown replica "main-ro" (declared: main-ro-1)',
  ],
  [
    "a reader on a server without replicas",
    () => changed(prodValues(), (v) => (servers(v).studio.reader = "studio-ro")),
    'servers.studio.reader: unknown replica "studio-ro" (this server declares no replicas)',
  ],
  [
    "a cross-region replica without its network",
    () => changed(prodValues(), (v) => (servers(v).main.replicas = [{ name: "main-dr", region: "eu-west-1" }])),
    "servers.main.replicas[0].network: required for a cross-region replica: the VPC and private subnets in eu-west-1",
  ],
  [
    "a network on a same-region replica",
    () =>
      changed(
        prodValues(),
        (v) => (servers(v).main.replicas = [{ name: "main-ro-1", network: { vpcId: "vpc-1", subnetIds: ["a", "b"] } }]),
      ),
    "servers.main.replicas[0].network: only for cross-region replicas; a same-region replica uses its primary's subnet group",
  ],
  [
    "a port on an RDS replica",
    () => changed(prodValues(), (v) => (servers(v).main.replicas = [{ name: "main-ro-1", port: 6432 }])),
    "servers.main.replicas[0].port: an RDS replica listens on 5432; port is for local and container standbys",
  ],
  [
    "a replica storage ceiling below the primary's storage",
    () =>
      changed(prodValues(), (v) => {
        servers(v).main.allocatedStorage = 100;
        servers(v).main.replicas = [{ name: "main-ro-1", maxAllocatedStorage: 50 }];
      }),
    "servers.main.replicas[0].maxAllocatedStorage: must be at least the primary's allocatedStorage (100)",
  ],
  [
    "a cross-region network missing its subnets",
    () =>
      changed(
        prodValues(),
        (v) => (servers(v).main.replicas = [{ name: "main-dr", region: "eu-west-1", network: { vpcId: "vpc-1", subnet: [] } }]),
      ),
    'servers.main.replicas[0].network.subnet: unknown key (did you mean "subnetIds"?)',
  ],
  [
    "replicas on external hosting",
    () =>
      changed(devValues(), (v) => {
        servers(v).ext = { hosting: "external", host: "db.example.com", adminUser: "admin", replicas: [{ name: "ext-ro" }] };
        (v.adminPasswords as Record<string, string>).ext = "x";
      }),
    'servers.ext.replicas: hosting "external" cannot have read replicas (only rds, local, container)',
  ],
  [
    "scoped role naming a schema the service does not own",
    () => changed(devValues(), (v) => ((services(v)["sv-sdk"].roles as Values).auditor = { read: ["audits"] })),
    'services.sv-sdk.roles.auditor.read: schema "audits" is not a schema of service sv-sdk (its schemas: auth, email, audit, permissions) (did you mean "audit"?)',
  ],
  [
    "scoped role reaching another service's schema",
    () => changed(devValues(), (v) => ((services(v)["sv-sdk"].roles as Values).auditor = { write: ["payments"] })),
    'services.sv-sdk.roles.auditor.write: schema "payments" is not a schema of service sv-sdk (its schemas: auth, email, audit, permissions)',
  ],
  [
    "two services claiming one database",
    () => changed(devValues(), (v) => (services(v).orders = { server: "local", database: "inventory_db" })),
    'services.orders.database: database "inventory_db" on server local is also produced by services.inventory',
  ],
  [
    "the - to _ mapping makes two services' roles collide",
    () =>
      changed(devValues(), (v) => {
        services(v).a = { server: "local", roles: { b_app: { read: ["a"] } } };
        services(v)["a-b"] = { server: "local" };
      }),
    'services.a-b: role "a_b_app" on server local is also produced by services.a',
  ],
  [
    "a role suffix colliding with another service's built-in role",
    () =>
      changed(devValues(), (v) => {
        services(v)["inventory-app"] = { server: "local" };
        services(v).inventory.roles = { app_owner: { read: ["inventory"] } };
      }),
    'services.inventory-app: role "inventory_app_owner" on server local is also produced by services.inventory',
  ],
  [
    "two schema-isolated services with the same schema in one database",
    () => changed(devValues(), (v) => (services(v).profile.schemas = ["payments"])),
    'services.profile.schemas[0]: schema "payments" in database platform on server local is also produced by services.payments',
  ],
  [
    "a role named like the server's admin login",
    () => changed(devValues(), (v) => (services(v).platform = { server: "local", roles: { admin: { read: ["platform"] } } })),
    'services.platform.roles.admin: role "platform_admin" on server local is also produced by servers.local (its admin login)',
  ],
  [
    "a shared database that is another service's own database",
    () => changed(devValues(), (v) => (services(v).payments.database = "inventory_db")),
    'services.payments.database: "inventory_db" is the database of service inventory (isolation database); a shared database cannot be another service\'s own',
  ],
  [
    "dblink is a back door",
    () => changed(devValues(), (v) => (services(v).inventory.extensions = ["dblink"])),
    'services.inventory.extensions[0]: "dblink" reaches outside the service\'s database and is not allowed',
  ],
  [
    "an extension a non-superuser admin cannot create",
    () => changed(devValues(), (v) => (services(v).inventory.extensions = ["pgcrypto", "pg_stat_statments"])),
    'services.inventory.extensions[1]: "pg_stat_statments" is not on the extension allow-list (trusted extensions a non-superuser admin can create, as on RDS: btree_gin, btree_gist, citext, cube, dict_int, fuzzystrmatch, hstore, intarray, isn, lo, ltree, pg_trgm, pgcrypto, seg, tablefunc, tcn, tsm_system_rows, tsm_system_time, unaccent, uuid-ossp)',
  ],
  [
    "a local server on a non-loopback host",
    () => changed(devValues(), (v) => (servers(v).local.host = "10.0.0.5")),
    'servers.local.host: "10.0.0.5" is not a loopback address; use hosting external for other hosts',
  ],
  [
    "a missing admin password",
    () => changed(devValues(), (v) => delete (v.adminPasswords as Values).local),
    "adminPasswords.local: missing: servers.local (hosting local) needs its admin password (pulumi config set --secret --path 'db-platform:adminPasswords.local' …)",
  ],
  [
    "unsupported version",
    () => changed(devValues(), (v) => (servers(v).local.version = "9.6")),
    "servers.local.version: must be a supported PostgreSQL major version (14, 15, 16, 17, 18)",
  ],
  [
    "unknown hosting",
    () => changed(devValues(), (v) => (servers(v).local.hosting = "aurora")),
    "servers.local.hosting: hosting must be one of rds, local, container, external",
  ],
  [
    "local hosting in prod",
    () => changed(prodValues(), (v) => (servers(v).dev = { hosting: "container" })),
    'servers.dev.hosting: "container" is not allowed in a strict environment (prod): use rds or external',
  ],
  [
    "public RDS in prod",
    () => changed(prodValues(), (v) => (servers(v).main.publiclyAccessible = true)),
    "servers.main.publiclyAccessible: must be false in a strict environment (prod)",
  ],
  [
    "TLS off in prod",
    () => changed(prodValues(), (v) => (servers(v).main.requireTls = false)),
    "servers.main.requireTls: must be true in a strict environment (prod)",
  ],
  [
    "rds without a network",
    () => changed(prodValues(), (v) => delete v.network),
    "servers.main.network: required for hosting rds (or set the stack-wide db-platform:network)",
  ],
  [
    "duplicate replica names",
    () => changed(prodValues(), (v) => (servers(v).main.replicas = [{ name: "ro" }, { name: "ro" }])),
    'servers.main.replicas[1].name: duplicate replica name "ro"',
  ],
  [
    "a replica named like a server",
    () => changed(prodValues(), (v) => (servers(v).main.replicas = [{ name: "studio" }])),
    'servers.main.replicas[0].name: "studio" is already the name of server studio',
  ],
  [
    "a cross-region replica in the primary's region",
    () => changed(prodValues(), (v) => (servers(v).main.replicas = [{ name: "dr", region: "eu-central-1" }])),
    'servers.main.replicas[0].region: "eu-central-1" is the primary\'s region; omit region for a same-region replica',
  ],
  [
    "owner cannot be scoped",
    () => changed(devValues(), (v) => (services(v).inventory.roles = { owner: { read: ["inventory"] } })),
    'services.inventory.roles.owner: "owner" is a built-in role and cannot be scoped (scopable built-ins: app, readonly)',
  ],
  [
    "a scoped role that grants nothing",
    () => changed(devValues(), (v) => (services(v).inventory.roles = { reporting: {} })),
    "services.inventory.roles.reporting: grants nothing: give it read or write schemas",
  ],
  [
    "a move to an unknown server",
    () => changed(devValues(), (v) => (services(v).payments.move = { to: { server: "nowhere", isolation: "database" }, phase: "copy" })),
    'services.payments.move.to.server: unknown server "nowhere" (known: local)',
  ],
  [
    "a move into a shared database without naming it",
    () => changed(devValues(), (v) => (services(v).inventory.move = { to: { server: "local", isolation: "schema" }, phase: "copy" })),
    "services.inventory.move.to.database: required when isolation is schema: the shared database the service moves into",
  ],
  [
    "a move to where the service already is",
    () =>
      changed(
        devValues(),
        (v) => (services(v).payments.move = { to: { server: "local", isolation: "schema", database: "platform" }, phase: "copy" }),
      ),
    "services.payments.move.to: is where service payments already is (schema isolation, database platform on server local)",
  ],
  [
    "a move onto another service's database",
    () =>
      changed(
        devValues(),
        (v) => (services(v).payments.move = { to: { server: "local", isolation: "database", database: "inventory_db" }, phase: "copy" }),
      ),
    'services.payments.move.to.database: database "inventory_db" on server local is also produced by services.inventory',
  ],
  [
    "a move in an unknown phase",
    () => changed(devValues(), (v) => (services(v).payments.move = { to: { server: "local", isolation: "database" }, phase: "halfway" })),
    'services.payments.move.phase: Invalid option: expected one of "copy"|"serve"|"retire"|"done"',
  ],
];

describe("a move in the model", () => {
  it("keeps the service where it is and describes the target with the same roles and schemas", () => {
    const spec = loadSpec(
      input(changed(devValues(), (v) => (services(v).payments.move = { to: { server: "local", isolation: "database" }, phase: "serve" }))),
    );
    const payments = spec.services.find((s) => s.name === "payments");
    expect(payments).toMatchObject({ isolation: "schema", database: "platform", move: { phase: "serve" } });
    expect(payments?.move?.target).toMatchObject({
      isolation: "database",
      database: "payments_db",
      server: "local",
      schemas: ["payments"],
    });
    expect(payments?.move?.target.logins.map((l) => l.name)).toEqual(payments?.logins.map((l) => l.name));
    expect(payments?.move?.target.move).toBeUndefined();
  });
});

describe("bad input: one line per problem, starting with its config path", () => {
  it.each(badInput)("%s", (_title, make, expected) => {
    expect(problemsOf(make())).toContain(expected);
  });

  it("adminPasswords must be a secret", () => {
    expect(problemsOf(devValues(), { secretKeys: [] })).toContain(
      "adminPasswords: must be a secret (pulumi config set --secret --path 'db-platform:adminPasswords.<server>' …)",
    );
  });

  it("rds needs aws:region", () => {
    const result = validateConfig({ values: prodValues(), secretKeys: new Set() });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toContain("aws:region: required by servers.main (hosting rds)");
  });

  it("reports every problem at once, including problems in other entries", () => {
    const values = changed(devValues(), (v) => {
      v.sevices = {};
      servers(v).local.version = "9";
      services(v).inventory.server = "nope";
      services(v).payments.isolation = "shared";
      delete services(v).profile.database;
    });
    const lines = problemsOf(values);
    expect(lines).toHaveLength(5);
    expect(lines.map((l) => l.split(":")[0])).toEqual(
      expect.arrayContaining([
        "sevices",
        "servers.local.version",
        "services.inventory.server",
        "services.payments.isolation",
        "services.profile.database",
      ]),
    );
  });

  it("loadSpec throws a SpecError whose lines are the problems", () => {
    const bad = changed(devValues(), (v) => (services(v).inventory.server = "mian"));
    expect(() => loadSpec(input(bad))).toThrow(SpecError);
    try {
      loadSpec(input(bad));
    } catch (e) {
      expect((e as SpecError).lines()).toEqual(['services.inventory.server: unknown server "mian" (known: local)']);
    }
  });
});

describe("the typed model", () => {
  it("derives names from the service name", () => {
    const spec = loadSpec(input(devValues()));
    const sdk = spec.services.find((s) => s.name === "sv-sdk");
    expect(sdk).toMatchObject({ database: "sv_sdk_db", isolation: "database", schemas: ["auth", "email", "audit", "permissions"] });
    expect(sdk?.owner.name).toBe("sv_sdk_owner");
    expect(sdk?.logins.map((l) => [l.name, l.read, l.write])).toEqual([
      ["sv_sdk_app", ["auth", "email", "audit", "permissions"], ["auth", "email", "audit", "permissions"]],
      ["sv_sdk_readonly", ["auth", "email", "audit", "permissions"], []],
      ["sv_sdk_migrator", ["auth", "email", "audit", "permissions"], ["auth", "email", "audit", "permissions"]],
      ["sv_sdk_auditor", ["audit"], []],
    ]);
    const payments = spec.services.find((s) => s.name === "payments");
    expect(payments).toMatchObject({ database: "platform", isolation: "schema", schemas: ["payments"] });
    expect(spec.sharedDatabases).toEqual([{ server: "local", name: "platform", services: ["payments", "profile"] }]);
  });

  it("applies strict defaults in prod, one by one", () => {
    const spec = loadSpec(input(prodValues()));
    const main = spec.servers.find((s) => s.name === "main");
    expect(spec.strict).toBe(true);
    expect(main).toMatchObject({
      hosting: "rds",
      region: "eu-central-1",
      version: "16",
      instanceClass: "db.m7g.large",
      multiAz: true,
      deletionProtection: true,
      skipFinalSnapshot: false,
      backupRetentionDays: 14,
      publiclyAccessible: false,
      requireTls: true,
      maxAllocatedStorage: 500,
      masterUsername: "platform_admin",
      sslMode: "require",
      monitoringIntervalSeconds: 60,
      performanceInsightsRetentionDays: 7,
    });
  });

  it("applies the lighter defaults outside prod, still secure", () => {
    const staging = changed(prodValues(), (v) => (v.environment = "staging"));
    const main = loadSpec(input(staging)).servers.find((s) => s.name === "main");
    expect(main).toMatchObject({
      multiAz: false,
      deletionProtection: false,
      skipFinalSnapshot: false,
      backupRetentionDays: 7,
      publiclyAccessible: false,
      requireTls: true,
    });
  });

  it("keeps explicit relaxations outside prod", () => {
    const staging = changed(prodValues(), (v) => {
      v.environment = "staging";
      servers(v).main.requireTls = false;
      servers(v).main.skipFinalSnapshot = true;
    });
    const main = loadSpec(input(staging)).servers.find((s) => s.name === "main");
    expect(main).toMatchObject({ requireTls: false, skipFinalSnapshot: true });
  });
});

describe("replicas in the model", () => {
  const rdsOf = (values: Values) => {
    const server = loadSpec(input(values)).servers.find((s) => s.name === "main");
    if (server?.hosting !== "rds") throw new Error("main is not rds");
    return server;
  };

  it("defaults RDS replicas from the primary, and the reader to the first same-region replica", () => {
    const main = rdsOf(
      changed(prodValues(), (v) => {
        servers(v).main.instanceClass = "db.m7g.large";
        servers(v).main.parameters = { work_mem: "64MB" };
        servers(v).main.replicas = [
          { name: "main-dr", region: "eu-west-1", network: { vpcId: "vpc-dr", subnetIds: ["subnet-x", "subnet-y"] } },
          { name: "main-ro-1", instanceClass: "db.r7g.large", parameters: { hot_standby_feedback: 1 } },
        ];
      }),
    );
    expect(main.reader).toBe("main-ro-1");
    expect(main.replicas).toEqual([
      {
        name: "main-dr",
        region: "eu-west-1",
        crossRegion: true,
        instanceClass: "db.m7g.large",
        maxAllocatedStorage: 500,
        parameters: { work_mem: "64MB" },
        network: { vpcId: "vpc-dr", subnetIds: ["subnet-x", "subnet-y"], allowedCidrs: [], allowedSecurityGroupIds: [] },
      },
      {
        name: "main-ro-1",
        region: "eu-central-1",
        crossRegion: false,
        instanceClass: "db.r7g.large",
        maxAllocatedStorage: 500,
        parameters: { work_mem: "64MB", hot_standby_feedback: "1" },
        network: undefined,
      },
    ]);
  });

  it("sends readers to the primary when only a cross-region replica exists, unless the stack names it", () => {
    const dr = { name: "main-dr", region: "eu-west-1", network: { vpcId: "vpc-dr", subnetIds: ["subnet-x", "subnet-y"] } };
    expect(rdsOf(changed(prodValues(), (v) => (servers(v).main.replicas = [dr]))).reader).toBeUndefined();
    const named = changed(prodValues(), (v) => {
      servers(v).main.replicas = [dr];
      servers(v).main.reader = "main-dr";
    });
    expect(rdsOf(named).reader).toBe("main-dr");
  });

  it("puts local standbys on the next ports unless they name one", () => {
    const spec = loadSpec(
      input(changed(devValues(), (v) => (servers(v).local.replicas = [{ name: "ro-a" }, { name: "ro-b", port: 60000 }, { name: "ro-c" }]))),
    );
    const local = spec.servers[0];
    expect(local.reader).toBe("ro-a");
    expect(local.replicas).toEqual([
      { name: "ro-a", port: 54330 },
      { name: "ro-b", port: 60000 },
      { name: "ro-c", port: 54332 },
    ]);
  });
});

const withBackups = (values: Values, backups: Record<string, unknown>) => changed(values, (v) => (v.backups = backups));
const prodS3 = { storage: "s3", replicaRegion: "eu-west-1" };

describe("backups", () => {
  it.each<[string, () => Values, string]>([
    [
      "unknown key, with suggestion",
      () => withBackups(devValues(), { storage: "local", buckt: "b" }),
      'backups.buckt: unknown key (did you mean "bucket"?)',
    ],
    [
      "local storage next to rds servers",
      () => withBackups(prodValues(), { storage: "local" }),
      "backups.storage: local is for stacks without rds servers (servers main, studio are rds): use s3",
    ],
    [
      "an s3-only setting on local storage",
      () => withBackups(devValues(), { storage: "local", objectLockDays: 7 }),
      "backups.objectLockDays: only applies to storage s3",
    ],
    ["a port on s3 storage", () => withBackups(prodValues(), { ...prodS3, port: 9000 }), "backups.port: only applies to storage local"],
    [
      "dumps expiring before they are archived",
      () => withBackups(prodValues(), { ...prodS3, archiveAfterDays: 90, expireAfterDays: 60 }),
      "backups.expireAfterDays: must be more than archiveAfterDays (90): dumps would expire before they are archived",
    ],
    [
      "an Object Lock longer than the expiry",
      () => withBackups(prodValues(), { ...prodS3, objectLockDays: 400 }),
      "backups.objectLockDays: must be less than expireAfterDays (365)",
    ],
    [
      "prod RDS without a region for backup replication",
      () => withBackups(prodValues(), { storage: "s3" }),
      "backups.replicaRegion: required in strict environments: RDS automated backups are replicated to another region",
    ],
    [
      "prod RDS without backups at all",
      () => changed(prodValues(), (v) => delete v.backups),
      "backups: required in strict environments with rds servers: per-service backups to S3 and RDS backups replicated to another region (storage: s3, replicaRegion: …)",
    ],
    [
      "a replication region equal to the stack's",
      () => withBackups(prodValues(), { storage: "s3", replicaRegion: "eu-central-1" }),
      "backups.replicaRegion: must differ from aws:region (eu-central-1)",
    ],
    [
      "a schedule that is not an EventBridge expression",
      () => withBackups(prodValues(), { ...prodS3, schedule: "0 3 * * *" }),
      "backups.schedule: must be an EventBridge Scheduler expression such as cron(0 3 * * ? *) or rate(6 hours)",
    ],
    [
      "an RPO longer than CloudWatch can watch",
      () => withBackups(prodValues(), { ...prodS3, rpoHours: 200 }),
      "backups.rpoHours: must be at most 168 (a week): the backup-age alarm evaluates one window of rpoHours",
    ],
    [
      "a local S3 port a server already listens on",
      () => withBackups(devValues(), { storage: "local", port: 54329 }),
      "backups.port: port 54329 is already used by servers.local",
    ],
    [
      "a bucket name S3 refuses",
      () => withBackups(devValues(), { storage: "local", bucket: "My_Backups" }),
      "backups.bucket: must be a valid S3 bucket name (3-63 lower-case letters, digits, . and -)",
    ],
    [
      "a WAL archive on s3 storage (RDS archives its own)",
      () => withBackups(prodValues(), { ...prodS3, archive: { timeoutSeconds: 60 } }),
      "backups.archive: only applies to storage local: RDS archives its own WAL (servers.<name>.backupRetentionDays)",
    ],
    [
      "an archive_timeout below 10 s",
      () => withBackups(devValues(), { storage: "local", archive: { timeoutSeconds: 5 } }),
      "backups.archive.timeoutSeconds: must be at least 10",
    ],
    [
      "an unknown archive key",
      () => withBackups(devValues(), { storage: "local", archive: { retentionDays: 5 } }),
      "backups.archive.retentionDays: unknown key",
    ],
  ])("%s", (_title, make, expected) => {
    expect(problemsOf(make()).some((p) => p.startsWith(expected))).toBe(true);
  });

  it("archives local servers by default (60 s archive_timeout, a daily base backup, a week's recovery window), off only when said", () => {
    expect(loadSpec(input(withBackups(devValues(), { storage: "local" }))).backups?.archive).toEqual({
      timeoutSeconds: 60,
      baseBackupHours: 24,
      recoveryWindowDays: 7,
    });
    const tuned = withBackups(devValues(), { storage: "local", archive: { timeoutSeconds: 30, recoveryWindowDays: 3 } });
    expect(loadSpec(input(tuned)).backups?.archive).toEqual({ timeoutSeconds: 30, baseBackupHours: 24, recoveryWindowDays: 3 });
    expect(loadSpec(input(withBackups(devValues(), { storage: "local", archive: { enabled: false } }))).backups?.archive).toBeUndefined();
    expect(loadSpec(input(withBackups(prodValues(), prodS3))).backups?.archive).toBeUndefined();
  });

  it("defaults prod to a year's retention (dumps and logs), a two-week Object Lock and a day's RPO", () => {
    expect(loadSpec(input(withBackups(prodValues(), prodS3))).backups).toEqual({
      storage: "s3",
      bucket: undefined,
      rpoHours: 24,
      schedule: "cron(0 3 * * ? *)",
      archiveAfterDays: 30,
      expireAfterDays: 365,
      noncurrentExpireAfterDays: 30,
      objectLockDays: 14,
      logRetentionDays: 365,
      replicaRegion: "eu-west-1",
      port: 9400,
    });
  });

  it("defaults dev's local storage to a named bucket, no Object Lock", () => {
    const b = loadSpec(input(withBackups(devValues(), { storage: "local", port: 9500 }))).backups;
    expect(b).toMatchObject({ storage: "local", bucket: "db-platform-dev-backups", expireAfterDays: 35, objectLockDays: 0, port: 9500 });
  });
});
