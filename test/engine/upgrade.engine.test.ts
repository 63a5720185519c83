/**
 * A local server from PostgreSQL 15 to 16 to 17 to 18 by `db-platform upgrade apply`, through the
 * real engine and plugins, with the real pg_upgrade of each pinned build (docs/upgrades.md). One
 * stack: server `local` with a streaming standby, backups to its own local S3, `piper` (100,000
 * rows, an index, a view, a sequence) and `notes` in the shared database `platform`. After each
 * step: the server and the standby run the new major, every row and piper's schema hash are as
 * before, each service's logins reach their own data and not the other's, and a preview has
 * nothing to change. Injected: a kill during pg_upgrade (apply resumes), a rollback from a
 * verified upgrade (the old cluster serves again, nothing lost).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { schemaHash } from "../../operations/backup/snapshot";
import { engineEnv, localInstances, localRoot } from "../../operations/local/local";
import { loadSpec } from "../../components/spec";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { runCli, runCliAsync } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { FIXTURE_ADMIN_PASSWORD } from "../helpers/appliedDevStack";
import { type LocalStack, localStack } from "../helpers/localStack";
import { attempt, fillNotes, fillPiper, superuserSql } from "../helpers/sql";
import { ROOT } from "../helpers/synth";

const STACK = "upgtest";
const ROWS = 100_000;
const SHARED = { server: "local", isolation: "schema", database: "platform" };
let s: LocalStack;
let hashBefore: string;

const upgrade = (...args: string[]) => runCli(["upgrade", ...args, "--stack", STACK, "--server", "local"], s.env);
const fileVersion = () =>
  String(
    (parse(fs.readFileSync(s.file, "utf8")) as { config: Record<string, Record<string, Record<string, unknown>>> }).config[
      "db-platform:servers"
    ].local.version,
  );

/** The primary and its standby as the stack file declares them now. */
function current() {
  const server = loadSpec(readConfigFile(s.file)).servers.find((x) => x.name === "local");
  if (server?.hosting !== "local") throw new Error("no local server");
  return localInstances(server, STACK, ROOT, FIXTURE_ADMIN_PASSWORD);
}

async function majorOf(which: "primary" | "standby"): Promise<number> {
  const { primary, standbys } = current();
  const rows = await superuserSql(
    which === "primary" ? primary : standbys[0],
    "postgres",
    "SELECT current_setting('server_version_num')::int / 10000 AS major",
  );
  return Number(rows[0].major);
}

/** Every row, piper's schema, the standby replaying, the isolation matrix, and a preview with nothing to change. */
async function holds(major: number): Promise<void> {
  expect(await majorOf("primary")).toBe(major);
  expect(await majorOf("standby")).toBe(major);
  const { primary, standbys } = current();
  expect((await superuserSql(primary, "platform", "SELECT count(*)::int AS n FROM piper.users"))[0].n).toBe(ROWS);
  const c = await primary.superuserClient("platform");
  try {
    expect(await schemaHash(c, ["piper"], { acrossMajors: true })).toBe(hashBefore);
  } finally {
    await c.end();
  }
  await superuserSql(primary, "platform", "SET ROLE notes_owner; INSERT INTO notes.notes VALUES (3); DELETE FROM notes.notes WHERE id = 3");
  expect(await standbys[0].replicationStatus()).toMatchObject({ state: "streaming" });
  const stack = await LocalWorkspace.selectStack({ stackName: STACK, workDir: ROOT }, { workDir: ROOT, envVars: engineEnv(ROOT, STACK) });
  const urls = (await stack.outputs()).services.value as Record<string, { urls: Record<string, string> }>;
  expect(await attempt(urls.piper.urls.app, "platform", "SELECT count(*) FROM piper.users")).toBe("ok");
  expect(await attempt(urls.piper.urls.readonly, "platform", "SELECT count(*) FROM piper.recent")).toBe("ok");
  expect(await attempt(urls.piper.urls.app, "platform", "SELECT * FROM notes.notes")).toBe("42501");
  expect(await attempt(urls.notes.urls.app, "platform", "SELECT * FROM piper.users")).toBe("42501");
  const preview = runCli(["preview", "--stack", STACK, "--expect-no-changes"], s.env);
  expect(preview.code, preview.stderr.slice(-2000)).toBe(0);
}

