/**
 * The login rotation function's four steps (operations/rotate/secretsManager.ts) for real against
 * a local PostgreSQL of each major, its admin deliberately not a superuser (standing in for the
 * RDS master user), with the Secrets Manager calls answered by a local AWS API emulator (moto,
 * from PyPI: test/helpers/awsEmulator.ts) — an emulator, labelled as such, not AWS. Secrets
 * Manager's part (invoking the steps in order, retrying one) is played by the test. And
 * `db-platform rotate`'s part on AWS (operations/rotate/onAws.ts): waiting for a rotation.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  GetSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROTATION_STEPS, type RotationTarget, rotationStep } from "../../operations/rotate/secretsManager";
import { LocalPostgres } from "../../operations/local/postgres";
import { repointChangedEndpoints, repointRotatedLogins, rotateWithSecretsManager } from "../../operations/rotate/onAws";
import type { ServiceSpec, Spec } from "../../components/spec";
import { type AwsEmulator, startAwsEmulator } from "../helpers/awsEmulator";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const ADMIN = { user: "platform_admin", password: "s3cret-admin-pass" };
let emulator: AwsEmulator;
let sm: SecretsManagerClient;

beforeAll(async () => {
  emulator = await startAwsEmulator();
  sm = new SecretsManagerClient(emulator.clientConfig);
}, 120_000);
afterAll(async () => {
  sm?.destroy();
  await emulator?.stop();
});

interface Login {
  username: string;
  password: string;
}

/** The SQLSTATE a login fails with, or `ok <current_user>`. */
async function attempt(port: number, login: Login, database: string): Promise<string> {
  const c = new Client({
    host: "127.0.0.1",
    port,
    user: login.username,
    password: login.password,
    database,
    connectionTimeoutMillis: 5000,
  });
  try {
    await c.connect();
    const { rows } = await c.query<{ who: string }>("SELECT current_user AS who");
    return `ok ${rows[0].who}`;
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function current(secretId: string, stage = "AWSCURRENT"): Promise<Login & Record<string, unknown>> {
  const { SecretString } = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }));
  return JSON.parse(SecretString as string);
}

/** Secrets Manager's part: the four steps in order with one token, each invoked twice (a retry must change nothing). */
async function rotate(secretId: string, target: RotationTarget): Promise<string> {
  const token = randomUUID();
  for (const Step of ROTATION_STEPS) {
    await rotationStep({ Step, SecretId: secretId, ClientRequestToken: token }, target, sm);
    await rotationStep({ Step, SecretId: secretId, ClientRequestToken: token }, target, sm);
  }
  return token;
}

/** A login secret in the RDS secret JSON shape, with rotation turned on (moto: no function, value unchanged). */
async function loginSecret(
  name: string,
  port: number,
  username: string,
  options: { login: string; password?: string; tags?: Record<string, string>; value?: Record<string, unknown>; previous?: boolean },
) {
  const value = JSON.stringify({
    engine: "postgres",
    host: "127.0.0.1",
    port,
    username,
    password: options.password ?? "unused",
    dbname: "orders",
    ...options.value,
  });
  // Behind RDS Proxy the stack names the previous credential's secret in a tag, and makes it.
  const previous = options.previous ? { "db-platform:previous-secret": `${name}/previous` } : {};
  const Tags = Object.entries({ "db-platform:login": options.login, ...previous, ...options.tags }).map(([Key, Value]) => ({ Key, Value }));
  const { ARN } = await sm.send(new CreateSecretCommand({ Name: name, SecretString: value, Tags }));
  await sm.send(new RotateSecretCommand({ SecretId: name, RotationRules: { AutomaticallyAfterDays: 30 }, RotateImmediately: false }));
  if (options.previous) await sm.send(new CreateSecretCommand({ Name: `${name}/previous`, SecretString: value }));
  return ARN as string;
}

