/**
 * PgBouncer beside a real local PostgreSQL 16 (operations/local/pooler.ts; the PgBouncer of
 * scripts/pooler/pgbouncer.sh): a declared login reaches its own database through it, and
 * nothing else does (another database, a wrong password, the admin, the console); a reload adds a
 * login without dropping the clients; transaction pooling shares server connections. Both bind
 * 127.0.0.1 only and are stopped and deleted after the tests.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scramVerifier } from "../../components/service/scram";
import { LocalPooler, type PoolEntry } from "../../operations/local/pooler";
import { asServerUser, LocalPostgres } from "../../operations/local/postgres";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-pooler-"));
fs.chmodSync(root, 0o755);
let server: LocalPostgres;
let pooler: LocalPooler;
let poolerPort: number;
const PASSWORDS: Record<string, string> = { alpha_app: "alpha-pass-1", beta_app: "beta-pass-2", gamma_app: "gamma-pass-3" };
const entry = (database: string, login: string, mode: PoolEntry["mode"], size: number): PoolEntry => ({
  database,
  login,
  verifier: scramVerifier(PASSWORDS[login], login),
  mode,
  size,
});
const ENTRIES: PoolEntry[] = [entry("alpha_db", "alpha_app", "transaction", 2), entry("beta_db", "beta_app", "session", 5)];
const GAMMA = entry("gamma_db", "gamma_app", "transaction", 2);

const through = (user: string, password: string, database: string) =>
  new Client({ host: "127.0.0.1", port: poolerPort, user, password, database, connectionTimeoutMillis: 5000 });

/** The SQLSTATE (or message) a connection through the pooler fails with, or "ok". */
async function attempt(user: string, password: string, database: string): Promise<string> {
  const c = through(user, password, database);
  try {
    await c.connect();
    await c.query("SELECT 1");
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  const port = await freePort();
  poolerPort = await freePort();
  server = new LocalPostgres({
    name: "pg",
    version: "16",
    host: "127.0.0.1",
    port,
    adminUser: "platform_admin",
    adminPassword: "s3cret-admin",
    root,
    projectDir: ROOT,
  });
  await server.start();
  const c = await server.superuserClient();
  try {
    // Each role with the verifier its pooler holds, as the platform creates pooled logins.
    for (const e of [...ENTRIES, GAMMA]) {
      await c.query(`CREATE ROLE ${e.login} LOGIN PASSWORD '${e.verifier}'`);
      await c.query(`CREATE DATABASE ${e.database} OWNER ${e.login}`);
      await c.query(`REVOKE ALL ON DATABASE ${e.database} FROM PUBLIC`);
    }
  } finally {
    await c.end();
  }
  pooler = new LocalPooler({
    name: "pg",
    dir: path.join(server.dir, "pooler"),
    port: poolerPort,
    serverHost: "127.0.0.1",
    serverPort: port,
    mode: "transaction",
    maxClientConnections: 100,
    defaultPoolSize: 20,
    runAs: asServerUser(),
    projectDir: ROOT,
  });
  pooler.configure(ENTRIES);
  await pooler.start();
}, 120_000);

afterAll(async () => {
  await pooler?.stop();
  await server?.destroy();
  fs.rmSync(root, { recursive: true, force: true });
}, 60_000);