describe("upgrade a local server 15 → 16 → 17 → 18 (pg_upgrade)", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    s = await localStack(STACK, { piper: SHARED, notes: SHARED }, { version: "15", standby: true, backups: true });
    const up = runCli(["up", "--stack", STACK], s.env);
    expect(up.code, up.stderr.slice(-3000)).toBe(0);
    await fillPiper(s.server, "platform", ROWS);
    await fillNotes(s.server, "platform");
    const c = await s.server.superuserClient("platform");
    try {
      hashBefore = await schemaHash(c, ["piper"], { acrossMajors: true });
    } finally {
      await c.end();
    }
  }, 300_000);

  afterAll(async () => {
    await s?.cleanup();
  }, 300_000);

  it("refuses bad input before anything changes", () => {
    expect(upgrade("apply", "--to", "14").stderr).toContain("--to 14: not a major local servers run (15, 16, 17, 18)");
    expect(upgrade("apply", "--to", "15").stderr).toContain("--to 15: server local runs PostgreSQL 15; nothing to upgrade");
    const r = runCli(["upgrade", "plan", "--stack", STACK, "--server", "nowhere", "--to", "16"], s.env);
    expect(r.stderr).toContain("--server nowhere: stack upgtest has no such server");
    expect(fileVersion()).toBe("15");
    expect(fs.existsSync(path.join(localRoot(ROOT, STACK), "local", "upgrade.json"))).toBe(false);
  });

  it("plans the steps, the downtime and what cannot be undone", () => {
    const r = upgrade("plan", "--to", "16");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("upgrade server local of stack upgtest: PostgreSQL 15 → 16");
    expect(r.stdout).toMatch(/downtime: from the stop of local until PostgreSQL 16 accepts connections/);
    expect(r.stdout).toMatch(/undo: until --confirm, upgrade rollback returns to the kept 15 cluster/);
  });

  it("15 → 16, killed during the upgrade on disk: the stack file and the old cluster as they were, and apply resumes", async () => {
    const run = runCliAsync(["upgrade", "apply", "--stack", STACK, "--server", "local", "--to", "16"], s.env);
    const next = path.join(localRoot(ROOT, STACK), "local", "data-16");
    const deadline = Date.now() + 120_000;
    while (!fs.existsSync(path.join(next, "PG_VERSION")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    run.kill();
    await run.done;
    expect(fileVersion()).toBe("15");
    const journal = JSON.parse(fs.readFileSync(path.join(localRoot(ROOT, STACK), "local", "upgrade.json"), "utf8")) as { phase: string };
    expect(journal.phase).toBe("backed-up");
    expect(fs.readFileSync(path.join(localRoot(ROOT, STACK), "local", "data", "PG_VERSION"), "utf8").trim()).toBe("15");
    const resumed = upgrade("apply");
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    expect(resumed.stdout).toContain("serves PostgreSQL 16, verified; the 15 cluster is kept until you confirm");
    expect(fileVersion()).toBe("16");
    await holds(16);
  }, 600_000);

  it("rolls back from a verified upgrade only when told to drop what 16 took, and 15 serves everything again", async () => {
    const refused = upgrade("rollback");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("writes made since are lost by a rollback; pass --discard-writes");
    const r = upgrade("rollback", "--discard-writes");
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(fileVersion()).toBe("15");
    await holds(15);
  }, 600_000);

  it("refuses a target that does not ship an extension in use (old_snapshot left PostgreSQL in 17), with nothing changed", async () => {
    await superuserSql(current().primary, "platform", "CREATE EXTENSION old_snapshot");
    try {
      const r = upgrade("apply", "--to", "17");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("PostgreSQL 17 does not ship extensions in use, nothing changed: platform: old_snapshot");
      expect(fileVersion()).toBe("15");
      expect(fs.existsSync(path.join(localRoot(ROOT, STACK), "local", "upgrade.json"))).toBe(false);
      expect(fs.existsSync(path.join(localRoot(ROOT, STACK), "local", "data-17"))).toBe(false);
    } finally {
      await superuserSql(current().primary, "platform", "DROP EXTENSION old_snapshot");
    }
    await holds(15);
  }, 600_000);

  it.each([
    ["15", "16"],
    ["16", "17"],
    ["17", "18"],
  ])(
    "%s → %s, confirmed: every row, the schema, the standby and isolation hold",
    async (from, to) => {
      const r = upgrade("apply", "--to", to);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      expect(r.stdout).toMatch(/verified: 2 service\(s\), \d+ rows and their schema hashes as recorded; audit: no findings/);
      await holds(Number(to));
      const done = upgrade("apply", "--confirm");
      expect(done.code, done.stderr.slice(-3000)).toBe(0);
      expect(fs.existsSync(path.join(localRoot(ROOT, STACK), "local", `data-${from}`))).toBe(false);
      expect(fs.existsSync(path.join(localRoot(ROOT, STACK), "local", "upgrade.json"))).toBe(false);
    },
    600_000,
  );
});
