/**
 * RDS Proxy in front of the prod stack's `main` (a same-region reader main-ro-1) under Pulumi's
 * mocks, input by input: with `servers.main.pooler` and pools for orders (its own database) and
 * payments (a schema of platform), the proxy requires TLS and admits exactly their app logins by
 * their own secrets with SCRAM; its role reads exactly those secrets; its security group admits
 * the declared sources and reaches the instance only; each pooled service has an endpoint and an
 * alarm of its own; the pooled URLs and secrets point at the service's endpoint
 * while the read-only logins stay on the reader (RDS Proxy's read-only endpoints need Aurora).
 * The policy pack passes it and refuses a proxy without TLS or admitting the admin or the
 * monitoring login; validation refuses what RDS Proxy has no setting for.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ProgramOutputs } from "../../components/program";
import { formatProblem, validateConfig } from "../../components/spec";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synthProgram } from "../../operations/stack/synth";
import { evaluate, resolveConfig } from "../../policies/engine/evaluate";
import { fromSynth } from "../../policies/engine/sources";
import { resolve, Resources, ROOT, T } from "../helpers/synth";

const PROXY = "aws:rds/proxy:Proxy";
/** A pooled service's own proxy endpoint under the mocks. */
const endpointOf = (service: string) => `prod-main-${service}.endpoint.proxy-synth.eu-central-1.rds.invalid`;

function prodWith(mutate: (servers: Record<string, Record<string, unknown>>, services: Record<string, Record<string, unknown>>) => void) {
  const input = readConfigFile(`${ROOT}/Pulumi.prod.yaml`);
  const servers = structuredClone(input.values.servers) as Record<string, Record<string, unknown>>;
  const services = structuredClone(input.values.services) as Record<string, Record<string, unknown>>;
  mutate(servers, services);
  return { ...input, values: { ...input.values, servers, services } };
}

const pooled = prodWith((servers, services) => {
  servers.main.pooler = {};
  services.orders.pool = {};
  services.payments.pool = {};
});