describe("PgBouncer beside a local server", () => {
  it("holds verifiers that PostgreSQL stores as they are and accepts the passwords against", async () => {
    const c = await server.superuserClient();
    try {
      const { rows } = await c.query("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname", [
        Object.keys(PASSWORDS),
      ]);
      expect(rows).toEqual([...ENTRIES, GAMMA].map((e) => ({ rolname: e.login, rolpassword: e.verifier })));
    } finally {
      await c.end();
    }
    const direct = new Client({
      host: "127.0.0.1",
      port: server.opts.port,
      user: "alpha_app",
      password: "alpha-pass-1",
      database: "alpha_db",
    });
    await direct.connect();
    await direct.end();
    expect(scramVerifier("alpha-pass-1", "alpha_app")).toBe(ENTRIES[0].verifier);
    expect(scramVerifier("alpha-pass-1", "beta_app")).not.toBe(ENTRIES[0].verifier);
    const auth = fs.readFileSync(pooler.authFile, "utf8");
    expect(auth).toContain(`"alpha_app" "${ENTRIES[0].verifier}"`);
    for (const password of Object.values(PASSWORDS)) expect(auth).not.toContain(password);
  });

  it("listens on 127.0.0.1, and on a socket in its private folder, and keeps its files to its user", () => {
    const config = fs.readFileSync(pooler.configFile, "utf8");
    expect(config).toContain("listen_addr = 127.0.0.1\n");
    expect(config).toContain(`unix_socket_dir = ${pooler.opts.dir}\nunix_socket_mode = 0600\n`);
    expect(config).toContain("admin_users =\nstats_users = db_platform_monitor\n");
    for (const f of [pooler.authFile, pooler.hbaFile, pooler.configFile]) expect(fs.statSync(f).mode & 0o077).toBe(0);
    expect(fs.statSync(pooler.opts.dir).mode & 0o077).toBe(0);
    expect(fs.statSync(path.join(pooler.opts.dir, `.s.PGSQL.${poolerPort}`)).mode & 0o077).toBe(0);
  });

  it("opens its console to the monitoring login alone, over the socket, to read only", async () => {
    const onSocket = async (user: string, database: string, sql = "SHOW POOLS") => {
      const c = new Client({ host: pooler.opts.dir, port: poolerPort, user, database, connectionTimeoutMillis: 5000 });
      try {
        await c.connect();
        return (await c.query(sql)).rows.length > 0 ? "ok" : "empty";
      } catch (e) {
        return `${(e as { code?: string }).code} ${(e as Error).message}`;
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    expect(await onSocket("db_platform_monitor", "pgbouncer")).toBe("ok");
    expect(await onSocket("db_platform_monitor", "pgbouncer", "PAUSE")).toBe("08P01 admin access needed");
    expect(await onSocket("db_platform_monitor", "pgbouncer", "SHUTDOWN")).toBe("08P01 admin access needed");
    // Not a service database, not any other login on the socket, and not the console over TCP.
    expect(await onSocket("db_platform_monitor", "alpha_db")).toMatch(/^08P01/);
    expect(await onSocket("alpha_app", "alpha_db")).toMatch(/^08P01/);
    expect(await onSocket("alpha_app", "pgbouncer")).toMatch(/^08P01/);
    expect(await onSocket("platform_admin", "pgbouncer")).toMatch(/^08P01/);
    expect(await attempt("db_platform_monitor", "", "pgbouncer")).toBe("08P01");
  });

  it("reports each pool as its console counts it: clients active and waiting, server connections, the longest wait", async () => {
    // Pool size 2: two clients hold a transaction each, three more wait for a server connection.
    const holders = [through("alpha_app", "alpha-pass-1", "alpha_db"), through("alpha_app", "alpha-pass-1", "alpha_db")];
    const waiters = Array.from({ length: 3 }, () => through("alpha_app", "alpha-pass-1", "alpha_db"));
    await Promise.all([...holders, ...waiters].map((c) => c.connect()));
    const before = (await pooler.readConsole()).stats.find((s) => s.database === "alpha_db");
    try {
      for (const h of holders) await h.query("BEGIN; SELECT 1");
      const waiting = waiters.map((w) => w.query("SELECT 1"));
      await new Promise((r) => setTimeout(r, 1200));
      const { pools } = await pooler.readConsole();
      const alpha = pools.find((p) => p.database === "alpha_db" && p.login === "alpha_app");
      expect(alpha).toMatchObject({ clientsActive: 2, clientsWaiting: 3, serverActive: 2, serverIdle: 0, mode: "transaction" });
      expect(alpha?.maxWaitSeconds).toBeGreaterThanOrEqual(1);
      expect(alpha?.maxWaitSeconds).toBeLessThan(10);
      expect(pools.some((p) => p.database === "pgbouncer")).toBe(false);
      for (const h of holders) await h.query("COMMIT");
      await Promise.all(waiting);
    } finally {
      await Promise.all([...holders, ...waiters].map((c) => c.end()));
    }
    const after = (await pooler.readConsole()).stats.find((s) => s.database === "alpha_db");
    // Two transactions of two queries each, three of one.
    expect((after?.transactions ?? 0) - (before?.transactions ?? 0)).toBe(5);
    expect((after?.queries ?? 0) - (before?.queries ?? 0)).toBe(7);
    expect(after?.waitMicros).toBeGreaterThan((before?.waitMicros ?? 0) + 1e6);
  });

  it("takes each declared login to its own database, as that login on the server", async () => {
    const c = through("alpha_app", "alpha-pass-1", "alpha_db");
    await c.connect();
    try {
      const { rows } = await c.query("SELECT current_user AS who, current_database() AS db, inet_server_port() AS port");
      expect(rows[0]).toEqual({ who: "alpha_app", db: "alpha_db", port: server.opts.port });
    } finally {
      await c.end();
    }
    expect(await attempt("beta_app", "beta-pass-2", "beta_db")).toBe("ok");
  });

  it("refuses another database, a wrong password, undeclared logins, the admin and the console over TCP", async () => {
    expect(await attempt("alpha_app", "alpha-pass-1", "beta_db")).toBe("08P01");
    expect(await attempt("alpha_app", "wrong", "alpha_db")).toBe("08P01");
    expect(await attempt("gamma_app", "gamma-pass-3", "gamma_db")).toBe("08P01");
    expect(await attempt("platform_admin", "s3cret-admin", "alpha_db")).toBe("08P01");
    expect(await attempt("alpha_app", "alpha-pass-1", "pgbouncer")).toBe("08P01");
    expect(await attempt("postgres", "", "postgres")).toBe("08P01");
  });

  it("shares a pool's server connections between clients in transaction mode (size 2 for 6 clients)", async () => {
    const clients = Array.from({ length: 6 }, () => through("alpha_app", "alpha-pass-1", "alpha_db"));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const pids = await Promise.all(
        clients.map(async (c) => (await c.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")).rows[0].pid as number),
      );
      expect(new Set(pids).size).toBeLessThanOrEqual(2);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("admits a login added by a reload, without a restart and without dropping a connected client", async () => {
    const pid = pooler.pid();
    const open = through("beta_app", "beta-pass-2", "beta_db");
    await open.connect();
    try {
      expect(pooler.configure([...ENTRIES, GAMMA])).toBe(true);
      pooler.reload();
      const deadline = Date.now() + 5000;
      while ((await attempt("gamma_app", "gamma-pass-3", "gamma_db")) !== "ok" && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(await attempt("gamma_app", "gamma-pass-3", "gamma_db")).toBe("ok");
      expect(pooler.pid()).toBe(pid);
      expect((await open.query("SELECT 1 AS one")).rows[0].one).toBe(1);
    } finally {
      await open.end();
    }
    expect(pooler.configure([...ENTRIES, GAMMA])).toBe(false);
  });

  it("refuses to start on a port another process holds, and leaves nothing running (it would serve its console alone)", async () => {
    const holder = net.createServer();
    const taken = await freePort();
    await new Promise<void>((resolve) => holder.listen(taken, "127.0.0.1", resolve));
    const second = new LocalPooler({ ...pooler.opts, name: "pg-second", dir: path.join(server.dir, "pooler-second"), port: taken });
    try {
      second.configure(ENTRIES);
      await expect(second.start()).rejects.toThrow(`PgBouncer beside pg-second did not start on 127.0.0.1:${taken}: the port is taken`);
      expect(second.pid()).toBeUndefined();
    } finally {
      await second.stop();
      await new Promise((r) => holder.close(r));
    }
  });

  it("stops, closing its port", async () => {
    await pooler.stop();
    expect(pooler.pid()).toBeUndefined();
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(poolerPort, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(false)));
      s.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});

describe("the ports local servers are given", () => {
  it("are below the kernel's ephemeral range, so no outgoing connection's local end can take one before its server binds it", async () => {
    const [lo] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) expect(p).toBeLessThan(lo);
  });
});
