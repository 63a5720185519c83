/**
 * The local server tooling on real PostgreSQL servers of every supported major (15 to 18, the
 * pinned builds of scripts/postgres/install.sh). Each server binds 127.0.0.1 only, is stopped and
 * deleted after its tests.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalPostgres, LocalPostgresError, postgresBinDir, slotName } from "../../operations/local/postgres";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-local-"));
fs.chmodSync(root, 0o755);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A server of this file's root, on 127.0.0.1 with its fixture admin. */
const serverAt = (name: string, version: string, port: number) =>
  new LocalPostgres({
    name,
    version,
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: "s3cret-admin",
    root,
    projectDir: ROOT,
  });

describe.each(["15", "16", "17", "18"])("PostgreSQL %s", (version) => {
  let server: LocalPostgres;
  let port: number;
  const admin = (database = "postgres") =>
    new Client({ host: "127.0.0.1", port, user: "platform_admin", password: "s3cret-admin", database });

  beforeAll(async () => {
    port = await freePort();
    server = serverAt(`pg${version}`, version, port);
    await server.start();
  }, 120_000);

  afterAll(async () => {
    await server?.destroy();
  }, 60_000);

  it("runs the requested major version, built for this machine's platform, listening on 127.0.0.1 only", async () => {
    const c = admin();
    await c.connect();
    try {
      const v = await c.query(
        "SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('listen_addresses') AS listen, version()",
      );
      expect(v.rows[0]).toMatchObject({ major: Number(version), listen: "127.0.0.1" });
      // The build install.sh chose for this machine (under an emulated `uname`, that platform's).
      const platform = execFileSync("bash", [path.join(ROOT, "scripts/postgres/install.sh"), "--wheel", version], {
        encoding: "utf8",
      }).split(" ")[1];
      const triple =
        { manylinux_2_17_x86_64: "x86_64-", manylinux_2_17_aarch64: "aarch64-", macosx_11_0_arm64: "apple-darwin" }[platform] ?? "darwin";
      expect(v.rows[0].version).toContain(triple);
    } finally {
      await c.end();
    }
  });

  it("gives the admin CREATEDB and CREATEROLE but not superuser", async () => {
    const c = admin();
    await c.connect();
    try {
      const r = await c.query(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user",
      );
      expect(r.rows[0]).toEqual({ rolsuper: false, rolcreatedb: true, rolcreaterole: true, rolreplication: false, rolbypassrls: false });
    } finally {
      await c.end();
    }
  });

  it("refuses a wrong admin password over TCP", async () => {
    const c = new Client({ host: "127.0.0.1", port, user: "platform_admin", password: "wrong", database: "postgres" });
    await expect(c.connect()).rejects.toThrow(/password authentication failed/);
  });

  it("is idempotent: a second start keeps the data and the admin", async () => {
    await server.start();
    expect(await server.isRunning()).toBe(true);
  }, 60_000);

  // What the PostgreSQL provider meets as a non-superuser (the RDS "must be member of role"
  // class): the admin must hold membership in a role before it can make that role a database's
  // owner. The message changed in 16, where a CREATEROLE role gets only ADMIN OPTION on the roles
  // it creates, not the right to SET ROLE to them.
  it("needs a self-grant before creating a database owned by a new role", async () => {
    const c = admin();
    await c.connect();
    try {
      await c.query(`CREATE ROLE owner_${version} NOLOGIN`);
      await expect(c.query(`CREATE DATABASE db_${version} OWNER owner_${version}`)).rejects.toThrow(
        Number(version) >= 16 ? /must be able to SET ROLE "owner_\d+"/ : /must be member of role "owner_\d+"/,
      );
      await c.query(`GRANT owner_${version} TO platform_admin`);
      await c.query(`CREATE DATABASE db_${version} OWNER owner_${version}`);
      const owner = await c.query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [`db_${version}`]);
      expect(owner.rows[0].owner).toBe(`owner_${version}`);
    } finally {
      await c.end();
    }
  });

  describe("streaming standby", () => {
    let standby: LocalPostgres;
    let standbyPort: number;
    beforeAll(async () => {
      standbyPort = await freePort();
      standby = new LocalPostgres({
        name: `pg${version}-ro`,
        version,
        host: "127.0.0.1",
        port: standbyPort,
        adminUser: "platform_admin",
        adminPassword: "s3cret-admin",
        root,
        projectDir: ROOT,
        standbyOf: server,
      });
    });
    afterAll(async () => {
      await standby?.destroy();
    }, 60_000);

    it("clones the primary, streams, and replays its writes; writes on the standby are refused", async () => {
      await standby.start();
      const status = await standby.replicationStatus();
      expect(status?.state).toBe("streaming");
      const primary = await server.superuserClient();
      const replica = new Client({
        host: "127.0.0.1",
        port: standbyPort,
        user: "platform_admin",
        password: "s3cret-admin",
        database: "postgres",
      });
      await replica.connect();
      try {
        await primary.query("CREATE TABLE standby_probe (n int)");
        await primary.query("GRANT SELECT, INSERT ON standby_probe TO platform_admin");
        await primary.query("INSERT INTO standby_probe SELECT generate_series(1, 1000)");
        const until = Date.now() + 10_000;
        let seen = 0;
        while (Date.now() < until) {
          seen = (await replica.query("SELECT count(*)::int AS n FROM standby_probe").catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n;
          if (seen === 1000) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(seen).toBe(1000);
        await expect(replica.query("INSERT INTO standby_probe VALUES (0)")).rejects.toMatchObject({ code: "25006" });
        expect((await replica.query("SELECT current_setting('port') AS p, pg_is_in_recovery() AS r")).rows[0]).toEqual({
          p: String(standbyPort),
          r: true,
        });
      } finally {
        await primary.end();
        await replica.end();
      }
    }, 120_000);

    it("gives up its replication slot when destroyed", async () => {
      await standby.destroy();
      const c = await server.superuserClient();
      try {
        const slots = await c.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slotName(`pg${version}-ro`)]);
        expect(slots.rowCount).toBe(0);
      } finally {
        await c.end();
      }
    }, 60_000);
  });
});