let rs: Resources;
let outputs: ProgramOutputs;
const config = resolveConfig(JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8")));

beforeAll(async () => {
  const program = await synthProgram(pooled, "db-platform", "prod");
  rs = new Resources(program.resources);
  outputs = program.outputs;
});

/** A resource's ARN under the mocks (operations/stack/synth.ts). */
const arnOf = (name: string) => `arn:aws:synth:eu-central-1:000000000000:${name}`;

describe("RDS Proxy in front of main", () => {
  it("requires TLS and admits exactly the pooled app logins, both slots each by its own secret with SCRAM", () => {
    const proxy = rs.one(PROXY, "main-proxy").props;
    expect(proxy).toMatchObject({
      name: "prod-main",
      engineFamily: "POSTGRESQL",
      requireTls: true,
      debugLogging: false,
      idleClientTimeout: 1800,
      roleArn: arnOf("main-proxy-role"),
      vpcSubnetIds: ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"],
      vpcSecurityGroupIds: ["main-proxy-sg-id"],
    });
    // Secrets Manager rotates the logins over two slots: the proxy admits the current one's secret and the previous one's.
    expect(proxy.auths).toEqual(
      [
        ["orders", "orders_app", "app"],
        ["orders", "orders_app_alt", "app-previous"],
        ["payments", "payments_app", "app"],
        ["payments", "payments_app_alt", "app-previous"],
      ].map(([service, username, secret]) => ({
        authScheme: "SECRETS",
        clientPasswordAuthType: "POSTGRES_SCRAM_SHA_256",
        iamAuth: "DISABLED",
        secretArn: arnOf(`${service}-${secret}-secret`),
        username,
        description: `${service}: ${username}`,
      })),
    );
    expect(rs.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", "main-proxy-pool").props).toEqual({
      dbProxyName: "prod-main",
      connectionPoolConfig: { maxConnectionsPercent: 90, maxIdleConnectionsPercent: 50, connectionBorrowTimeout: 120 },
    });
    expect(rs.one("aws:rds/proxyTarget:ProxyTarget", "main-proxy-target").props).toEqual({
      dbProxyName: "prod-main",
      targetGroupName: "default",
      dbInstanceIdentifier: "prod-main",
    });
    // One proxy: studio's services have no pool.
    expect(rs.ofType(PROXY).map((p) => p.name)).toEqual(["main-proxy"]);
  });

  it("gives its role exactly those secrets, decrypted through Secrets Manager only", () => {
    const role = rs.one(T.iamRole, "main-proxy-role").props;
    expect(role.name).toBe("prod-main-rds-proxy");
    expect(JSON.parse(String(role.assumeRolePolicy))).toEqual({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { Service: "rds.amazonaws.com" }, Action: "sts:AssumeRole" }],
    });
    const policy = JSON.parse(String(rs.one("aws:iam/rolePolicy:RolePolicy", "main-proxy-secrets").props.policy));
    expect(policy.Statement).toEqual([
      {
        Sid: "PooledLoginSecrets",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [
          arnOf("orders-app-secret"),
          arnOf("orders-app-previous-secret"),
          arnOf("payments-app-secret"),
          arnOf("payments-app-previous-secret"),
        ],
      },
      {
        Sid: "DecryptThroughSecretsManager",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
        Condition: { StringEquals: { "kms:ViaService": "secretsmanager.eu-central-1.amazonaws.com" } },
      },
    ]);
  });

  it("takes its security group from the server's network rules: declared sources in, the instance out, and the instance admits it", () => {
    const group = rs.one(T.securityGroup, "main-proxy-sg").props;
    expect(group).toMatchObject({ name: "prod-main-proxy", vpcId: "vpc-0a1b2c3d4e5f60718", egress: [] });
    const rule = (type: string, name: string) => Object.fromEntries(Object.entries(rs.one(type, name).props).filter(([k]) => k !== "tags"));
    expect(rule(T.ingress, "main-proxy-ingress-sg-0")).toEqual({
      securityGroupId: "main-proxy-sg-id",
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: "sg-0a1b2c3d4e5f6app1",
      description: "PostgreSQL from sg-0a1b2c3d4e5f6app1",
    });
    expect(rule("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "main-proxy-egress-instance")).toEqual({
      securityGroupId: "main-proxy-sg-id",
      referencedSecurityGroupId: "main-sg-id",
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      description: "PostgreSQL to prod-main",
    });
    expect(rule(T.ingress, "main-ingress-proxy")).toEqual({
      securityGroupId: "main-sg-id",
      referencedSecurityGroupId: "main-proxy-sg-id",
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      description: "PostgreSQL from RDS Proxy prod-main",
    });
    // The proxy's group has no other rule.
    const onProxy = rs.all.filter((r) => r.props.securityGroupId === "main-proxy-sg-id").map((r) => r.name);
    expect(onProxy.sort()).toEqual(["main-proxy-egress-instance", "main-proxy-ingress-sg-0"]);
  });

  it("gives each pooled service an endpoint of its own in the proxy's subnets and group, and an alarm on its clients' wait above 500 ms (p99 over 5 min)", () => {
    const endpoints = rs.ofType("aws:rds/proxyEndpoint:ProxyEndpoint");
    expect(endpoints.map((e) => e.name)).toEqual(["main-proxy-orders", "main-proxy-payments"]);
    for (const service of ["orders", "payments"]) {
      expect(rs.one("aws:rds/proxyEndpoint:ProxyEndpoint", `main-proxy-${service}`).props).toMatchObject({
        dbProxyName: "prod-main",
        dbProxyEndpointName: `prod-main-${service}`,
        targetRole: "READ_WRITE",
        vpcSubnetIds: ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"],
        vpcSecurityGroupIds: ["main-proxy-sg-id"],
        tags: expect.objectContaining({ "db-platform:service": service }),
      });
      expect(rs.one(T.alarm, `main-proxy-${service}-wait`).props).toMatchObject({
        name: `prod-main-proxy-${service}-clients-waiting`,
        namespace: "AWS/RDS",
        metricName: "DatabaseConnectionsBorrowLatency",
        dimensions: { ProxyName: "prod-main", EndpointName: `prod-main-${service}` },
        extendedStatistic: "p99",
        period: 300,
        threshold: 500_000,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        alarmActions: [arnOf("main-alarms")],
        okActions: [arnOf("main-alarms")],
      });
    }
    // No alarm on the whole proxy: the services' alarms name who waits.
    expect(rs.ofType(T.alarm).filter((a) => String(a.props.metricName).startsWith("DatabaseConnectionsBorrow"))).toHaveLength(2);
  });

  it("puts RDS Proxy's clients, server connections and wait on main's dashboard, with the alarm's threshold", () => {
    const body = JSON.parse(String(rs.one("aws:cloudwatch/dashboard:Dashboard", "main-dashboard").props.dashboardBody));
    const proxy = body.widgets.filter((w: { properties: { title?: string } }) => w.properties.title?.startsWith("RDS Proxy"));
    expect(proxy.map((w: { properties: { metrics: unknown[][] } }) => w.properties.metrics.map((m) => m.slice(0, 4)))).toEqual([
      [
        ["AWS/RDS", "ClientConnections", "ProxyName", "prod-main"],
        ["AWS/RDS", "DatabaseConnections", "ProxyName", "prod-main"],
        ["AWS/RDS", "DatabaseConnectionsCurrentlyBorrowed", "ProxyName", "prod-main"],
        ["AWS/RDS", "DatabaseConnectionsCurrentlySessionPinned", "ProxyName", "prod-main"],
      ],
      ["orders", "payments"].map(() => ["AWS/RDS", "DatabaseConnectionsBorrowLatency", "ProxyName", "prod-main"]),
    ]);
    expect(proxy[1].properties.metrics.map((m: unknown[]) => m.slice(4))).toEqual(
      ["orders", "payments"].map((s) => ["EndpointName", `prod-main-${s}`, { label: s }]),
    );
    expect(proxy[1].properties.annotations).toEqual({ horizontal: [{ label: "alarm", value: 500_000 }] });
    const studio = JSON.parse(String(rs.one("aws:cloudwatch/dashboard:Dashboard", "studio-dashboard").props.dashboardBody));
    expect(JSON.stringify(studio)).not.toContain("RDS Proxy");
  });

  it("points the pooled app URLs at the service's proxy endpoint, keeps direct URLs, and leaves read-only logins on the reader", async () => {
    for (const [service, database] of [
      ["orders", "orders_db"],
      ["payments", "platform"],
    ]) {
      const out = outputs.services[service];
      expect(out.routing).toEqual({ app: "pooler → primary", readonly: "replica main-ro-1", migrator: "primary" });
      const app = new URL((await resolve(out.urls.app)).value as string);
      expect([app.hostname, app.port, app.pathname, app.username, app.searchParams.get("sslmode")]).toEqual([
        endpointOf(service),
        "5432",
        `/${database}`,
        `${service}_app`,
        "require",
      ]);
      const direct = new URL((await resolve(out.directUrls!.app)).value as string);
      expect(direct.hostname).toBe("prod-main.synth.rds.invalid");
      expect(direct.password).toBe(app.password);
      expect(Object.keys(out.directUrls ?? {})).toEqual(["app"]);
    }
    expect(outputs.services.inventory.routing.app).toBe("primary");
  });

  it("tells the login rotation function each pooled service's proxy endpoint, the host its pooled secrets name (they carry no host tag)", async () => {
    const fn = rs.one("aws:lambda/function:Function", "main-rotation-function").props as {
      environment: { variables: Record<string, unknown> };
    };
    expect(JSON.parse(String(fn.environment.variables.DB_PLATFORM_PROXY_ENDPOINTS))).toEqual({
      orders: endpointOf("orders"),
      payments: endpointOf("payments"),
    });
    const studio = rs.one("aws:lambda/function:Function", "studio-rotation-function").props as {
      environment: { variables: Record<string, unknown> };
    };
    expect(studio.environment.variables).not.toHaveProperty("DB_PLATFORM_PROXY_ENDPOINTS");
  });

  it("passes the policy pack; the pack refuses a proxy without TLS, or admitting the admin or the monitoring login", () => {
    expect(evaluate(fromSynth(rs.all), config).map((v) => v.message)).toEqual([]);
    // After apply, the instance's state names the master user's secret RDS manages.
    const masterSecret = "arn:aws:secretsmanager:eu-central-1:000000000000:secret:rds!db-prod-main";
    const withProxy = (f: (props: Record<string, unknown>) => Record<string, unknown>) =>
      rs.all.map((r) =>
        r.type === PROXY
          ? { ...r, props: f(r.props) }
          : r.type === T.rds && r.name === "main-instance"
            ? { ...r, props: { ...r.props, masterUserSecrets: [{ secretArn: masterSecret }] } }
            : r,
      );
    const auths = (rs.one(PROXY, "main-proxy").props.auths as Array<Record<string, unknown>>).slice(0, 1);
    const cases: Array<[Record<string, unknown> | ((p: Record<string, unknown>) => Record<string, unknown>), string]> = [
      [{ requireTls: false }, 'rds-proxy-tls: RDS Proxy "prod-main" must have requireTls true'],
      [
        { auths: [...auths, { ...auths[0], username: "platform_admin" }] },
        'rds-proxy-service-logins-only: RDS Proxy "prod-main" admits "platform_admin", an RDS master user (the platform\'s admin): only service logins may be pooled',
      ],
      [
        { auths: [{ ...auths[0], username: "db_platform_monitor" }] },
        'rds-proxy-service-logins-only: RDS Proxy "prod-main" admits the monitoring login "db_platform_monitor": only service logins may be pooled',
      ],
      [
        { auths: [{ ...auths[0], secretArn: masterSecret }] },
        'rds-proxy-service-logins-only: RDS Proxy "prod-main" admits the master user\'s RDS-managed secret',
      ],
      [
        { auths: [{ ...auths[0], clientPasswordAuthType: "POSTGRES_MD5" }] },
        'rds-proxy-service-logins-only: RDS Proxy "prod-main" must admit orders_app by its secret with SCRAM-SHA-256 (authScheme SECRETS, clientPasswordAuthType POSTGRES_SCRAM_SHA_256)',
      ],
    ];
    for (const [change, message] of cases) {
      const mutated = withProxy((p) => ({ ...p, ...(change as Record<string, unknown>) }));
      expect(evaluate(fromSynth(mutated), config).map((v) => `${v.policy}: ${v.message}`)).toEqual([message]);
    }
  });
});

