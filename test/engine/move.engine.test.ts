/**
 * Seed 003: a service moves from a schema in a shared database to a database of its own, then to
 * a server of its own, through the real engine and plugins, with nothing lost (docs/data-moves.md).
 * One stack, two local PostgreSQL 16 servers (`local`, `second`): `piper` (100,000 rows, an index,
 * a view, a sequence) and `notes` share database `platform` by schema. At every stage the row
 * counts and the schema hash match the export's manifest, and the isolation matrix holds: each
 * service's logins reach their own data (on the place the stack's outputs name) and nothing of the
 * other's. Failures are injected at each step — the target server killed, a restore that fails,
 * an engine error — and each leaves a state that `move apply` resumes or `move rollback` undoes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineEnv } from "../../operations/local/local";
import { runCli, runCliAsync } from "../helpers/cli";
import { attempt, fillNotes, fillPiper, superuserSql } from "../helpers/sql";
import { schemaHash } from "../../operations/backup/snapshot";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { type LocalStack, localStack } from "../helpers/localStack";
import { ROOT } from "../helpers/synth";

const STACK = "mvtest";
const ROWS = 100_000;
const SHARED = { server: "local", isolation: "schema", database: "platform" };
const DENIED = "42501";
let s: LocalStack;
/** piper's schema hash before any move: every stage must keep it. */
let hashBefore: string;

const sql = superuserSql;

const move = (...args: string[]) => runCli(["move", ...args, "--stack", STACK, "--service", "piper"], s.env);
const moveFile = () =>
  (parse(fs.readFileSync(s.file, "utf8")) as { config: Record<string, Record<string, Record<string, unknown>>> }).config[
    "db-platform:services"
  ].piper;

interface ServiceOutput {
  server: string;
  database: string;
  urls: Record<string, string>;
}

async function outputs(): Promise<Record<string, ServiceOutput>> {
  const stack = await LocalWorkspace.selectStack({ stackName: STACK, workDir: ROOT }, { workDir: ROOT, envVars: engineEnv(ROOT, STACK) });
  return (await stack.outputs()).services.value as Record<string, ServiceOutput>;
}

/** The schema hash of piper's schema where its outputs say it is (the backup manifest's hash, computed here). */
async function piperSchemaHash(): Promise<string> {
  const o = (await outputs()).piper;
  const c = await s.servers[o.server].superuserClient(o.database);
  try {
    return await schemaHash(c, ["piper"]);
  } finally {
    await c.end();
  }
}

/** piper's rows through its read-only login, where its outputs say it is. */
async function piperRows(): Promise<number> {
  const o = (await outputs()).piper;
  const c = new Client({ connectionString: o.urls.readonly });
  await c.connect();
  try {
    return Number((await c.query("SELECT count(*) AS n FROM piper.users")).rows[0].n);
  } finally {
    await c.end();
  }
}

/**
 * The isolation matrix at piper's current place: its logins read (app also writes) its data and
 * its view; notes' logins are refused on piper's database and tables, piper's on notes' (on
 * another server, where they do not exist, at authentication).
 */
