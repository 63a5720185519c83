/**
 * A team's shared state backend: the stack's state in S3 (`DB_PLATFORM_BACKEND_URL=s3://…`), here
 * a real local MinIO, with a server the way a platform team declares one it does not host
 * (`hosting: external`, so the engine's default of a checkpoint after every step applies). Two
 * `db-platform up` of one stack at once: the engine's lock refuses one, nothing is corrupted, and
 * the next `up` and preview find the stack whole.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_PASSPHRASE, localRoot } from "../../operations/local/local";
import { LocalPostgres } from "../../operations/local/postgres";
import { LocalS3 } from "../../operations/local/s3";
import { FIXTURE_ADMIN_PASSWORD, removeStack, setStackSecret } from "../helpers/appliedDevStack";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const STACK = "s3backendtest";
const BUCKET = "db-platform-state";
const file = path.join(ROOT, `Pulumi.${STACK}.yaml`);
let tmp: string;
let s3: LocalS3;
let server: LocalPostgres;
let env: Record<string, string>;
let port: number;

/** The stack file with these services (the admin password and encryption salt kept). */
function writeStack(services: string[]): void {
  const doc = fs.existsSync(file) ? parse(fs.readFileSync(file, "utf8")) : { config: {} };
  doc.config["db-platform:environment"] = "dev";
  doc.config["db-platform:servers"] = {
    shared: { hosting: "external", version: "16", host: "127.0.0.1", port, adminUser: "platform_admin", sslMode: "disable" },
  };
  doc.config["db-platform:services"] = Object.fromEntries(services.map((s) => [s, { server: "shared" }]));
  fs.writeFileSync(file, stringify(doc));
}

/** `db-platform up` as its own process; resolves with its exit code and output. */
function upProcess(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin/db-platform.js"), "up", "--stack", STACK], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function canConnect(service: string): Promise<boolean> {
  const c = new Client({ host: "127.0.0.1", port, user: "platform_admin", password: FIXTURE_ADMIN_PASSWORD, database: `${service}_db` });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe("the stack's state in S3 (MinIO), two `up` at once", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    tmp = localRoot(ROOT, STACK);
    s3 = new LocalS3({ dir: path.join(tmp, "s3"), port: await freePort(), projectDir: ROOT });
    await s3.start([BUCKET]);
    const { accessKeyId, secretAccessKey } = s3.credentials();
    env = {
      DB_PLATFORM_BACKEND_URL: `s3://${BUCKET}?endpoint=127.0.0.1:${s3.opts.port}&disableSSL=true&s3ForcePathStyle=true&region=us-east-1`,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE,
    };
    Object.assign(process.env, env);
    port = await freePort();
    server = new LocalPostgres({
      name: "shared",
      version: "16",
      host: "127.0.0.1",
      port,
      adminUser: "platform_admin",
      adminPassword: FIXTURE_ADMIN_PASSWORD,
      root: path.join(tmp, "pg"),
      projectDir: ROOT,
    });
    await server.start();
    writeStack(["alpha", "beta"]);
    await setStackSecret(STACK, "db-platform:adminPasswords.shared", FIXTURE_ADMIN_PASSWORD);
  }, 300_000);

  afterAll(async () => {
    runCli(["destroy", "--yes", "--stack", STACK], env);
    await removeStack(STACK);
    await server?.destroy();
    await s3?.destroy();
    for (const k of Object.keys(env ?? {})) delete process.env[k];
    fs.rmSync(file, { force: true });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 300_000);

  it("applies the stack with its state in the bucket", async () => {
    const up = runCli(["up", "--stack", STACK], env);
    expect(up.stderr).not.toMatch(/error/i);
    expect(up.code).toBe(0);
    const objects = await new S3Client(s3.clientConfig()).send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(objects.Contents?.map((o) => o.Key)).toContain(`.pulumi/stacks/db-platform/${STACK}.json`);
    expect(fs.existsSync(path.join(ROOT, ".db-platform", "state", ".pulumi", "stacks", "db-platform", `${STACK}.json`))).toBe(false);
    expect(await canConnect("alpha")).toBe(true);
  }, 300_000);

  it("lets only one of two simultaneous `up` run; the next finds the stack whole", async () => {
    writeStack(["alpha", "beta", "gamma", "delta"]);
    const [a, b] = await Promise.all([upProcess(), upProcess()]);
    const refused = [a, b].filter((r) => /currently locked/.test(r.stderr));
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(r.code).not.toBe(0);
    const after = runCli(["up", "--stack", STACK], env);
    expect(after.code).toBe(0);
    expect(runCli(["preview", "--stack", STACK, "--expect-no-changes"], env).code).toBe(0);
    for (const s of ["alpha", "beta", "gamma", "delta"]) expect(await canConnect(s)).toBe(true);
  }, 600_000);
});