describe("postgresBinDir", () => {
  it("names the supported majors when a version has no pinned build", () => {
    expect(() => postgresBinDir("9", ROOT)).toThrow(LocalPostgresError);
    expect(() => postgresBinDir("9", ROOT)).toThrow("postgres: no pinned build of PostgreSQL 9 (supported: 15, 16, 17, 18)");
  });

  it("gives every major a server and its client tools from one build", () => {
    const bin = postgresBinDir("17", ROOT);
    for (const tool of ["initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "pg_basebackup", "psql"]) {
      expect(fs.existsSync(path.join(bin, tool)), tool).toBe(true);
    }
  });
});

describe("a server that cannot start", () => {
  it("says why, from the server's own log, in the error", async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, "127.0.0.1");
    await new Promise((resolve) => holder.once("listening", resolve));
    const server = serverAt("busy", "16", port);
    try {
      const err = await server.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LocalPostgresError);
      expect((err as Error).message).toMatch(
        /^pg_ctl failed for server busy: .*; postgres\.log says: .*FATAL: {2}could not create any TCP\/IP sockets/s,
      );
      expect((err as Error).message).toContain(`HINT:  Is another postmaster already running on port ${port}?`);
    } finally {
      holder.close();
      await server.destroy();
    }
  }, 60_000);
});

describe("a major version edit on a server with data", () => {
  it("is refused at start, running or stopped, and the data keeps serving on its own major", async () => {
    const port = await freePort();
    const v16 = serverAt("bump", "16", port);
    const v17 = serverAt("bump", "17", port);
    try {
      await v16.start();
      const refusal = `server bump: its data (${path.relative(ROOT, path.join(v16.dataDir, "PG_VERSION"))}) is PostgreSQL 16, the stack says 17: a major version change is an upgrade, not an edit: set the version back to 16, then db-platform upgrade apply --server bump --to 17 (docs/upgrades.md)`;
      await expect(v17.start()).rejects.toThrow(refusal);
      expect(await v16.isRunning()).toBe(true);
      await v16.stop();
      await expect(v17.start()).rejects.toThrow(refusal);
      expect(v17.dataVersion()).toBe("16");
      await v16.start();
      const c = await v16.superuserClient();
      try {
        expect((await c.query("SHOW server_version_num")).rows[0].server_version_num).toMatch(/^16/);
      } finally {
        await c.end();
      }
    } finally {
      await v16.destroy();
    }
  }, 60_000);
});
