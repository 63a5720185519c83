/**
 * Seed 004: environments never share data; one service's data moves from alpha to a prod-like
 * stack only by an explicit export and a confirmed import. Two stacks applied through the real
 * engine and plugins, each with its own local server: `piper` has a database of its own in alpha
 * and a schema in a shared database (beside `notes`) in the prod-like stack. The import runs with
 * the alpha server stopped (the export is the only thing that crosses), lands as the target's
 * owner role so the target's grants hold, and every refusal leaves the target untouched.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalS3 } from "../../operations/local/s3";
import { runCli } from "../helpers/cli";
import { fillNotes, fillPiper, superuserSql } from "../helpers/sql";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { type LocalStack, localStack } from "../helpers/localStack";
import { freePort } from "../helpers/ports";

const ALPHA = "xchalpha";
const LIVE = "xchlive";
const ROWS = 20_000;
const SHARED = { server: "local", isolation: "schema", database: "platform" };
let alpha: LocalStack;
let live: LocalStack;
let dir: string;
let exported: string;

const sql = superuserSql;

const liveRows = async () => Number((await sql(live.server, "platform", "SELECT count(*) AS n FROM piper.users"))[0].n);
const liveTables = async () =>
  (await sql(live.server, "platform", "SELECT tablename FROM pg_tables WHERE schemaname = 'piper'")).map((r) => r.tablename);

function cli(stack: string, ...args: string[]) {
  return runCli([...args, "--stack", stack], alpha.env);
}

const importInto = (service: string, from: string, ...more: string[]) => cli(LIVE, "import", "--service", service, "--from", from, ...more);

describe("export from alpha, import into a prod-like stack (seed 004)", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-exchange-"));
    alpha = await localStack(ALPHA, { piper: { server: "local" } }, { environment: "alpha" });
    live = await localStack(LIVE, { piper: SHARED, notes: SHARED }, { environment: "live", backups: true });
    for (const stack of [ALPHA, LIVE]) {
      const up = cli(stack, "up");
      expect(up.code, up.stderr.slice(-2000)).toBe(0);
    }
    // Data written as a service writes it: as its owner role.
    await fillPiper(alpha.server, "piper_db", ROWS);
    await fillNotes(live.server, "platform");
  }, 600_000);

  afterAll(async () => {
    await alpha?.server.start().catch(() => undefined);
    await alpha?.cleanup();
    await live?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 600_000);

  it("exports one service with its read-only login to owner-only files with a manifest", () => {
    const r = cli(ALPHA, "export", "--service", "piper", "--to", dir, "--reason", "alpha tester moves to production", "--json");
    expect(r.code, r.stderr).toBe(0);
    const { location, manifest } = JSON.parse(r.stdout) as { location: string; manifest: Record<string, unknown> };
    exported = location;
    expect(path.dirname(location)).toBe(dir);
    expect(manifest).toMatchObject({
      format: "db-platform-export/1",
      stack: ALPHA,
      environment: "alpha",
      service: "piper",
      database: "piper_db",
      schemas: ["piper"],
      dumpedAs: "piper_readonly",
      reason: "alpha tester moves to production",
      tables: [{ schema: "piper", name: "users", rows: ROWS }],
    });
    expect(String(manifest.exportedBy)).toContain("@");
    for (const f of fs.readdirSync(dir)) expect(fs.statSync(path.join(dir, f)).mode & 0o777, f).toBe(0o600);
    expect(fs.readdirSync(dir).sort()).toEqual(
      [path.basename(location).replace(".manifest.json", ".dump"), path.basename(location)].sort(),
    );
  });

  it("refuses without the exact confirmation, into a service with other schemas, and back into its own stack; nothing is written", async () => {
    await alpha.server.stop(); // from here on, nothing of alpha's server is needed: the export is all that crosses
    const none = importInto("piper", exported);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`an import writes into service piper of stack ${LIVE}: confirm with --confirm ${LIVE}/piper`);
    const wrong = importInto("piper", exported, "--confirm", `${ALPHA}/piper`);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`--confirm ${ALPHA}/piper does not name the target: the import writes into ${LIVE}/piper`);
    const otherSchemas = importInto("notes", exported, "--confirm", `${LIVE}/notes`);
    expect(otherSchemas.code).toBe(2);
    expect(otherSchemas.stderr).toContain(`service notes of stack ${LIVE} has notes (missing: piper)`);
    const own = cli(ALPHA, "import", "--service", "piper", "--from", exported, "--confirm", `${ALPHA}/piper`);
    expect(own.code).toBe(2);
    expect(own.stderr).toContain(`came from stack ${ALPHA} itself`);
    expect(await liveTables()).toEqual([]);
  });

  it("imports as the target's owner role into its schema of the shared database; the target's grants hold, the neighbour's data is untouched", async () => {
    const r = importInto("piper", exported, "--confirm", `${LIVE}/piper`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`import export `);
    expect(r.stdout).toContain(`into service piper of stack ${LIVE} (environment live): server local, database platform, schema(s) piper`);
    expect(r.stdout).toMatch(
      new RegExp(
        `piper: imported export \\S+ into ${LIVE}/platform as piper_owner: 1 table\\(s\\), ${ROWS} row\\(s\\), row counts and schema hash match`,
      ),
    );
    expect(await liveRows()).toBe(ROWS);
    const [owner] = await sql(
      live.server,
      "platform",
      "SELECT tableowner FROM pg_tables WHERE schemaname = 'piper' AND tablename = 'users'",
    );
    expect(owner.tableowner).toBe("piper_owner");
    // The target's default privileges gave its logins what `up` gives them (the app's row takes the
    // next id from the imported sequence, the read-only login reads the view); the neighbour gets nothing.
    await sql(live.server, "platform", "SET ROLE piper_app; INSERT INTO piper.users (name) VALUES ('written by the app'); RESET ROLE");
    expect(Number((await sql(live.server, "platform", "SET ROLE piper_readonly; SELECT count(*) AS n FROM piper.recent"))[0].n)).toBe(11);
    await expect(sql(live.server, "platform", "SET ROLE notes_app; SELECT count(*) FROM piper.users")).rejects.toThrow(/permission denied/);
    expect(Number((await sql(live.server, "platform", "SELECT count(*) AS n FROM notes.notes"))[0].n)).toBe(2);
    // The live audit of the target: no critical or high finding (a cross-service grant, drift) after the import.
    const audit = cli(LIVE, "audit");
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });

  it("refuses a target with data unless --replace, and a corrupted dump before anything is touched", async () => {
    const again = importInto("piper", exported, "--confirm", `${LIVE}/piper`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`service piper of stack ${LIVE} already has data (piper.recent, piper.users, piper.users_id_seq)`);
    expect(again.stderr).toContain("Pass --replace");
    expect(await liveRows()).toBe(ROWS + 1);

    const corrupt = path.join(dir, "corrupt");
    fs.mkdirSync(corrupt);
    for (const f of fs.readdirSync(dir).filter((x) => x !== "corrupt")) fs.copyFileSync(path.join(dir, f), path.join(corrupt, f));
    const dump = fs.readdirSync(corrupt).find((f) => f.endsWith(".dump")) as string;
    const bytes = fs.readFileSync(path.join(corrupt, dump));
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(path.join(corrupt, dump), bytes);
    const bad = importInto("piper", path.join(corrupt, path.basename(exported)), "--confirm", `${LIVE}/piper`, "--replace");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checksum mismatch");
    expect(bad.stderr).toContain("(export it again from its stack). Nothing was restored.");
    expect(await liveRows()).toBe(ROWS + 1);
  });

  it("--replace backs the target's data up first, then replaces it; a failed import names that backup", async () => {
    const before = JSON.parse(cli(LIVE, "backup", "list", "--service", "piper", "--json").stdout) as Array<{ id: string }>;
    // A manifest edited after the export (its row counts are not covered by the dump's checksum):
    // the import replaces the data, finds the mismatch, and says where the previous data is.
    const edited = path.join(dir, "edited");
    fs.mkdirSync(edited);
    for (const f of fs.readdirSync(dir).filter((x) => x.startsWith("piper-"))) fs.copyFileSync(path.join(dir, f), path.join(edited, f));
    const m = JSON.parse(fs.readFileSync(path.join(edited, path.basename(exported)), "utf8")) as { tables: Array<{ rows: number }> };
    m.tables[0].rows += 5;
    fs.writeFileSync(path.join(edited, path.basename(exported)), JSON.stringify(m));
    const failed = importInto("piper", path.join(edited, path.basename(exported)), "--confirm", `${LIVE}/piper`, "--replace");
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`piper.users: ${ROWS} rows, expected ${ROWS + 5} (-5)`);
    const kept1 =
      /The data service piper had before is backup (\S+): db-platform backup restore --stack \S+ --service piper --backup \1 /.exec(
        failed.stderr,
      )?.[1];
    expect(kept1, failed.stderr).toBeDefined();

    const r = importInto("piper", exported, "--confirm", `${LIVE}/piper`, "--replace", "--json");
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { backupBeforeReplace: string; restore: { rows: number } };
    expect(result.restore.rows).toBe(ROWS);
    expect(await liveRows()).toBe(ROWS);
    const after = JSON.parse(cli(LIVE, "backup", "list", "--service", "piper", "--json").stdout) as Array<{
      id: string;
      tables: Array<{ rows: number }>;
    }>;
    expect(after.length).toBe(before.length + 2);
    expect(after.find((b) => b.id === kept1)?.tables.map((t) => t.rows)).toEqual([ROWS + 1]);
    expect(after.find((b) => b.id === result.backupBeforeReplace)?.tables.map((t) => t.rows)).toEqual([ROWS]);
  });

  it("crosses through an S3 location neither stack owns", async () => {
    await alpha.server.start();
    const s3 = new LocalS3({ dir: path.join(dir, "s3"), port: await freePort(), projectDir: path.resolve(__dirname, "../..") });
    await s3.start(["exchange"]);
    try {
      const { accessKeyId, secretAccessKey } = s3.credentials();
      const env = { ...alpha.env, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey };
      const ex = runCli(
        ["export", "--stack", ALPHA, "--service", "piper", "--to", "s3://exchange/moves", "--s3-endpoint", s3.endpoint],
        env,
      );
      expect(ex.code, ex.stderr).toBe(0);
      const location = /manifest: (s3:\/\/\S+)/.exec(ex.stdout)?.[1] as string;
      expect(location).toMatch(/^s3:\/\/exchange\/moves\/alpha\/piper\/\S+\.manifest\.json$/);
      await alpha.server.stop();
      const im = runCli(
        [
          "import",
          "--stack",
          LIVE,
          "--service",
          "piper",
          "--from",
          location,
          "--s3-endpoint",
          s3.endpoint,
          "--confirm",
          `${LIVE}/piper`,
          "--replace",
        ],
        env,
      );
      expect(im.code, im.stderr).toBe(0);
      expect(await liveRows()).toBe(ROWS);
    } finally {
      await s3.destroy();
    }
  });
});
