/**
 * A dev-shaped stack applied for real: a copy of the dev stack file under its own stack name, on
 * its own local PostgreSQL (admin deliberately not a superuser), brought up by `db-platform up`'s
 * code path — the Pulumi engine, the real PostgreSQL and random provider plugins and the policy
 * pack — then given service data by each service's own migrator login, the way migrations would.
 * Nothing here applies the stack with SQL: what PostgreSQL allows is what `pulumi up` left.
 * Suites using it must be skipped where the engine or the plugins are missing (helpers/engine.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, type OutputMap } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { DEV_PASSPHRASE, engineEnv, localCommand, localRoot, stackS3, stackWorkspace } from "../../operations/local/local";
import type { LocalS3 } from "../../operations/local/s3";
import { LocalPostgres } from "../../operations/local/postgres";
import { type ApplyContext, destroyStack, upStack } from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synth } from "../../operations/stack/synth";
import { loadSpec } from "../../components/spec";
import { runCli } from "./cli";
import { freePort } from "./ports";
import { ROOT } from "./synth";

/** Service data the way migrations create it: by each service's migrator login (working as its owner role). */
const SERVICE_DATA: Array<[string, string]> = [
  [
    "inventory",
    `CREATE TABLE inventory.items (id serial PRIMARY KEY, name text NOT NULL);
     CREATE FUNCTION inventory.item_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM inventory.items'`,
  ],
  ["orders", "CREATE TABLE orders.orders (id serial PRIMARY KEY, item int)"],
  ["payments", "CREATE TABLE payments.payments (id serial PRIMARY KEY, amount numeric)"],
  ["profile", "CREATE TABLE profile.profiles (id serial PRIMARY KEY, email text)"],
  ["sv-sdk", "CREATE TABLE auth.users (id serial PRIMARY KEY); CREATE TABLE audit.events (at timestamptz)"],
];

export const FIXTURE_ADMIN_PASSWORD = "audit-admin-password";

export interface AppliedStack {
  readonly stack: string;
  /** The stack's config file (Pulumi.<stack>.yaml in the project). */
  readonly file: string;
  /** Its synthesized resources (`synth --json` shape): the declared side, read once. */
  readonly stateFile: string;
  readonly server: LocalPostgres;
  /** The stack's local S3 server (MinIO), when asked for. */
  readonly s3?: LocalS3;
  /** The stack's outputs after `up` (connection URLs in clear: a test fixture's own secrets). */
  readonly outputs: OutputMap;
  /** The engine context the stack was applied with (for preview, destroy). */
  readonly ctx: ApplyContext;
  /** A service login's connection URL (`app`, `readonly`, `migrator`, scoped keys): through the pooler where the login is pooled. */
  url(service: string, login: string): string;
  /** The login's direct URL (its `directUrls` entry where it is pooled, else its URL). */
  directUrl(service: string, login: string): string;
  /** `db-platform backup run` of every service (or one) to the stack's local S3 server; throws when it fails. */
  backUp(service?: string): void;
  /** Run SQL as the bootstrap superuser in one database: changes "behind the platform's back". */
  sql(database: string, text: string): Promise<void>;
  cleanup(): Promise<void>;
}

export interface AppliedStackOptions {
  /** Start the stack's local S3 server (backups to MinIO); otherwise the stack has no backups. */
  readonly s3?: boolean;
  /** PostgreSQL major of the local server. @default "16" */
  readonly version?: string;
  /** Keep the dev stack's streaming standby `local-ro` (on a free port): read-only logins use it. */
  readonly replica?: boolean;
  /** Change the dev stack's services before the stack is applied. */
  readonly services?: (services: Record<string, Record<string, unknown>>) => void;
  /** A pooler beside the server (on a free port), and a pool for every service (true) or for these. */
  readonly pooler?: boolean | readonly string[];
  /**
   * Each pool's size. A rotated login has two credential slots with a pool each, and a local
   * server's pools may open 160 server connections together (docs/pooling.md): five pooled
   * services that will be rotated fit at 8. @default 10
   */
  readonly poolSize?: number;
}

/** Create the stack (if needed) and store one secret config value, encrypted by the engine. */
export async function setStackSecret(stack: string, key: string, value: string): Promise<void> {
  const ws = await stackWorkspace(ROOT, stack);
  await ws.setConfig(stack, key, { value, secret: true }, true);
}

