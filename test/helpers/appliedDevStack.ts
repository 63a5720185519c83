/**
 * A real PostgreSQL 16 holding the dev stack as `pulumi up` would leave it (materialized with the
 * provider's SQL, test/helpers/materialize.ts), plus service data created as each owner role,
 * under a copy of the dev stack file named `stack` (no standby: the audit and backups read primaries),
 * with its local S3 server when asked.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { localRoot, stackS3 } from "../../cli/local";
import type { LocalS3 } from "../../cli/localS3";
import { loadSpec } from "../../components/spec";
import { LocalPostgres } from "../../cli/localPostgres";
import { readConfigFile } from "../../cli/stackConfig";
import { synth } from "../../cli/synth";
import { runCli } from "./cli";
import { materialize } from "./materialize";
import { freePort } from "./ports";
import { ROOT } from "./synth";

/** Service data the way migrations create it: as the owner role, so default privileges apply. */
const SERVICE_DATA: Array<[string, string]> = [
  [
    "inventory_db",
    `SET ROLE inventory_owner;
     CREATE TABLE inventory.items (id serial PRIMARY KEY, name text NOT NULL);
     CREATE FUNCTION inventory.item_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM inventory.items';
     RESET ROLE`,
  ],
  ["orders_db", "SET ROLE orders_owner; CREATE TABLE orders.orders (id serial PRIMARY KEY, item int); RESET ROLE"],
  [
    "platform",
    `SET ROLE payments_owner; CREATE TABLE payments.payments (id serial PRIMARY KEY, amount numeric); RESET ROLE;
     SET ROLE profile_owner; CREATE TABLE profile.profiles (id serial PRIMARY KEY, email text); RESET ROLE`,
  ],
  [
    "sv_sdk_db",
    "SET ROLE sv_sdk_owner; CREATE TABLE auth.users (id serial PRIMARY KEY); CREATE TABLE audit.events (at timestamptz); RESET ROLE",
  ],
];

export const FIXTURE_ADMIN_PASSWORD = "audit-admin-password";

/** The PostgreSQL 16 `local` server of a dev-shaped stack, where `db-platform audit --stack` finds it. */
export function appliedServer(stack: string, port: number): LocalPostgres {
  return new LocalPostgres({
    name: "local",
    version: "16",
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: FIXTURE_ADMIN_PASSWORD,
    root: localRoot(ROOT, stack),
    projectDir: ROOT,
  });
}

export interface AppliedStack {
  readonly stack: string;
  /** The stack's config file (Pulumi.<stack>.yaml in the project). */
  readonly file: string;
  /** Its synthesized resources (`synth --json` shape): the declared side, read once. */
  readonly stateFile: string;
  readonly server: LocalPostgres;
  /** The stack's local S3 server (MinIO), when asked for. */
  readonly s3?: LocalS3;
  /** `db-platform backup run` of every service (or one) to the stack's local S3 server; throws when it fails. */
  backUp(service?: string): void;
  /** Run SQL as the bootstrap superuser in one database: changes "behind the platform's back". */
  sql(database: string, text: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startAppliedDevStack(stack: string, opts: { s3?: boolean } = {}): Promise<AppliedStack> {
  const port = await freePort();
  const s3Port = await freePort();
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-stack-"));
  const stateFile = path.join(tmp, "synth.json");
  const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
  const local = doc.config["db-platform:servers"].local;
  local.port = port;
  delete local.replicas;
  doc.config["db-platform:backups"].port = s3Port;
  fs.writeFileSync(file, stringify(doc));
  const resources = await synth(readConfigFile(file), "db-platform", stack);
  fs.writeFileSync(stateFile, JSON.stringify(resources));

  const server = appliedServer(stack, port);
  const spec = loadSpec(readConfigFile(file));
  const s3 = opts.s3 ? stackS3(spec, stack, ROOT) : undefined;
  const sql = async (database: string, text: string) => {
    const c = await server.superuserClient(database);
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  const backUp = (service?: string) => {
    const r = runCli(["backup", "run", "--stack", stack, ...(service ? ["--service", service] : [])]);
    if (r.code !== 0) throw new Error(`backup run --stack ${stack}: exit ${r.code}: ${r.stderr}`);
  };
  const cleanup = async () => {
    await s3?.destroy();
    await server.destroy();
    fs.rmSync(localRoot(ROOT, stack), { recursive: true, force: true });
    fs.rmSync(file, { force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await server.start();
    await materialize(resources, "platform_admin", (db) => server.superuserClient(db));
    for (const [db, text] of SERVICE_DATA) await sql(db, text);
    await s3?.start([spec.backups?.bucket as string]);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { stack, file, stateFile, server, s3, backUp, sql, cleanup };
}