async function isolationHolds(oldServerRetired = true): Promise<void> {
  const o = await outputs();
  const piper = o.piper;
  const notes = o.notes;
  const apart = piper.server !== notes.server;
  // A login's credentials pointed at the other service's server.
  const onServerOf = (url: string, other: string) => url.replace(/@[^/]+\//, `@${new URL(other).host}/`);
  const cells: Array<[string, string, string, string | undefined, string]> = [
    ["piper app reads its table", piper.urls.app, piper.database, "SELECT count(*) FROM piper.users", "ok"],
    ["piper app writes its table", piper.urls.app, piper.database, "INSERT INTO piper.users (name) VALUES ('probe') RETURNING id", "ok"],
    ["piper readonly reads its view", piper.urls.readonly, piper.database, "SELECT count(*) FROM piper.recent", "ok"],
    ["piper readonly cannot write", piper.urls.readonly, piper.database, "INSERT INTO piper.users (name) VALUES ('x')", DENIED],
    ["notes app reads its table", notes.urls.app, notes.database, "SELECT count(*) FROM notes.notes", "ok"],
    // On another server the other service's logins do not exist at all: authentication fails.
    // (piper's roles stay on its old server until that place is retired.)
    [
      "piper app cannot read notes",
      onServerOf(piper.urls.app, notes.urls.app),
      notes.database,
      "SELECT * FROM notes.notes",
      apart && oldServerRetired ? "28P01" : DENIED,
    ],
    piper.database === notes.database
      ? ["notes app cannot read piper", notes.urls.app, piper.database, "SELECT * FROM piper.users", DENIED]
      : [
          "notes app cannot connect to piper's database",
          onServerOf(notes.urls.app, piper.urls.app),
          piper.database,
          undefined,
          apart ? "28P01" : DENIED,
        ],
  ];
  const got: string[] = [];
  for (const [what, url, database, text, expected] of cells) {
    got.push(`${what}: ${await attempt(url, database, text)} (expected ${expected})`);
    expect(got.at(-1), got.join("\n")).toBe(`${what}: ${expected} (expected ${expected})`);
  }
  // The probe row written above is removed again, as the service's owner would.
  await sql(s.servers[piper.server], piper.database, "DELETE FROM piper.users WHERE name = 'probe'");
}

/** At the end of a move: every row and the schema as before, the isolation matrix, and nothing left for the engine to change. */
async function settled(): Promise<void> {
  expect(await piperRows()).toBe(ROWS);
  expect(await piperSchemaHash()).toBe(hashBefore);
  await isolationHolds();
  const preview = runCli(["preview", "--stack", STACK, "--expect-no-changes"], s.env);
  expect(preview.code, preview.stderr.slice(-2000)).toBe(0);
}

describe("move a service: schema → its own database → its own server (seed 003)", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    s = await localStack(STACK, { piper: SHARED, notes: SHARED }, { servers: ["local", "second"], backups: true });
    const up = runCli(["up", "--stack", STACK], s.env);
    expect(up.code, up.stderr.slice(-3000)).toBe(0);
    await fillPiper(s.server, "platform", ROWS);
    await fillNotes(s.server, "platform");
    hashBefore = await piperSchemaHash();
  }, 600_000);

  afterAll(async () => {
    for (const server of Object.values(s?.servers ?? {})) await server.start().catch(() => undefined);
    await s?.cleanup();
    fs.rmSync(path.join(ROOT, ".db-platform", "moves", STACK), { recursive: true, force: true });
  }, 600_000);

  it("plans the move in order, with its downtime window, and refuses a target the stack's validation refuses", () => {
    const plan = move("plan", "--to", "database");
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain("from schemas in database platform on server local");
    expect(plan.stdout).toContain("to   database piper_db on server local");
    expect(plan.stdout).toMatch(
      /1\. check that no session[\s\S]*2\. back up piper into the stack's backups[\s\S]*3\. export piper[\s\S]*4\. up \(move phase copy\)[\s\S]*5\. restore[\s\S]*6\. up \(move phase serve\)[\s\S]*7\. with --confirm only[\s\S]*8\. declare piper/,
    );
    expect(plan.stdout).toContain("downtime: from the session check before the export until the switch");
    const taken = move("plan", "--to", "schema", "--database", "platform");
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain("services.piper.move.to: is where service piper already is");
    const unknown = move("plan", "--to", "database", "--server", "nowhere");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('services.piper.move.to.server: unknown server "nowhere"');
    expect(moveFile().move).toBeUndefined();
  });

  it("refuses to start while the service has a session open, and leaves the stack file as it was", async () => {
    const c = new Client({ connectionString: (await outputs()).piper.urls.app });
    await c.connect();
    try {
      const r = move("apply", "--to", "database");
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("service piper has open sessions on server local: piper_app (1)");
    } finally {
      await c.end();
    }
    expect(moveFile().move).toBeUndefined();
  });

  it("an engine error while creating the target leaves the old place serving; rollback undoes the move", async () => {
    // Someone else's database already has the target's name: the engine's create fails.
    await sql(s.server, "postgres", "CREATE DATABASE piper_db");
    const r = move("apply", "--to", "database");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("create database piper_db on server local: the engine failed");
    expect(moveFile().move).toMatchObject({ phase: "copy", to: { isolation: "database", server: "local" } });
    expect((await outputs()).piper.database).toBe("platform");
    expect(await piperRows()).toBe(ROWS);
    await sql(s.server, "postgres", "DROP DATABASE piper_db");
    const back = move("rollback");
    expect(back.code, back.stderr).toBe(0);
    expect(moveFile().move).toBeUndefined();
    expect(await piperRows()).toBe(ROWS);
  }, 600_000);

  it("moves to a database of its own: restored as its owner, verified, switched; the old schema kept until confirmed", async () => {
    const r = move("apply", "--to", "database");
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toContain(`restore: 1 table(s), ${ROWS} row(s) as piper_owner; row counts and schema hash match the manifest`);
    expect(r.stdout).toContain("now serves from database piper_db on server local");
    // The stack declares backups: one of piper was taken before its data moved, in the stack's own storage.
    const backup = /backup (\S+) of piper in the stack's backups: 100000 row\(s\)/.exec(r.stdout)?.[1];
    expect(backup, r.stdout).toBeDefined();
    expect(runCli(["backup", "list", "--stack", STACK, "--service", "piper"], s.env).stdout).toContain(String(backup));
    expect(moveFile().move).toMatchObject({ phase: "serve" });
    const o = await outputs();
    expect(o.piper.database).toBe("piper_db");
    expect(await piperRows()).toBe(ROWS);
    expect(await piperSchemaHash()).toBe(hashBefore);
    const owners = await sql(s.server, "piper_db", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'piper'");
    expect(owners).toEqual([{ tableowner: "piper_owner" }]);
    // The old place is still there, untouched.
    expect((await sql(s.server, "platform", "SELECT count(*)::int AS n FROM piper.users"))[0].n).toBe(ROWS);
    await isolationHolds();
    // The audit of the live servers states the move; both places are declared, neither is drift.
    const audit = runCli(["audit", "--stack", STACK, "--format", "json"], s.env);
    const report = JSON.parse(audit.stdout) as { moves: Array<Record<string, string>>; findings: Array<{ rule: string; message: string }> };
    expect(report.moves).toEqual([
      expect.objectContaining({
        service: "piper",
        from: "schemas in database platform on server local",
        to: "database piper_db on server local",
        phase: "serve",
      }),
    ]);
    expect(report.findings, audit.stdout).toEqual([]);
    expect(audit.code).toBe(0);
  }, 900_000);

  it("retires the old schema only with the exact confirmation, then declares the service at its new place with no change in PostgreSQL", async () => {
    const wrong = move("apply", "--confirm", "other/piper");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(
      `--confirm other/piper does not name the service: retiring its old place takes --confirm ${STACK}/piper`,
    );
    const r = move("apply", "--confirm", `${STACK}/piper`);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    // The new place's resources only take the service's own names: nothing is created or dropped.
    const finish = /finish: piper declared at database piper_db on server local: up \(([^)]*)\)/.exec(r.stdout);
    expect(finish?.[1], r.stdout).not.toMatch(/create|delete|replace/);
    expect(moveFile()).toEqual({ server: "local" });
    expect(await sql(s.server, "platform", "SELECT nspname FROM pg_namespace WHERE nspname = 'piper'")).toEqual([]);
    // Nothing of piper's is left in the shared database (its owner role would not drop later).
    const left = await sql(
      s.server,
      "platform",
      "SELECT pg_describe_object(classid, objid, objsubid) AS what FROM pg_shdepend d JOIN pg_database b ON b.oid = d.dbid WHERE b.datname = 'platform' AND refobjid = 'piper_owner'::regrole",
    );
    expect(left).toEqual([]);
    await settled();
  }, 900_000);

  it("to a server of its own: the target server killed mid-move, then a failing restore, are resumed; the old server keeps serving until the switch", async () => {
    // The target server is killed as soon as the engine has created piper's database on it.
    const running = runCliAsync(["move", "apply", "--to", "database", "--server", "second", "--stack", STACK, "--service", "piper"], s.env);
    let killedAt = "";
    for (let i = 0; i < 1200 && !killedAt; i++) {
      const found = await sql(s.servers.second, "postgres", "SELECT 1 FROM pg_database WHERE datname = 'piper_db'").catch(() => []);
      if (found.length > 0) {
        await s.servers.second.stop();
        killedAt = new Date().toISOString();
      } else await new Promise((r) => setTimeout(r, 100));
    }
    const killed = await running.done;
    expect(killedAt, "the target database never appeared").not.toBe("");
    expect(killed.code, killed.stderr.slice(-2000)).toBe(1);
    expect(moveFile().move).toMatchObject({ phase: "copy", to: { server: "second" } });
    expect((await outputs()).piper.server).toBe("local");
    expect(await piperRows()).toBe(ROWS);
    await s.servers.second.start();
    // A restore error: the export's dump no longer matches its manifest.
    const manifest = path.resolve(ROOT, String((moveFile().move as { export: string }).export));
    const dump = manifest.replace(/\.manifest\.json$/, ".dump");
    const good = fs.readFileSync(dump);
    fs.writeFileSync(dump, Buffer.concat([good.subarray(0, good.length - 100), Buffer.alloc(100)]));
    const corrupt = move("apply");
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toContain("restore into database piper_db on server second");
    expect(moveFile().move).toMatchObject({ phase: "copy" });
    expect((await outputs()).piper.server).toBe("local");
    fs.writeFileSync(dump, good);
    const resumed = move("apply");
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    expect(resumed.stdout).toContain(`restore: 1 table(s), ${ROWS} row(s) as piper_owner; row counts and schema hash match the manifest`);
    expect((await outputs()).piper.server).toBe("second");
    expect(await piperRows()).toBe(ROWS);
    expect(await piperSchemaHash()).toBe(hashBefore);
    await isolationHolds(false);
  }, 1_200_000);

  it("after the switch, rollback refuses to drop what the service wrote at the new place unless told; then it serves from the old server again and the new one is gone", async () => {
    await sql(s.servers.second, "piper_db", "INSERT INTO piper.users (name) VALUES ('written after the switch')");
    const refused = move("rollback");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      "database piper_db on server second has served since the switch and changed (piper.users: 100001 rows, expected 100000 (+1))",
    );
    expect(refused.stderr).toContain("pass --discard-writes to roll back anyway");
    expect(moveFile().move).toMatchObject({ phase: "serve" });
    await sql(s.servers.second, "piper_db", "DELETE FROM piper.users WHERE name = 'written after the switch'");
    const back = move("rollback");
    expect(back.code, back.stderr.slice(-3000)).toBe(0);
    expect(moveFile().move).toBeUndefined();
    expect((await outputs()).piper.server).toBe("local");
    expect(await sql(s.servers.second, "postgres", "SELECT datname FROM pg_database WHERE datname = 'piper_db'")).toEqual([]);
    expect(await sql(s.servers.second, "postgres", "SELECT rolname FROM pg_roles WHERE rolname LIKE 'piper\\_%'")).toEqual([]);
    await settled();
    // And to the second server again, for the retirement below.
    const again = move("apply", "--to", "database", "--server", "second");
    expect(again.code, again.stderr.slice(-3000)).toBe(0);
    expect((await outputs()).piper.server).toBe("second");
  }, 1_200_000);

  it("the process killed while it retires the old server's place: move apply --confirm finishes; nothing of piper is left there", async () => {
    const retiring = runCliAsync(["move", "apply", "--confirm", `${STACK}/piper`, "--stack", STACK, "--service", "piper"], s.env);
    let killed = false;
    for (let i = 0; i < 1200 && !killed; i++) {
      if ((moveFile().move as { phase?: string } | undefined)?.phase === "retire") {
        // SIGKILL to the command and everything it started: the engine, the plugins.
        retiring.kill();
        killed = true;
      } else await new Promise((r) => setTimeout(r, 50));
    }
    const r = await retiring.done;
    expect(killed, r.stderr.slice(-2000)).toBe(true);
    expect(moveFile().move).toMatchObject({ phase: "retire" });
    const done = move("apply", "--confirm", `${STACK}/piper`);
    expect(done.code, done.stderr.slice(-3000)).toBe(0);
    expect(moveFile()).toEqual({ server: "second" });
    expect(await sql(s.server, "postgres", "SELECT datname FROM pg_database WHERE datname = 'piper_db'")).toEqual([]);
    expect(await sql(s.server, "postgres", "SELECT rolname FROM pg_roles WHERE rolname LIKE 'piper\\_%'")).toEqual([]);
    await settled();
  }, 1_200_000);
});
