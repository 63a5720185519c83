/**
 * `db-platform rotate` through the real engine and plugins on a local PostgreSQL 16, when things
 * go wrong (docs/rotation.md): an engine error in the middle of a rotation leaves it pending with
 * the previous credentials working, and `rotate` again resumes it instead of starting another
 * generation; a rotation killed in the middle of its `up` (the engine and plugins with it) is
 * resumed the same way. Afterwards both credentials of each login log in, the one two rotations
 * old does not, the engine has nothing left to change and the audit finds nothing. The no-downtime
 * proof under load on 15-18: test/e2e/isolation.e2e.test.ts.
 */
import * as fs from "node:fs";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineEnv } from "../../operations/local/local";
import { runCli, runCliAsync } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { type LocalStack, localStack } from "../helpers/localStack";
import { attempt, superuserSql } from "../helpers/sql";
import { ROOT } from "../helpers/synth";

const STACK = "rottest";
let s: LocalStack;

const rotate = (...args: string[]) => runCli(["rotate", "--stack", STACK, ...args], s.env);
const credentials = (service: string) =>
  (parse(fs.readFileSync(s.file, "utf8")) as { config: Record<string, Record<string, Record<string, unknown>>> }).config[
    "db-platform:services"
  ][service].credentials as Record<string, { generation: number; pending?: boolean }> | undefined;

interface ServiceOutput {
  database: string;
  urls: Record<string, string>;
  previousUrls?: Record<string, string>;
}

async function outputs(): Promise<Record<string, ServiceOutput>> {
  const stack = await LocalWorkspace.selectStack({ stackName: STACK, workDir: ROOT }, { workDir: ROOT, envVars: engineEnv(ROOT, STACK) });
  return (await stack.outputs()).services.value as Record<string, ServiceOutput>;
}

const user = (url: string) => decodeURIComponent(new URL(url).username);

describe("rotate: an engine error and a killed rotation, resumed", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }
  /** Each service's URLs before any rotation: generation 0. */
  let first: Record<string, ServiceOutput>;

  beforeAll(async () => {
    s = await localStack(STACK, {
      notes: { server: "local", roles: { reporter: { read: ["*"] } } },
      piper: { server: "local", isolation: "schema", database: "platform" },
    });
    const up = runCli(["up", "--stack", STACK], s.env);
    expect(up.code, up.stderr.slice(-3000)).toBe(0);
    first = await outputs();
  }, 600_000);

  afterAll(async () => {
    await s?.cleanup();
  }, 600_000);

  it("an engine error leaves the rotation pending and the previous credentials working; rotate again resumes it", async () => {
    // A role behind the platform's back takes the name of piper's readonly alternate: its CREATE ROLE fails.
    await superuserSql(s.server, "postgres", "CREATE ROLE piper_readonly_alt NOLOGIN");
    const failed = rotate("--service", "piper");
    expect(failed.code, failed.stderr.slice(-2000)).toBe(1);
    expect(failed.stderr).toContain("the engine failed; the rotation stays pending");
    expect(credentials("piper")).toMatchObject({ app: { generation: 1, pending: true }, readonly: { generation: 1, pending: true } });
    for (const login of ["app", "readonly", "migrator"]) expect(await attempt(first.piper.urls[login], "platform", "SELECT 1")).toBe("ok");
    await superuserSql(s.server, "postgres", "DROP ROLE piper_readonly_alt");

    const resumed = rotate("--service", "piper");
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    expect(resumed.stdout).toContain("rotate 3 login(s) of stack rottest (resuming");
    expect(resumed.stdout).toContain("piper readonly: generation 1, now piper_readonly_alt (previous piper_readonly");
    expect(credentials("piper")).toEqual({
      app: { generation: 1, rotatedAt: expect.any(String) },
      readonly: { generation: 1, rotatedAt: expect.any(String) },
      migrator: { generation: 1, rotatedAt: expect.any(String) },
    });
    const now = await outputs();
    expect(user(now.piper.urls.app)).toBe("piper_app_alt");
    expect(await attempt(now.piper.urls.app, "platform", "SELECT 1")).toBe("ok");
    expect(await attempt(first.piper.urls.app, "platform", "SELECT 1")).toBe("ok");
    expect(credentials("notes")).toBeUndefined();
  }, 600_000);

  it("a rotation killed in the middle of its up is resumed, not repeated", async () => {
    const run = runCliAsync(["rotate", "--stack", STACK], s.env);
    // Killed once the engine has created the first alternate of notes: mid-apply.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const rows = await superuserSql(s.server, "postgres", "SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'notes\\_%\\_alt'");
      if (Number(rows[0].n) > 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    run.kill();
    const killed = await run.done;
    expect(killed.stdout).not.toContain("done");
    expect(credentials("notes")).toMatchObject({ app: { generation: 1, pending: true }, reporter: { generation: 1, pending: true } });
    expect(credentials("piper")).toMatchObject({ app: { generation: 2, pending: true } });

    const resumed = rotate();
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    expect(resumed.stdout).toContain("rotate 7 login(s) of stack rottest (resuming");
    expect(credentials("notes")?.reporter).toEqual({ generation: 1, rotatedAt: expect.any(String) });
    expect(credentials("piper")?.app).toEqual({ generation: 2, rotatedAt: expect.any(String) });

    const now = await outputs();
    expect(user(now.piper.urls.app)).toBe("piper_app");
    expect(user(now.piper.previousUrls?.app ?? "")).toBe("piper_app_alt");
    expect(user(now.notes.urls.reporter)).toBe("notes_reporter_alt");
    for (const [service, o] of Object.entries(now)) {
      for (const login of Object.keys(o.urls)) {
        expect(`${service} ${login}: ${await attempt(o.urls[login], o.database, "SELECT 1")}`).toBe(`${service} ${login}: ok`);
        const previous = o.previousUrls?.[login] ?? "";
        expect(`${service} ${login} previous: ${await attempt(previous, o.database, "SELECT 1")}`).toBe(`${service} ${login} previous: ok`);
      }
    }
    // piper's generation 0: two rotations old.
    expect(await attempt(first.piper.urls.app, "platform", "SELECT 1")).toBe("28P01");
    expect(await attempt(first.notes.urls.app, "notes_db", "SELECT 1")).toBe("ok");
  }, 600_000);

  it("leaves nothing for the engine to change, and nothing for the audit to find", () => {
    const preview = runCli(["preview", "--stack", STACK, "--expect-no-changes"], s.env);
    expect(preview.code, preview.stderr.slice(-2000)).toBe(0);
    const audit = runCli(["audit", "--stack", STACK], s.env);
    expect(audit.code, audit.stdout.slice(-3000)).toBe(0);
  }, 600_000);
});