/** Forget a test stack in the local state backend. */
export async function removeStack(stack: string): Promise<void> {
  const ws = await LocalWorkspace.create({ workDir: ROOT, envVars: engineEnv(ROOT, stack) });
  await ws.removeStack(stack, { force: true }).catch(() => undefined);
}

export async function startAppliedDevStack(stack: string, opts: AppliedStackOptions = {}): Promise<AppliedStack> {
  // Test stacks use the dev stack's documented passphrase.
  process.env.PULUMI_CONFIG_PASSPHRASE ??= DEV_PASSPHRASE;
  const version = opts.version ?? "16";
  const port = await freePort();
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-stack-"));
  const stateFile = path.join(tmp, "synth.json");
  const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
  const local = doc.config["db-platform:servers"].local;
  local.port = port;
  local.version = version;
  if (opts.replica) local.replicas = [{ name: "local-ro", port: await freePort() }];
  else delete local.replicas;
  if (opts.s3) doc.config["db-platform:backups"].port = await freePort();
  else delete doc.config["db-platform:backups"];
  opts.services?.(doc.config["db-platform:services"]);
  // The dev stack's pooler and pools only when asked for: a pooler on a free port, and a pool for
  // every service (true) or the services named, of `poolSize` server connections per login: five
  // services at the default 20 would reach max_connections.
  const services = doc.config["db-platform:services"] as Record<string, Record<string, unknown>>;
  const pooled: readonly string[] = opts.pooler === true ? Object.keys(services) : opts.pooler || [];
  if (pooled.length > 0) local.pooler = { port: await freePort() };
  else delete local.pooler;
  for (const [name, service] of Object.entries(services)) {
    if (pooled.includes(name)) service.pool = { size: opts.poolSize ?? 10 };
    else delete service.pool;
  }
  delete doc.config["db-platform:adminPasswords"];
  delete doc.encryptionsalt;
  fs.writeFileSync(file, stringify(doc));

  const server = new LocalPostgres({
    name: "local",
    version,
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: FIXTURE_ADMIN_PASSWORD,
    root: localRoot(ROOT, stack),
    projectDir: ROOT,
  });
  let s3: LocalS3 | undefined;
  let ctx: ApplyContext | undefined;
  let applied = false;
  const sql = async (database: string, text: string) => {
    const c = await server.superuserClient(database);
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  const cleanup = async () => {
    if (ctx && applied) await destroyStack(ctx).catch(() => undefined);
    // The standby, when there is one (`local stop` stops the primary too; destroy below removes it).
    if (ctx && (opts.replica || pooled.length > 0))
      await localCommand("stop", ctx.spec, stack, ROOT, () => undefined).catch(() => undefined);
    await s3?.destroy();
    await server.destroy();
    await removeStack(stack);
    fs.rmSync(localRoot(ROOT, stack), { recursive: true, force: true });
    fs.rmSync(file, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await setStackSecret(stack, "db-platform:adminPasswords.local", FIXTURE_ADMIN_PASSWORD);
    const config = readConfigFile(file);
    const spec = loadSpec(config);
    s3 = opts.s3 ? stackS3(spec, stack, ROOT) : undefined;
    fs.writeFileSync(stateFile, JSON.stringify(await synth(config, "db-platform", stack)));
    ctx = { spec, stack, project: "db-platform", projectDir: ROOT, progress: () => undefined };
    applied = true;
    const { outputs } = await upStack(ctx);
    const url = (service: string, login: string, direct = false) => {
      const services = outputs.services.value as Record<string, { urls: Record<string, string>; directUrls?: Record<string, string> }>;
      const found = (direct ? services[service]?.directUrls?.[login] : undefined) ?? services[service]?.urls[login];
      if (!found) throw new Error(`stack ${stack}: no ${login} login for service ${service}`);
      return found;
    };
    const directUrl = (service: string, login: string) => url(service, login, true);
    for (const [service, text] of SERVICE_DATA) {
      const c = new Client({ connectionString: directUrl(service, "migrator") });
      await c.connect();
      try {
        await c.query(text);
      } finally {
        await c.end();
      }
    }
    const backUp = (service?: string) => {
      const r = runCli(["backup", "run", "--stack", stack, ...(service ? ["--service", service] : [])]);
      if (r.code !== 0) throw new Error(`backup run --stack ${stack}: exit ${r.code}: ${r.stderr}`);
    };
    return { stack, file, stateFile, server, s3, outputs, ctx, url: (s, l) => url(s, l), directUrl, backUp, sql, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
