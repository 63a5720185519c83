/**
 * Secrets Manager's rotation of the service logins on AWS (components/servers/loginRotation.ts,
 * docs/rotation.md "On AWS") under Pulumi's mocks, input by input: one rotation function per RDS
 * server (its code the bundled steps of operations/rotate/secretsManager.ts, which load), its
 * role, network, logs and invoke permission; a SecretRotation per service login secret on the
 * service's period; both slots from the first `up`, and `up` leaving the passwords and secret
 * values the function writes as they are. A local stack registers none of it. And the pack's
 * `login-secret-rotation` rule.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { changed, devValues, input, prodValues, services } from "../helpers/config";
import { check, find } from "../helpers/policy";
import { resolve, Resources, ROOT, synthInput, T } from "../helpers/synth";
import { synthProgram } from "../../operations/stack/synth";

const FUNCTION = "aws:lambda/function:Function";
const ROTATION = "aws:secretsmanager/secretRotation:SecretRotation";
const arnOf = (name: string) => `arn:aws:synth:eu-central-1:000000000000:${name}`;
const TAGS = (server: string) => ({ "db-platform:environment": "prod", "db-platform:server": server, "managed-by": "db-platform" });
let prod: Resources;

beforeAll(async () => {
  prod = await synthInput(input(prodValues()), "prod");
});

describe("the login rotation function of each RDS server", () => {
  it("runs the bundled rotation steps in the server's private subnets, its environment naming the server and its master secret", () => {
    const fn = prod.one(FUNCTION, "main-rotation-function").props;
    const { code, ...rest } = fn;
    expect(rest).toEqual({
      name: "prod-main-login-rotation",
      description: "db-platform prod-main: rotates the service logins' secrets (alternating slots)",
      runtime: "nodejs22.x",
      handler: "index.handler",
      role: arnOf("main-rotation-role"),
      timeout: 60,
      memorySize: 256,
      vpcConfig: { subnetIds: prod.one(T.subnetGroup, "main-subnets").props.subnetIds, securityGroupIds: ["main-rotation-sg-id"] },
      kmsKeyArn: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      loggingConfig: { logFormat: "Text", logGroup: "/aws/lambda/prod-main-login-rotation" },
      environment: {
        variables: {
          DB_PLATFORM_SERVER_HOST: "prod-main.synth.rds.invalid",
          DB_PLATFORM_SERVER_PORT: "5432",
          // The master user's password crosses this connection: always verified, whatever the server's sslMode (require here).
          DB_PLATFORM_SSLMODE: "verify-full",
          DB_PLATFORM_MASTER_SECRET_ARN: "arn:aws:secretsmanager:eu-central-1:000000000000:secret:rds!db-prod-main",
          DB_PLATFORM_ENVIRONMENT: "prod",
          NODE_EXTRA_CA_CERTS: "/var/runtime/ca-cert.pem",
        },
      },
      tags: TAGS("main"),
    });
    // The archive's one file is a CommonJS module whose handler Lambda calls.
    const text = (code as { assets: Record<string, { text: string }> }).assets["index.js"].text;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-rotation-code-")), "index.js");
    fs.writeFileSync(file, text);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = require(file) as { handler?: unknown };
    expect(typeof loaded.handler).toBe("function");
    expect(text).toContain("ALTER ROLE");
    expect(prod.ofType(FUNCTION).map((f) => f.name)).toEqual(["main-rotation-function", "studio-rotation-function"]);
  });

  it("may be invoked by Secrets Manager of its own account only", () => {
    expect(prod.one("aws:lambda/permission:Permission", "main-rotation-invoke").props).toEqual({
      action: "lambda:InvokeFunction",
      function: "prod-main-login-rotation",
      principal: "secretsmanager.amazonaws.com",
      sourceAccount: "000000000000",
    });
  });

  it("has a role that rotates only its server's login secrets, reads the master secret and uses the server key", () => {
    expect(JSON.parse(String(prod.one(T.iamRole, "main-rotation-role").props.assumeRolePolicy)).Statement).toEqual([
      { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
    ]);
    const policy = JSON.parse(String(prod.one("aws:iam/rolePolicy:RolePolicy", "main-rotation-policy").props.policy));
    const bySid = Object.fromEntries((policy.Statement as Array<{ Sid: string }>).map((s) => [s.Sid, s]));
    expect(Object.keys(bySid)).toEqual([
      "RotateTheLoginSecretsOfThisServer",
      "ReadTheMasterUserSecret",
      "UseTheServerKey",
      "WriteItsLogs",
      "NetworkInterfacesInTheVpc",
    ]);
    expect(bySid.RotateTheLoginSecretsOfThisServer).toEqual({
      Sid: "RotateTheLoginSecretsOfThisServer",
      Effect: "Allow",
      Action: [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
      ],
      Resource: "arn:aws:secretsmanager:eu-central-1:000000000000:secret:db-platform/prod/*",
      Condition: {
        StringEquals: {
          "secretsmanager:ResourceTag/db-platform:server": "main",
          "secretsmanager:ResourceTag/db-platform:environment": "prod",
        },
      },
    });
    expect(bySid.ReadTheMasterUserSecret).toMatchObject({
      Action: "secretsmanager:GetSecretValue",
      Resource: "arn:aws:secretsmanager:eu-central-1:000000000000:secret:rds!db-prod-main",
    });
    expect(bySid.UseTheServerKey).toMatchObject({
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
    });
    // Every login secret the role may touch carries its server's tag.
    for (const s of prod.ofType(T.secret).filter((s) => s.name.startsWith("inventory-")))
      expect((s.props.tags as Record<string, string>)["db-platform:server"]).toBe("main");
  });

  it("reaches its server and HTTPS only, and the server admits it; logs a year, encrypted with the server key CloudWatch Logs may use for that log group only", () => {
    expect(prod.one(T.securityGroup, "main-rotation-sg").props).toMatchObject({ name: "prod-main-login-rotation", egress: [] });
    const rule = (type: string, name: string) => prod.one(type, name).props;
    const egress = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";
    expect(rule(egress, "main-rotation-egress-postgres")).toMatchObject({
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: "main-sg-id",
    });
    expect(rule(egress, "main-rotation-egress-https")).toMatchObject({ fromPort: 443, toPort: 443, cidrIpv4: "0.0.0.0/0" });
    expect(rule(T.ingress, "main-ingress-login-rotation")).toMatchObject({
      securityGroupId: "main-sg-id",
      fromPort: 5432,
      referencedSecurityGroupId: "main-rotation-sg-id",
    });
    expect(prod.one("aws:cloudwatch/logGroup:LogGroup", "main-rotation-logs").props).toEqual({
      name: "/aws/lambda/prod-main-login-rotation",
      retentionInDays: 365,
      kmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      tags: TAGS("main"),
    });
    const key = JSON.parse(String(prod.one(T.kmsKey, "main-key").props.policy));
    expect(key.Statement.find((s: { Sid: string }) => s.Sid === "CloudWatchLogsOfTheLoginRotation")).toEqual({
      Sid: "CloudWatchLogsOfTheLoginRotation",
      Effect: "Allow",
      Principal: { Service: "logs.eu-central-1.amazonaws.com" },
      Action: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
      Resource: "*",
      Condition: {
        ArnEquals: {
          "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-central-1:000000000000:log-group:/aws/lambda/prod-main-login-rotation",
        },
      },
    });
  });
});

describe("each service login's secret", () => {
  it("is rotated by its server's function on the service's period (30 days unless `rotation` says otherwise)", async () => {
    const logins = ["app", "readonly", "migrator"];
    expect(
      prod
        .ofType(ROTATION)
        .filter((r) => r.name.startsWith("inventory-"))
        .map((r) => r.props),
    ).toEqual(
      logins.map((key) => ({
        secretId: arnOf(`inventory-${key}-secret`),
        rotationLambdaArn: arnOf("main-rotation-function"),
        rotationRules: { automaticallyAfterDays: 30 },
        rotateImmediately: false,
      })),
    );
    // Every login secret of every service has one; the `/previous` secrets are written by the function's finishSecret.
    const rotatedSecrets = new Set(prod.ofType(ROTATION).map((r) => r.props.secretId));
    const loginSecrets = prod
      .ofType(T.secret)
      .filter((s) => !String(s.props.name).endsWith("/previous") && (s.props.tags as Record<string, string>)["db-platform:service"]);
    expect(loginSecrets.length).toBeGreaterThan(0);
    for (const s of loginSecrets) expect(rotatedSecrets.has(arnOf(s.name))).toBe(true);

    // And the monitoring login's, over its two slots too; its URL names no password either.
    expect(prod.one(ROTATION, "main-monitor-rotation").props).toEqual({
      secretId: arnOf("main-monitor-secret"),
      rotationLambdaArn: arnOf("main-rotation-function"),
      rotationRules: { automaticallyAfterDays: 30 },
      rotateImmediately: false,
    });
    expect(prod.one(T.role, "main-monitor-alt").props).toMatchObject({
      name: "db_platform_monitor_alt",
      login: true,
      roles: ["db_platform_monitor"],
    });
    for (const name of ["main-monitor", "main-monitor-alt"]) expect(prod.one(T.role, name).ignoreChanges).toEqual(["password"]);
    expect((prod.one(T.secret, "main-monitor-secret").props.tags as Record<string, string>)["db-platform:login"]).toBe(
      "db_platform_monitor",
    );
    // Every secret prod declares is rotated: 16 service logins' and 2 monitoring logins' by the platform's functions, the masters' by RDS.
    const secrets = prod.ofType(T.secret).filter((s) => !String(s.props.name).endsWith("/previous"));
    expect(secrets.length + 2).toBe(prod.ofType(ROTATION).length);

    const every90 = await synthInput(input(changed(prodValues(), (v) => (services(v).inventory.rotation = "90d"))), "prod");
    expect(every90.one(ROTATION, "inventory-app-rotation").props.rotationRules).toEqual({ automaticallyAfterDays: 90 });
  });

  it("names its login and where it connects in tags; both slots exist from the first up; up leaves the passwords and secret values the function writes alone", async () => {
    const tags = prod.one(T.secret, "inventory-app-secret").props.tags as Record<string, string>;
    expect([tags["db-platform:login"], tags["db-platform:host"], tags["db-platform:port"], tags["db-platform:dbname"]]).toEqual([
      "inventory_app",
      "prod-main.synth.rds.invalid",
      "5432",
      "inventory_db",
    ]);
    // Not pooled: no previous credential's secret (only RDS Proxy needs one), and none named.
    expect(prod.all.some((x) => x.name === "inventory-app-previous-secret")).toBe(false);
    expect(tags["db-platform:previous-secret"]).toBeUndefined();
    expect(prod.one(T.role, "inventory-app-alt").props).toMatchObject({ name: "inventory_app_alt", login: true, roles: ["inventory_app"] });
    for (const name of ["inventory-app", "inventory-app-alt"]) expect(prod.one(T.role, name).ignoreChanges).toEqual(["password"]);
    expect(prod.one(T.secretVersion, "inventory-app-secret-version").ignoreChanges).toEqual(["secretString", "versionStages"]);
    // Every rotated login secret's first version keeps a label of its own: Secrets Manager never deletes it under the state.
    const versions = prod.ofType(T.secretVersion).filter((v) => v.ignoreChanges !== undefined);
    expect(versions.length).toBe(prod.ofType(ROTATION).length - 2);
    for (const v of versions) expect([v.name, v.props.versionStages]).toEqual([v.name, ["AWSCURRENT", "DBPLATFORM_INITIAL"]]);
    // The URL says where to connect; the credential is the secret's.
    const program = await synthProgram(input(prodValues()), "db-platform", "prod");
    const url = new URL((await resolve(program.outputs.services.inventory.urls.app)).value);
    expect([url.username, url.password, url.hostname]).toEqual(["inventory_app", "", "prod-main.synth.rds.invalid"]);
    expect(program.outputs.services.inventory.previousUrls).toBeUndefined();
  });

  it("on a local stack: no function, no alternate before the first `db-platform rotate`, and up owns the passwords", async () => {
    const dev = await synthInput(input(devValues()), "dev");
    expect(dev.ofType(FUNCTION)).toEqual([]);
    expect(dev.ofType(ROTATION)).toEqual([]);
    expect(dev.all.filter((r) => r.type === T.role && String(r.props.name).endsWith("_alt"))).toEqual([]);
    expect(dev.ofType(T.role).every((r) => r.ignoreChanges === undefined)).toBe(true);
  });
});

describe("the pack's login-secret-rotation rule", () => {
  const prodConfig = JSON.parse(fs.readFileSync(path.join(ROOT, "policies/config/prod.json"), "utf8"));
  const rule = (violations: ReturnType<typeof check>) =>
    violations.filter((v) => v.policy === "login-secret-rotation").map((v) => [v.enforcement, v.message]);
  const fresh = () => synthInput(input(prodValues()), "prod");

  it("passes prod as it is declared, with every rule mandatory", async () => {
    expect(check((await fresh()).all, prodConfig)).toEqual([]);
  });

  it("refuses the monitoring login's secret without rotation, and its alternate with more than its membership", async () => {
    const r = await fresh();
    const without = r.all.filter((x) => !(x.type === ROTATION && x.name === "studio-monitor-rotation"));
    expect(rule(check(without, prodConfig))).toEqual([
      [
        "mandatory",
        expect.stringContaining(
          `secret "db-platform/prod/servers/studio/monitor" (login db_platform_monitor): must be rotated by Secrets Manager`,
        ),
      ],
    ]);
    find(r.all, T.role, "main-monitor-alt").props.roles = ["db_platform_monitor", "pg_read_all_data"];
    expect(
      check(r.all, prodConfig)
        .filter((v) => v.policy === "monitoring-role")
        .map((v) => v.message),
    ).toEqual([
      expect.stringContaining("db_platform_monitor_alt is db_platform_monitor's alternate login: a member of db_platform_monitor only"),
    ]);
  });

  it("refuses, mandatory in prod, a login secret without rotation, without a function, or on too long a period", async () => {
    const r = await fresh();
    const without = r.all.filter((x) => !(x.type === ROTATION && x.name === "inventory-app-rotation"));
    find(r.all, ROTATION, "inventory-readonly-rotation").props.rotationLambdaArn = "";
    find(r.all, ROTATION, "inventory-migrator-rotation").props.rotationRules = { automaticallyAfterDays: 365 };
    expect(rule(check(without, prodConfig))).toEqual([
      [
        "mandatory",
        expect.stringContaining(
          `secret "db-platform/prod/inventory/app" (service inventory): must be rotated by Secrets Manager with a rotation function`,
        ),
      ],
      [
        "mandatory",
        expect.stringContaining(
          `secret "db-platform/prod/inventory/readonly" (service inventory): its rotation must name the server's rotation function`,
        ),
      ],
      [
        "mandatory",
        expect.stringContaining(
          `secret "db-platform/prod/inventory/migrator" (service inventory): must rotate at least every 90 days (automaticallyAfterDays is 365)`,
        ),
      ],
    ]);
    // Advisory outside the strict environments' config.
    expect(rule(check(without)).map(([level]) => level)).toEqual(["advisory", "advisory", "advisory"]);
  });
});
