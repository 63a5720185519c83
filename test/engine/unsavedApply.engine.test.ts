/**
 * A local stack saves its state once, at the end of an operation. `db-platform up` killed with
 * SIGKILL mid-apply (engine, plugins and all) leaves roles and databases the state does not
 * know; the next `up` must recover on its own (release the lock, refresh, drop what the dead
 * operation created) and then apply the whole stack, with nothing left to change.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_PASSPHRASE } from "../../operations/local/local";
import { LocalPostgres } from "../../operations/local/postgres";
import { descendants } from "../../operations/local/processes";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { ROOT } from "../helpers/synth";
import { type LocalStack, localStack } from "../helpers/localStack";

const STACK = "unsavedtest";
const marker = path.join(ROOT, ".db-platform", "state", `${STACK}.applying.json`);
const env = { PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE };
let server: LocalPostgres;
let fixture: LocalStack;

const SERVICES = Array.from({ length: 12 }, (_, i) => `svc${String(i).padStart(2, "0")}`);

async function superuserSql(text: string): Promise<number> {
  const c = await server.superuserClient();
  try {
    return (await c.query(text)).rowCount ?? 0;
  } finally {
    await c.end();
  }
}

const monitorExists = async () => (await superuserSql("SELECT 1 FROM pg_roles WHERE rolname = 'db_platform_monitor'")) > 0;

async function serviceRoles(): Promise<number> {
  let c: Client;
  try {
    c = await server.superuserClient();
  } catch {
    return 0;
  }
  try {
    const r = await c.query("SELECT count(*)::int AS n FROM pg_roles WHERE rolname ~ '^svc'");
    return r.rows[0].n as number;
  } finally {
    await c.end();
  }
}

describe("an up killed before the engine saved the state", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    const services = Object.fromEntries(
      SERVICES.map((s, i) => [s, i % 4 === 3 ? { server: "local", isolation: "schema", database: "shared" } : { server: "local" }]),
    );
    fixture = await localStack(STACK, services);
    server = fixture.server;
    // Started apart from the `up` that gets killed, so the kill cannot take the server down.
    expect(runCli(["local", "start", "--stack", STACK], env).code).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await fixture?.cleanup();
    fs.rmSync(marker, { force: true });
  }, 300_000);

  it("recovers on the next up, which then applies everything", async () => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin/db-platform.js"), "up", "--stack", STACK], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Kill it once the apply is under way.
    const deadline = Date.now() + 240_000;
    while ((await serviceRoles()) < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Everything the `up` started dies at once, as in a crash: the CLI, the engine, the language
    // host and the plugins (which the engine starts in process groups of their own).
    const tree = [child.pid as number, ...descendants(child.pid as number).map((p) => p.pid)];
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await exited;
    const rolesLeft = await serviceRoles();
    // The kill came mid-operation: its marker is left, and it had created roles but not all 48.
    expect(fs.existsSync(marker)).toBe(true);
    expect(rolesLeft).toBeGreaterThanOrEqual(6);
    expect(rolesLeft).toBeLessThan(SERVICES.length * 4);
    // The server's monitoring login: whether the dead up had created it depends on the kill's
    // timing. Make sure it exists, as the provider creates it, so the recovery of it is tested every time.
    if (!(await monitorExists())) await superuserSql("CREATE ROLE db_platform_monitor LOGIN IN ROLE pg_monitor");

    const up = runCli(["up", "--stack", STACK, "--show-secrets"], env);
    if (process.env.SHOW_CLI) console.log(up.stderr);
    expect(up.stderr).toMatch(/the up started .* ended without saving its state; recovering/);
    expect(up.stderr).toMatch(/dropped role svc\d\d_/);
    expect(up.stderr).toContain("dropped role db_platform_monitor");
    expect(up.code).toBe(0);
    expect(fs.existsSync(marker)).toBe(false);
    expect(await serviceRoles()).toBe(SERVICES.length * 4);

    const url = up.stdout.match(/^ {2}app +(postgresql:\/\/svc05_app:\S+)$/m)?.[1];
    expect(url).toBeDefined();
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query("SELECT current_database() AS d")).rows[0].d).toBe("svc05_db");
    } finally {
      await c.end();
    }
    expect(runCli(["preview", "--stack", STACK, "--expect-no-changes"], env).code).toBe(0);
  }, 600_000);
});