describe("validation of RDS Proxy", () => {
  const problems = (mutate: Parameters<typeof prodWith>[0]) => {
    const r = validateConfig(prodWith(mutate));
    return r.ok ? [] : r.problems.map(formatProblem);
  };
  it("refuses a pool size, session mode and more idle connections than connections, each with its path", () => {
    expect(problems((servers) => (servers.main.pooler = { maxConnectionsPercent: 40, maxIdleConnectionsPercent: 60 }))).toEqual([
      "servers.main.pooler.maxIdleConnectionsPercent: must be at most maxConnectionsPercent (40)",
    ]);
    expect(
      problems((servers, services) => {
        servers.main.pooler = {};
        services.orders.pool = { size: 10, mode: "session" };
      }),
    ).toEqual([
      "services.orders.pool.size: RDS Proxy has no pool size per service: it opens up to each login's connection limit, within servers.main.pooler.maxConnectionsPercent",
      "services.orders.pool.mode: RDS Proxy multiplexes per transaction (a session that sets state is pinned to its connection): leave mode out, or connect directly",
    ]);
  });
  it("refuses more pooled services than RDS Proxy has endpoints, and a service whose endpoint name AWS would refuse", () => {
    const many = problems((servers, services) => {
      servers.main.pooler = {};
      for (let i = 1; i <= 21; i++) services[`svc${i}`] = { server: "main", database: `svc${i}_db`, pool: {} };
    });
    expect(many).toEqual([
      "servers.main.pooler: 21 pooled services, each with an RDS Proxy endpoint of its own: a proxy has at most 20; pool at most 20 services on main",
    ]);
    const long = `s${"x".repeat(53)}`;
    expect(
      problems((servers, services) => {
        servers.main.pooler = {};
        services[long] = { server: "main", database: "long_db", pool: {} };
        services["trailing-"] = { server: "main", database: "trailing_db", pool: {} };
      }),
    ).toEqual([
      `services.${long}.pool: its RDS Proxy endpoint would be named prod-main-${long}: at most 63 characters, no double or trailing hyphen; rename the service or connect it directly`,
      "services.trailing-.pool: its RDS Proxy endpoint would be named prod-main-trailing-: at most 63 characters, no double or trailing hyphen; rename the service or connect it directly",
    ]);
  });
  it("refuses a pool on an RDS server without a pooler", () => {
    expect(problems((_servers, services) => (services.orders.pool = {}))).toEqual([
      "services.orders.pool: server main has no pooler; declare servers.main.pooler",
    ]);
  });
});
