/**
 * The dev stack's local replica, end to end: `db-platform local start` brings up the primary and
 * a real streaming standby (pg_basebackup -R), the stack hands out the standby's URL to the
 * read-only login, and PostgreSQL behaves as a replica: writes on the primary arrive, writes on
 * the standby are refused, lag is reported.
 *
 * The stack is applied through the real Pulumi engine and provider plugins (`db-platform up`'s
 * code path); the service's migrator creates its table, and its read-only login reads it on the
 * standby. Those steps are reported skipped, saying why, where the plugins are missing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";
import { adminPasswords, localRoot } from "../../operations/local/local";
import { type ApplyContext, destroyStack, upStack } from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { loadSpec } from "../../components/spec";
import { removeStack } from "../helpers/appliedDevStack";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

// A copy of the dev stack (same encryption salt, so the same secrets) on free ports.
const STACK = "replicatest";
const file = path.join(ROOT, `Pulumi.${STACK}.yaml`);
let port: number;
let replicaPort: number;
let poolerPort: number;
let admin: string;
let readonlyUrl: string;
let ctx: ApplyContext;
let applied = false;
// Steps that need the stack applied by the engine with the provider plugins.
const withStack = ENGINE.ready ? it : it.skip;
if (!ENGINE.ready) it.skip(SKIPPED_BECAUSE, () => undefined);

const cli = (...args: string[]) => runCli(args, { PULUMI_CONFIG_PASSPHRASE: "db-platform-dev" });

async function connect(portNumber: number, database = "postgres", user = "platform_admin", password = admin): Promise<Client> {
  const c = new Client({ host: "127.0.0.1", port: portNumber, user, password, database });
  await c.connect();
  return c;
}

async function withClient<T>(c: Promise<Client>, f: (c: Client) => Promise<T>): Promise<T> {
  const client = await c;
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  port = await freePort();
  replicaPort = await freePort();
  const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
  const local = doc.config["db-platform:servers"].local;
  expect(local.replicas).toEqual([{ name: "local-ro", port: 54330 }]);
  local.port = port;
  local.replicas[0].port = replicaPort;
  // The dev stack's poolers: beside the primary on a free port, beside the standby on the next.
  expect(local.pooler).toEqual({ port: 54429 });
  poolerPort = await freePort();
  local.pooler.port = poolerPort;
  doc.config["db-platform:backups"].port = await freePort();
  fs.writeFileSync(file, stringify(doc));
  process.env.PULUMI_CONFIG_PASSPHRASE = "db-platform-dev";
  admin = (await adminPasswords(ROOT, STACK)).local;
  ctx = { spec: loadSpec(readConfigFile(file)), stack: STACK, project: "db-platform", projectDir: ROOT, progress: () => undefined };
});

afterAll(async () => {
  if (applied) await destroyStack(ctx).catch(() => undefined);
  cli("local", "stop", "--stack", STACK);
  await removeStack(STACK);
  fs.rmSync(localRoot(ROOT, STACK), { recursive: true, force: true });
  fs.rmSync(file, { force: true });
}, 60_000);

describe("local streaming replica of the dev stack", () => {
  it("starts the primary and its standby, and reports the standby streaming", () => {
    const r = cli("local", "start", "--stack", STACK);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(`local: PostgreSQL 16 running on 127.0.0.1:${port} (data .db-platform/local/${STACK}/local/data)`);
    expect(lines[1]).toMatch(
      new RegExp(
        `^local-ro: standby of local running on 127\\.0\\.0\\.1:${replicaPort}, streaming, lag \\d+ B.* \\(data \\.db-platform/local/${STACK}/local-ro/data\\)$`,
      ),
    );
  }, 180_000);

  it("is a real standby: in recovery, and the primary holds its replication slot", async () => {
    await withClient(connect(replicaPort), async (c) => {
      expect((await c.query("SELECT pg_is_in_recovery() AS r")).rows[0].r).toBe(true);
    });
    await withClient(connect(port), async (c) => {
      expect((await c.query("SELECT pg_is_in_recovery() AS r")).rows[0].r).toBe(false);
      const slots = await c.query("SELECT slot_name, slot_type, active FROM pg_replication_slots");
      expect(slots.rows).toEqual([{ slot_name: "db_platform_local_ro", slot_type: "physical", active: true }]);
    });
  });

  withStack("hands the read-only login the standby's address, and the login works there", async () => {
    applied = true;
    const { outputs } = await upStack(ctx);
    const inventory = (outputs.services.value as Record<string, { urls: Record<string, string>; routing: Record<string, string> }>)
      .inventory;
    expect(inventory.routing.readonly).toBe("replica local-ro");
    readonlyUrl = inventory.urls.readonly;
    const url = new URL(readonlyUrl);
    expect(url.port).toBe(String(replicaPort));
    expect(url.pathname).toBe("/inventory_db");
    const user = decodeURIComponent(url.username);
    expect(user).toBe("inventory_readonly");

    // The service's migrator creates its table on the primary, as a migration would.
    await withClient(
      (async () => {
        const c = new Client({ connectionString: inventory.urls.migrator });
        await c.connect();
        return c;
      })(),
      async (c) => {
        await c.query("CREATE TABLE inventory.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL)");
        await c.query("INSERT INTO inventory.items (name) VALUES ('first')");
      },
    );

    // The login, its grants and the row reach the standby through replication alone.
    await waitFor(async () => {
      const reader = new Client({ connectionString: readonlyUrl });
      try {
        await reader.connect();
        const row = (await reader.query("SELECT count(*)::int AS n, current_user AS u, pg_is_in_recovery() AS r FROM inventory.items"))
          .rows[0];
        expect(row).toEqual({ n: 1, u: user, r: true });
        return true;
      } catch (e) {
        if ((e as Error).name === "AssertionError") throw e;
        return false;
      } finally {
        await reader.end().catch(() => undefined);
      }
    });
  });

  withStack("hands the pooled services their URLs through the poolers, which work; a second up changes nothing", async () => {
    const first = await upStack(ctx);
    expect(Object.entries(first.changes).filter(([k, n]) => k !== "same" && n > 0)).toEqual([]);
    const services = first.outputs.services.value as Record<
      string,
      { urls: Record<string, string>; directUrls?: Record<string, string>; routing: Record<string, string> }
    >;
    // orders (its own database) and payments (a schema of platform) are pooled in the dev stack; inventory is not.
    for (const [name, database] of [
      ["orders", "orders_db"],
      ["payments", "platform"],
    ]) {
      const s = services[name];
      expect(s.routing).toMatchObject({ app: "pooler → primary", readonly: "pooler → replica local-ro" });
      expect(new URL(s.urls.app).port).toBe(String(poolerPort));
      expect(new URL(s.urls.readonly).port).toBe(String(poolerPort + 1));
      expect(new URL(s.directUrls?.app ?? "").port).toBe(String(port));
      for (const [login, on] of [
        ["app", false],
        ["readonly", true],
      ] as const) {
        const c = new Client({ connectionString: s.urls[login] });
        await c.connect();
        try {
          const row = (await c.query("SELECT current_user AS u, current_database() AS d, pg_is_in_recovery() AS r")).rows[0];
          expect(row).toEqual({ u: `${name}_${login}`, d: database, r: on });
        } finally {
          await c.end();
        }
      }
    }
    expect(services.inventory.directUrls).toBeUndefined();
  });

  withStack("shows a write on the primary on the standby", async () => {
    const marker = `written-${Date.now()}`;
    await withClient(connect(port, "inventory_db"), (c) => c.query("INSERT INTO inventory.items (name) VALUES ($1)", [marker]));
    const started = Date.now();
    const reader = new Client({ connectionString: readonlyUrl });
    await reader.connect();
    try {
      await waitFor(async () => (await reader.query("SELECT 1 FROM inventory.items WHERE name = $1", [marker])).rowCount === 1);
    } finally {
      await reader.end();
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  withStack("refuses writes on the standby, even from the admin", async () => {
    await withClient(connect(replicaPort, "inventory_db"), async (c) => {
      await expect(c.query("INSERT INTO inventory.items (name) VALUES ('nope')")).rejects.toMatchObject({
        code: "25006",
        message: "cannot execute INSERT in a read-only transaction",
      });
      await expect(c.query("CREATE TABLE inventory.other (id int)")).rejects.toMatchObject({ code: "25006" });
    });
    await withClient(connect(port, "inventory_db"), async (c) => {
      expect((await c.query("SELECT count(*)::int AS n FROM inventory.items WHERE name = 'nope'")).rows[0].n).toBe(0);
    });
  });

  withStack("reports lag in `local status` after a burst of writes", async () => {
    await withClient(connect(port, "inventory_db"), (c) =>
      c.query("INSERT INTO inventory.items (name) SELECT 'burst-' || g FROM generate_series(1, 5000) g"),
    );
    const status = cli("local", "status", "--stack", STACK);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      new RegExp(`local-ro: standby of local running on 127\\.0\\.0\\.1:${replicaPort}, streaming, lag \\d+(\\.\\d)? (B|KiB|MiB)`),
    );
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
