/**
 * `db-platform local start|status|stop` end to end: the admin password comes out of the stack's
 * encrypted config through the real engine, and the server it starts accepts exactly that login.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";
import { adminPasswords, localRoot } from "../../operations/local/local";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

// A copy of the dev stack (same encryption salt, so the same secrets) on a free port.
const STACK = "localtest";
const file = path.join(ROOT, `Pulumi.${STACK}.yaml`);
let port: number;
let replicaPort: number;
let s3Port: number;
let poolerPort: number;

const cli = (...args: string[]) => runCli(args, { PULUMI_CONFIG_PASSPHRASE: "db-platform-dev" });

beforeAll(async () => {
  port = await freePort();
  replicaPort = await freePort();
  const doc = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
  doc.config["db-platform:servers"].local.port = port;
  // The dev stack's standby: on a free port too, so this test never collides with another.
  doc.config["db-platform:servers"].local.replicas[0].port = replicaPort;
  s3Port = await freePort();
  doc.config["db-platform:backups"].port = s3Port;
  // The poolers: beside the primary on a free port, beside the standby on the next one.
  poolerPort = await freePort();
  doc.config["db-platform:servers"].local.pooler.port = poolerPort;
  fs.writeFileSync(file, stringify(doc));
});

afterAll(() => {
  cli("local", "stop", "--stack", STACK);
  fs.rmSync(localRoot(ROOT, STACK), { recursive: true, force: true });
  fs.rmSync(file, { force: true });
}, 60_000);

describe("db-platform local", () => {
  it("starts the stack's local server (archiving), its standby and a pooler beside each, and reports them", () => {
    const r = cli("local", "start", "--stack", STACK);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [primary, standby, ...rest] = r.stdout.split("\n");
    expect(primary).toBe(`local: PostgreSQL 16 running on 127.0.0.1:${port} (data .db-platform/local/${STACK}/local/data)`);
    expect(standby).toMatch(
      new RegExp(
        `^local-ro: standby of local running on 127\\.0\\.0\\.1:${replicaPort}, streaming, lag [\\d.]+ (B|KiB|MiB)( \\(replay [\\d.]+ ms\\))? \\(data \\.db-platform/local/${STACK}/local-ro/data\\)$`,
      ),
    );
    expect(rest).toEqual([
      // The primary archives its WAL from its first start (docs/point-in-time.md), and takes its first base backup.
      expect.stringMatching(/^local: archiving to s3:\/\/db-platform-dev-backups\/dev\/_archive every 60 s at most \(.*, 0 failed\)$/),
      `local: pooler (PgBouncer) running on 127.0.0.1:${poolerPort}`,
      `local-ro: pooler (PgBouncer) running on 127.0.0.1:${poolerPort + 1}`,
      "local: taking a base backup into s3://db-platform-dev-backups/dev/_archive (barman-cloud)",
      expect.stringMatching(/^local: base backup \d{8}T\d{6} in [\d.]+ s \(WAL [0-9A-F]{24}–[0-9A-F]{24}\)$/),
      `backups: S3 (MinIO) running on http://127.0.0.1:${s3Port}, bucket db-platform-dev-backups (data .db-platform/local/${STACK}/s3/data)`,
      "",
    ]);
  }, 120_000);

  it("accepts the admin login with the password from the stack's secrets, as a non-superuser", async () => {
    process.env.PULUMI_CONFIG_PASSPHRASE = "db-platform-dev";
    const { local } = await adminPasswords(ROOT, STACK);
    const c = new Client({ host: "127.0.0.1", port, user: "platform_admin", password: local, database: "postgres" });
    await c.connect();
    try {
      const r = await c.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user");
      expect(r.rows[0]).toEqual({ rolsuper: false, rolcreatedb: true, rolcreaterole: true });
    } finally {
      await c.end();
    }
  }, 120_000);

  it("stops it; status then exits 1", () => {
    expect(cli("local", "stop", "--stack", STACK).code).toBe(0);
    const status = cli("local", "status", "--stack", STACK);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`local: PostgreSQL 16 stopped on 127.0.0.1:${port}`);
    expect(status.stdout).toContain(`backups: S3 (MinIO) stopped on http://127.0.0.1:${s3Port}`);
    expect(status.stdout).toContain(`local: pooler (PgBouncer) stopped on 127.0.0.1:${poolerPort}`);
  }, 60_000);
});