describe.each(["15", "16", "17", "18"])("rotation function steps on PostgreSQL %s (Secrets Manager: moto, a local emulator)", (major) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `db-platform-rotation-fn-${major}-`));
  fs.chmodSync(root, 0o755);
  let server: LocalPostgres;
  let port: number;
  let target: RotationTarget;
  const env = `pg${major}`;

  beforeAll(async () => {
    port = await freePort();
    server = new LocalPostgres({
      name: "pg",
      version: major,
      host: "127.0.0.1",
      port,
      adminUser: ADMIN.user,
      adminPassword: ADMIN.password,
      root,
      projectDir: ROOT,
    });
    await server.start();
    // As the platform's admin (CREATEROLE, not a superuser): a login, its alternate, and two roles the function must never alter.
    const admin = new Client({ host: "127.0.0.1", port, user: ADMIN.user, password: ADMIN.password, database: "postgres" });
    await admin.connect();
    for (const sql of [
      "CREATE DATABASE orders",
      "REVOKE ALL ON DATABASE orders FROM PUBLIC",
      "CREATE ROLE orders_app LOGIN PASSWORD 'generation-0-password'",
      "CREATE ROLE orders_app_alt LOGIN IN ROLE orders_app PASSWORD 'generation-0-alt-password'",
      "GRANT CONNECT ON DATABASE orders TO orders_app",
      "CREATE ROLE wide_app LOGIN CREATEDB PASSWORD 'wide-password'",
      "CREATE ROLE wide_app_alt LOGIN IN ROLE wide_app PASSWORD 'wide-alt-password'",
      "CREATE ROLE stray_app LOGIN PASSWORD 'stray-password'",
      "CREATE ROLE stray_app_alt LOGIN PASSWORD 'stray-alt-password'",
      "CREATE ROLE lonely_app LOGIN PASSWORD 'lonely-password'",
      "CREATE ROLE orders_readonly LOGIN PASSWORD 'readonly-0'",
      "CREATE ROLE orders_readonly_alt LOGIN IN ROLE orders_readonly PASSWORD 'readonly-0-alt'",
      "CREATE ROLE moved_app LOGIN PASSWORD 'moved-0'",
      "CREATE ROLE moved_app_alt LOGIN IN ROLE moved_app PASSWORD 'moved-0-alt'",
      "CREATE ROLE shop_app LOGIN PASSWORD 'shop-0'",
      "CREATE ROLE shop_app_alt LOGIN IN ROLE shop_app PASSWORD 'shop-0-alt'",
      "CREATE ROLE pooled_app LOGIN PASSWORD 'pooled-0'",
      "CREATE ROLE unpooled_app LOGIN PASSWORD 'unpooled-0'",
      "CREATE ROLE unpooled_app_alt LOGIN IN ROLE unpooled_app PASSWORD 'unpooled-0-alt'",
      "CREATE ROLE steady_app LOGIN PASSWORD 'steady-0'",
      "CREATE ROLE labelled_app LOGIN PASSWORD 'labelled-0'",
      "CREATE ROLE labelled_app_alt LOGIN IN ROLE labelled_app PASSWORD 'labelled-0-alt'",
      "CREATE ROLE steady_app_alt LOGIN IN ROLE steady_app PASSWORD 'steady-0-alt'",
      "CREATE ROLE pooled_app_alt LOGIN IN ROLE pooled_app PASSWORD 'pooled-0-alt'",
      "GRANT CONNECT ON DATABASE orders TO orders_readonly, moved_app, shop_app, pooled_app, unpooled_app, steady_app, labelled_app",
      "GRANT CONNECT ON DATABASE orders TO wide_app, stray_app, stray_app_alt",
    ])
      await admin.query(sql);
    await admin.end();
    const masterSecretArn = (
      await sm.send(
        new CreateSecretCommand({
          Name: `rds!db-${env}`,
          SecretString: JSON.stringify({ username: ADMIN.user, password: ADMIN.password }),
        }),
      )
    ).ARN as string;
    target = { host: "127.0.0.1", port, sslMode: "disable", masterSecretArn, environment: env };
  }, 120_000);
  afterAll(async () => {
    await server?.destroy();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("behind RDS Proxy (no host tag), the new version names the service's proxy endpoint from the function's environment: a pool turned on", async () => {
    const name = `db-platform/${env}/pooled/app`;
    // The value still names the server, as before the pool; the stack's tags name no host behind the proxy.
    await loginSecret(name, port, "pooled_app", {
      login: "pooled_app",
      password: "pooled-0",
      previous: true,
      tags: { "db-platform:dbname": "orders" },
    });
    const proxy = "prod-main-pooled.endpoint.proxy-abc.eu-central-1.rds.amazonaws.com";
    await rotate(name, { ...target, proxyEndpoints: { pooled: proxy, orders: "another-service.invalid" } });
    const now = await current(name);
    expect([now.host, now.port, now.dbname, now.username]).toEqual([proxy, port, "orders", "pooled_app_alt"]);
    // testSecret logged in at the server itself, never through the proxy: the new credential works there.
    expect(await attempt(port, now, "orders")).toBe("ok pooled_app_alt");
    // A function that knows no endpoint for the service keeps the host the secret names.
    await rotate(name, { ...target, proxyEndpoints: {} });
    expect((await current(name)).host).toBe(proxy);
  });

  it("keeps the first version's own label through rotations, so Secrets Manager never deprecates the version the engine's state tracks", async () => {
    const name = `db-platform/${env}/labelled/app`;
    // Rotation on (the emulator's RotateSecret without a function shuffles the labels itself), then the version `up` writes: AWSCURRENT and the platform's label.
    await loginSecret(name, port, "labelled_app", { login: "labelled_app", password: "labelled-0" });
    const first = randomUUID();
    await sm.send(
      new PutSecretValueCommand({
        SecretId: name,
        ClientRequestToken: first,
        SecretString: JSON.stringify({
          engine: "postgres",
          host: "127.0.0.1",
          port,
          username: "labelled_app",
          password: "labelled-0",
          dbname: "orders",
        }),
        VersionStages: ["AWSCURRENT", "DBPLATFORM_INITIAL"],
      }),
    );
    for (let i = 0; i < 3; i++) await rotate(name, target);
    const stages = (await sm.send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages ?? {};
    expect(stages[first]).toEqual(["DBPLATFORM_INITIAL"]);
    expect((await current(name)).username).toBe("labelled_app_alt");
  });

  it("alternates the slots: the held credential works until the next rotation, one two rotations old is refused, RDS Proxy's previous secret follows", async () => {
    const name = `db-platform/${env}/orders/app`;
    await loginSecret(name, port, "orders_app", { login: "orders_app", password: "generation-0-password", previous: true });
    const generation0 = await current(name);

    await rotate(name, target);
    const generation1 = await current(name);
    expect(generation1.username).toBe("orders_app_alt");
    expect(generation1.password).toMatch(/^[A-Za-z0-9]{40}$/);
    expect({ host: generation1.host, port: generation1.port, dbname: generation1.dbname }).toEqual({
      host: "127.0.0.1",
      port,
      dbname: "orders",
    });
    expect(await attempt(port, generation1, "orders")).toBe("ok orders_app_alt");
    expect(await attempt(port, generation0, "orders")).toBe("ok orders_app");
    expect(await current(`${name}/previous`)).toEqual(generation0);
    // Stored as a SCRAM verifier, never the password itself.
    const c = await server.superuserClient();
    const { rows } = await c.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'orders_app_alt'");
    await c.end();
    expect(rows[0].p.startsWith("SCRAM-SHA-256$4096:")).toBe(true);
    expect(rows[0].p).not.toContain(generation1.password);

    await rotate(name, target);
    const generation2 = await current(name);
    expect(generation2.username).toBe("orders_app");
    expect(generation2.password).not.toBe(generation0.password);
    expect(await attempt(port, generation2, "orders")).toBe("ok orders_app");
    expect(await attempt(port, generation1, "orders")).toBe("ok orders_app_alt");
    expect(await attempt(port, generation0, "orders")).toBe("28P01");
    expect(await current(`${name}/previous`)).toEqual(generation1);
    const { VersionIdsToStages } = await sm.send(new DescribeSecretCommand({ SecretId: name }));
    expect(Object.values(VersionIdsToStages ?? {}).filter((s) => s.includes("AWSCURRENT"))).toHaveLength(1);
  });

  it("takes where to connect from the tags the stack keeps current (after a move or a pool change), not from the value", async () => {
    const name = `db-platform/${env}/moved/app`;
    const tags = { "db-platform:host": "127.0.0.1", "db-platform:port": String(port), "db-platform:dbname": "orders" };
    await loginSecret(name, port, "moved_app", {
      login: "moved_app",
      password: "moved-0",
      tags,
      value: { host: "old-server.invalid", port: 1, dbname: "old_db" },
    });
    await rotate(name, target);
    const now = await current(name);
    expect([now.username, now.host, now.port, now.dbname]).toEqual(["moved_app_alt", "127.0.0.1", port, "orders"]);
    expect(await attempt(port, now, "orders")).toBe("ok moved_app_alt");
  });

  it("alters only an unprivileged login of the secret's own slot pair, and a credential that does not log in never becomes current", async () => {
    // A login with a privilege beyond a service's, one whose "alternate" is not a member of it, one with no alternate.
    for (const [login, username, why] of [
      ["wide_app", "wide_app_alt", "role wide_app is not an unprivileged login"],
      ["stray_app", "stray_app", "role stray_app_alt is not a member of stray_app"],
      ["lonely_app", "lonely_app", "role lonely_app_alt does not exist"],
    ]) {
      const name = `db-platform/${env}/${login.replace(/_app$/, "")}/app`;
      await loginSecret(name, port, username, { login });
      const token = randomUUID();
      await rotationStep({ Step: "createSecret", SecretId: name, ClientRequestToken: token }, target, sm);
      await expect(rotationStep({ Step: "setSecret", SecretId: name, ClientRequestToken: token }, target, sm)).rejects.toThrow(why);
      expect((await current(name)).username).toBe(username);
    }
    // A value naming another login's role (tampered with, or another service's) is refused before anything is made; so is a secret without the tag.
    await loginSecret(`db-platform/${env}/billing/app`, port, "orders_app_alt", { login: "billing_app" });
    await expect(
      rotationStep({ Step: "createSecret", SecretId: `db-platform/${env}/billing/app`, ClientRequestToken: randomUUID() }, target, sm),
    ).rejects.toThrow("names orders_app_alt, not a slot of login billing_app");
    // A secret whose name is not its login's (made elsewhere, claiming orders' login; another environment's) is refused too.
    for (const [name, why] of [
      [`db-platform/${env}/billing/readonly`, "is not the secret of login orders_app"],
      [`db-platform/other-${env}/orders/app`, `is not the secret of login orders_app in environment ${env}`],
    ]) {
      await loginSecret(name, port, "orders_app", { login: "orders_app" });
      await expect(rotationStep({ Step: "createSecret", SecretId: name, ClientRequestToken: randomUUID() }, target, sm)).rejects.toThrow(
        why,
      );
    }
    await sm.send(new CreateSecretCommand({ Name: `db-platform/${env}/untagged`, SecretString: "{}" }));
    await sm.send(new RotateSecretCommand({ SecretId: `db-platform/${env}/untagged`, RotationRules: { AutomaticallyAfterDays: 30 } }));
    await expect(
      rotationStep({ Step: "createSecret", SecretId: `db-platform/${env}/untagged`, ClientRequestToken: randomUUID() }, target, sm),
    ).rejects.toThrow("no db-platform:login tag");
    expect(await attempt(port, { username: "wide_app", password: "wide-password" }, "orders")).toBe("ok wide_app");

    // testSecret before setSecret: the pending password is not the role's, so the rotation stops there.
    const name = `db-platform/${env}/orders/migrator`;
    await loginSecret(name, port, "orders_migrator_alt", { login: "orders_migrator" });
    const token = randomUUID();
    await rotationStep({ Step: "createSecret", SecretId: name, ClientRequestToken: token }, target, sm);
    await expect(rotationStep({ Step: "testSecret", SecretId: name, ClientRequestToken: token }, target, sm)).rejects.toThrow(
      "pending credential of orders_migrator does not log in to orders",
    );
    expect((await current(name)).username).toBe("orders_migrator_alt");
    // A step for a version that is not pending, and a secret whose rotation is off, are refused.
    await expect(rotationStep({ Step: "setSecret", SecretId: name, ClientRequestToken: randomUUID() }, target, sm)).rejects.toThrow(
      "is not pending rotation",
    );
    await sm.send(new CreateSecretCommand({ Name: `db-platform/${env}/off`, SecretString: "{}" }));
    await expect(
      rotationStep({ Step: "createSecret", SecretId: `db-platform/${env}/off`, ClientRequestToken: randomUUID() }, target, sm),
    ).rejects.toThrow("rotation is not enabled");
  });

  it("`db-platform rotate` waits for a rotation in progress, which the function's steps finish, and says where one that does not finish stands", async () => {
    const name = `db-platform/${env}/orders/readonly`;
    await loginSecret(name, port, "orders_readonly", { login: "orders_readonly", password: "readonly-0" });
    const client = () => sm;
    // Secrets Manager has started a rotation (the pending version is made) and its function is still at work.
    const token = randomUUID();
    await rotationStep({ Step: "createSecret", SecretId: name, ClientRequestToken: token }, target, sm);
    // The function finishes only once `rotate` has seen the rotation in progress.
    let seen!: () => void;
    const described = new Promise<void>((resolve) => (seen = resolve));
    const watched = {
      send: async (command: Parameters<SecretsManagerClient["send"]>[0]) => {
        const out = await sm.send(command as never);
        if (command instanceof DescribeSecretCommand) seen();
        return out;
      },
    } as unknown as SecretsManagerClient;
    const waiting = rotateWithSecretsManager(
      { service: "orders", login: "readonly", region: "us-east-1" },
      { environment: env, client: () => watched, pollMs: 100 },
    );
    await described;
    for (const Step of ["setSecret", "testSecret", "finishSecret"] as const)
      await rotationStep({ Step, SecretId: name, ClientRequestToken: token }, target, sm);
    expect(await waiting).toMatch(
      new RegExp(
        `^orders readonly \\(secret ${name}\\): rotated by Secrets Manager \\(the rotation in progress, waited for\\) in [0-9.]+ s: its secret now names orders_readonly_alt \\(version ${token}\\); orders_readonly keeps the previous credential`,
      ),
    );
    // A rotation whose function never finishes: named, with where it stands, after the time allowed.
    await rotationStep({ Step: "createSecret", SecretId: name, ClientRequestToken: randomUUID() }, target, sm);
    await expect(
      rotateWithSecretsManager(
        { service: "orders", login: "readonly", region: "us-east-1" },
        { environment: env, client, pollMs: 100, timeoutMs: 500 },
      ),
    ).rejects.toThrow(
      /is not current after 1 s; Secrets Manager retries the rotation function's steps .*: run rotate again to wait for it/,
    );
    await sm.send(new CreateSecretCommand({ Name: `db-platform/${env}/orders/reporter`, SecretString: "{}" }));
    await expect(
      rotateWithSecretsManager({ service: "orders", login: "reporter", region: "us-east-1" }, { environment: env, client }),
    ).rejects.toThrow("Secrets Manager rotation is not enabled: apply the stack (db-platform up) first");
  });
  it("`rotate` and a move's switch ask Secrets Manager to rotate, and the new version names the place that serves now", async () => {
    // Secrets Manager's part, played by the test: RotateSecret invokes the function's four steps (moto alone has no function to invoke).
    const invoking = {
      send: async (command: Parameters<SecretsManagerClient["send"]>[0]) => {
        if (!(command instanceof RotateSecretCommand)) return sm.send(command as never);
        const token = randomUUID();
        for (const Step of ROTATION_STEPS)
          await rotationStep({ Step, SecretId: String(command.input.SecretId), ClientRequestToken: token }, target, sm);
        return { VersionId: token };
      },
    } as unknown as SecretsManagerClient;
    const name = `db-platform/${env}/shop/app`;
    // The stack's tags say where the login connects now (after a move's switch); the value still names the old place.
    const tags = { "db-platform:host": "127.0.0.1", "db-platform:port": String(port), "db-platform:dbname": "orders" };
    await loginSecret(name, port, "shop_app", {
      login: "shop_app",
      password: "shop-0",
      tags,
      value: { host: "old-place.invalid", dbname: "old_db" },
    });
    const spec = { environment: env, servers: [{ name: "main", hosting: "rds", region: "us-east-1" }] } as unknown as Spec;
    const place = {
      name: "shop",
      server: "main",
      logins: [
        { key: "app", name: "shop_app", rotatedBy: "secrets-manager" },
        { key: "local", name: "shop_local" },
      ],
    } as unknown as ServiceSpec;
    const lines = await repointRotatedLogins(spec, place, { client: () => invoking, pollMs: 50 });
    expect(lines).toEqual([
      expect.stringMatching(
        /^re-pointed: shop app \(secret .*\): rotated by Secrets Manager in [0-9.]+ s: its secret now names shop_app_alt/,
      ),
    ]);
    const now = await current(name);
    expect([now.host, now.dbname]).toEqual(["127.0.0.1", "orders"]);
    expect(await attempt(port, now, "orders")).toBe("ok shop_app_alt");
    // A place on a server Secrets Manager does not serve: nothing to re-point.
    expect(await repointRotatedLogins({ ...spec, servers: [{ name: "main", hosting: "local" }] } as unknown as Spec, place)).toEqual([]);
  });
  it("after an `up`: a login whose secret names another endpoint than its URL now (a pool turned off) is rotated to it; one that matches is left alone", async () => {
    const rotated: string[] = [];
    const invoking = {
      send: async (command: Parameters<SecretsManagerClient["send"]>[0]) => {
        if (!(command instanceof RotateSecretCommand)) return sm.send(command as never);
        rotated.push(String(command.input.SecretId));
        const token = randomUUID();
        for (const Step of ROTATION_STEPS)
          await rotationStep({ Step, SecretId: String(command.input.SecretId), ClientRequestToken: token }, target, sm);
        return { VersionId: token };
      },
    } as unknown as SecretsManagerClient;
    const where = { "db-platform:host": "127.0.0.1", "db-platform:port": String(port), "db-platform:dbname": "orders" };
    // unpooled: its pool was turned off, so its value still names the proxy; steady: as declared.
    await loginSecret(`db-platform/${env}/unpooled/app`, port, "unpooled_app", {
      login: "unpooled_app",
      tags: where,
      value: { host: "prod-main-unpooled.endpoint.proxy.invalid" },
    });
    await loginSecret(`db-platform/${env}/steady/app`, port, "steady_app", { login: "steady_app", tags: where });
    const service = (name: string) => ({
      name,
      server: "main",
      logins: [{ key: "app", name: `${name}_app`, rotatedBy: "secrets-manager" }],
    });
    const spec = {
      environment: env,
      servers: [{ name: "main", hosting: "rds", region: "us-east-1" }],
      services: [service("unpooled"), service("steady")],
    } as unknown as Spec;
    const urls = {
      unpooled: { urls: { app: `postgresql://unpooled_app@127.0.0.1:${port}/orders?sslmode=require` } },
      steady: { urls: { app: `postgresql://steady_app@127.0.0.1:${port}/orders?sslmode=require` } },
    };
    const lines = await repointChangedEndpoints(spec, urls, { client: () => invoking, pollMs: 50 });
    expect(rotated).toEqual([`db-platform/${env}/unpooled/app`]);
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^re-pointed from prod-main-unpooled\\.endpoint\\.proxy\\.invalid:${port}/orders to 127\\.0\\.0\\.1:${port}/orders: unpooled app .*its secret now names unpooled_app_alt`,
        ),
      ),
    ]);
    const now = await current(`db-platform/${env}/unpooled/app`);
    expect([now.host, now.username]).toEqual(["127.0.0.1", "unpooled_app_alt"]);
    expect(await attempt(port, now, "orders")).toBe("ok unpooled_app_alt");
    // Run again (after a kill, or the next up): nothing differs any more.
    expect(await repointChangedEndpoints(spec, urls, { client: () => invoking, pollMs: 50 })).toEqual([]);
    expect(rotated).toHaveLength(1);
    // A secret it cannot read: named, with what to do.
    await expect(
      repointChangedEndpoints(
        { ...spec, services: [service("missing")] } as unknown as Spec,
        { missing: urls.steady },
        { client: () => invoking },
      ),
    ).rejects.toThrow(`missing app (secret db-platform/${env}/missing/app): cannot read where it points:`);
  });
});

describe("rotation function environment", () => {
  it("names the variable that is missing", async () => {
    const { rotationTargetFromEnv } = await import("../../operations/rotate/secretsManager");
    expect(() =>
      rotationTargetFromEnv({ DB_PLATFORM_SERVER_HOST: "h", DB_PLATFORM_SERVER_PORT: "5432", DB_PLATFORM_SSLMODE: "verify-full" }),
    ).toThrow("DB_PLATFORM_MASTER_SECRET_ARN is not set");
  });
  it("reads the pooled services' proxy endpoints, and names the variable when it is not a JSON object of strings", async () => {
    const { rotationTargetFromEnv } = await import("../../operations/rotate/secretsManager");
    const env = {
      DB_PLATFORM_SERVER_HOST: "h",
      DB_PLATFORM_SERVER_PORT: "5432",
      DB_PLATFORM_SSLMODE: "verify-full",
      DB_PLATFORM_MASTER_SECRET_ARN: "arn",
      DB_PLATFORM_ENVIRONMENT: "prod",
    };
    expect(rotationTargetFromEnv(env).proxyEndpoints).toEqual({});
    expect(rotationTargetFromEnv({ ...env, DB_PLATFORM_PROXY_ENDPOINTS: '{"orders":"p.invalid"}' }).proxyEndpoints).toEqual({
      orders: "p.invalid",
    });
    for (const bad of ["[]", '{"orders":1}', "not json"])
      expect(() => rotationTargetFromEnv({ ...env, DB_PLATFORM_PROXY_ENDPOINTS: bad })).toThrow(
        "rotation function: environment variable DB_PLATFORM_PROXY_ENDPOINTS is not a JSON object of service to endpoint",
      );
  });
});
