/**
 * No config change silently destroys a service's data, in any environment: through the real
 * engine and plugins on a local (dev) stack, flipping a service with rows from schema to database
 * isolation, or removing a service, is refused already at preview, and by `up` before it applies
 * anything, with a message naming the service and how to move its data; the rows stay.
 * `allowDataLoss: true` on the service is the explicit consent, and `destroy --yes` still removes
 * everything.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_PASSPHRASE } from "../../operations/local/local";
import { LocalPostgres } from "../../operations/local/postgres";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { ROOT } from "../helpers/synth";
import { type LocalStack, localStack } from "../helpers/localStack";

const STACK = "dataguardtest";
const file = path.join(ROOT, `Pulumi.${STACK}.yaml`);
const env = { PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE };
let server: LocalPostgres;
let fixture: LocalStack;

function setServices(services: Record<string, Record<string, unknown>>): void {
  const doc = parse(fs.readFileSync(file, "utf8"));
  doc.config["db-platform:services"] = Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { server: "local", ...v }]));
  fs.writeFileSync(file, stringify(doc));
}

async function sql(database: string, text: string): Promise<Array<Record<string, unknown>>> {
  const c = await server.superuserClient(database);
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

async function databases(): Promise<string[]> {
  return (
    await sql("postgres", "SELECT datname FROM pg_database WHERE datname NOT LIKE 'template%' AND datname <> 'postgres' ORDER BY 1")
  ).map((r) => String(r.datname));
}

const FLIP_SCHEMA = { isolation: "schema", database: "shared" };

/** A command the data guard must refuse (exit 1): its stderr. */
function refused(command: "preview" | "up"): string {
  const r = runCli([command, "--stack", STACK], env);
  expect(r.code, r.stderr.slice(-2000)).toBe(1);
  return r.stderr;
}

describe("a config change that would delete a service's data", () => {
  if (!ENGINE.ready) {
    it.skip(SKIPPED_BECAUSE, () => undefined);
    return;
  }

  beforeAll(async () => {
    fixture = await localStack(STACK, {});
    server = fixture.server;
    setServices({ keep: {}, flip: FLIP_SCHEMA, neighbour: FLIP_SCHEMA });
    const up = runCli(["up", "--stack", STACK], env);
    expect(up.stderr.slice(-2000), up.stdout).toMatch(/up:/);
    expect(up.code).toBe(0);
    // Rows written the way a service does: as its owner role (what its migrator works as).
    await sql("shared", "SET ROLE flip_owner; CREATE TABLE flip.items (id int); INSERT INTO flip.items SELECT generate_series(1, 500)");
    await sql("keep_db", "SET ROLE keep_owner; CREATE TABLE keep.items (id int); INSERT INTO keep.items SELECT generate_series(1, 50)");
  }, 300_000);

  afterAll(async () => {
    await fixture?.cleanup();
  }, 300_000);

  it("refuses flipping isolation at preview and at up, naming the service and the way to move it; the rows stay", async () => {
    setServices({ keep: {}, flip: {}, neighbour: FLIP_SCHEMA });
    const preview = refused("preview");
    expect(preview).toContain("service flip: its schema (flip-schema-flip) would be deleted or replaced with the service's data");
    expect(preview).toContain(`db-platform move plan --stack ${STACK} --service flip --to database|schema`);
    expect(preview).toContain("allowDataLoss: true");
    expect(preview).not.toContain("service keep");
    expect(refused("up")).toContain("service flip: its schema (flip-schema-flip) would be deleted or replaced");
    // Refused before the engine applied anything: no new database, the rows where they were.
    expect(await databases()).toEqual(["keep_db", "shared"]);
    expect(await sql("shared", "SELECT count(*)::int AS n FROM flip.items")).toEqual([{ n: 500 }]);
  }, 300_000);

  it("refuses removing a service with its database", async () => {
    setServices({ flip: FLIP_SCHEMA, neighbour: FLIP_SCHEMA });
    expect(refused("preview")).toMatch(
      /service keep: its (database \(keep-db\)|schema \(keep-schema-keep\)) would be deleted or replaced with the service's data/,
    );
    expect(await sql("keep_db", "SELECT count(*)::int AS n FROM keep.items")).toEqual([{ n: 50 }]);
  }, 300_000);

  it("refuses at up too, and lets a service go once it says allowDataLoss: true; only its data goes", async () => {
    setServices({ flip: FLIP_SCHEMA, neighbour: FLIP_SCHEMA });
    expect(refused("up")).toContain("service keep: its database (keep-db) would be deleted or replaced");
    expect(await databases()).toEqual(["keep_db", "shared"]);

    setServices({ keep: { allowDataLoss: true }, flip: FLIP_SCHEMA, neighbour: FLIP_SCHEMA });
    const consent = runCli(["up", "--stack", STACK], env);
    expect(consent.code, consent.stderr.slice(-3000)).toBe(0);
    expect(consent.stdout).toMatch(/no changes|unchanged/);
    setServices({ flip: FLIP_SCHEMA, neighbour: FLIP_SCHEMA });
    const removed = runCli(["up", "--stack", STACK], env);
    expect(removed.code, removed.stderr.slice(-3000)).toBe(0);
    expect(await databases()).toEqual(["shared"]);
    expect(await sql("shared", "SELECT count(*)::int AS n FROM flip.items")).toEqual([{ n: 500 }]);
    expect(runCli(["preview", "--stack", STACK, "--expect-no-changes"], env).code).toBe(0);
  }, 300_000);

  it("destroy --yes still deletes every database: the confirmation is the consent", () => {
    const destroy = runCli(["destroy", "--yes", "--stack", STACK], env);
    expect(destroy.code).toBe(0);
    return expect(databases()).resolves.toEqual([]);
  }, 300_000);
});
