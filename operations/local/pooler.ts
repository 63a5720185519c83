/**
 * PgBouncer beside a local server and each of its standbys (`servers.<name>.pooler`;
 * docs/pooling.md), installed once by scripts/pooler/pgbouncer.sh. It listens on 127.0.0.1, has a
 * pool per service database and login, and admits only the pooled service logins the stack
 * declares: each is in its auth file with its SCRAM verifier (the one its role has on the server)
 * and in its HBA file for its own database only, so the admin, the monitoring login, any
 * superuser and any other login are refused before a server connection is opened. Its console
 * (the `pgbouncer` database) is read by the monitoring login alone (`stats_users`: SHOW, never
 * PAUSE or SHUTDOWN), over a Unix socket in its private folder, as a local server's own socket is
 * used: whoever may open it may read the folder anyway. It logs in to the server over TCP as the
 * client's own login, by SCRAM pass-through of the client's proof: no file of it holds a password.
 * A change of services rewrites the files and reloads it (SIGHUP), without dropping clients.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import type { PoolMode } from "../../components/spec";
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { isAlive } from "./processes";

export class LocalPoolerError extends Error {}

/** One pooled login: its database, name and SCRAM verifier (components/service/scram.ts), and its pool. */
export interface PoolEntry {
  readonly database: string;
  readonly login: string;
  readonly verifier: string;
  readonly mode: PoolMode;
  readonly size: number;
}

/** One row of the console's SHOW POOLS: a pool of one database and login. */
export interface PoolRow {
  readonly database: string;
  readonly login: string;
  readonly clientsActive: number;
  readonly clientsWaiting: number;
  readonly serverActive: number;
  /** Server connections open and not serving a client now (idle, used, tested, logging in). */
  readonly serverIdle: number;
  /** How long the oldest waiting client has waited. */
  readonly maxWaitSeconds: number;
  readonly mode: string;
}

/** One row of SHOW STATS: a pooler database's counters since start, and its averages over the last stats period (60 s). */
export interface PoolStatRow {
  readonly database: string;
  readonly transactions: number;
  readonly queries: number;
  /** Microseconds clients waited for a server connection, in all. */
  readonly waitMicros: number;
  readonly transactionsPerSecond: number;
  readonly queriesPerSecond: number;
}

export interface ConsoleReading {
  readonly pools: readonly PoolRow[];
  readonly stats: readonly PoolStatRow[];
}

export interface LocalPoolerOptions {
  /** The instance it stands beside (`local`, `local-ro`), for messages. */
  readonly name: string;
  /** Its folder: config, auth and HBA files, pid file, log. */
  readonly dir: string;
  readonly port: number;
  /** The PostgreSQL instance's TCP address. */
  readonly serverHost: string;
  readonly serverPort: number;
  readonly mode: PoolMode;
  readonly maxClientConnections: number;
  readonly defaultPoolSize: number;
  /** The command prefix that runs it as the server's user (`runuser -u postgres --` as root: PgBouncer refuses root). */
  readonly runAs: readonly string[];
  readonly projectDir: string;
}

let binary: string | undefined;
/** The PgBouncer this machine runs (scripts/pooler/pgbouncer.sh: installed, else the pinned Debian packages). */
export function pgbouncerBinary(projectDir: string): string {
  if (binary) return binary;
  try {
    binary = execFileSync("bash", [path.join(projectDir, "scripts/pooler/pgbouncer.sh"), "--quiet"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (e) {
    throw new LocalPoolerError(String((e as { stderr?: string }).stderr || (e as Error).message).trim());
  }
  return binary;
}

/** A value in PgBouncer's auth file: double-quoted, a double quote doubled. */
const quoted = (s: string) => `"${s.replace(/"/g, '""')}"`;
/** A name PgBouncer's config and HBA files take bare (service databases and logins are identifiers). */
function bare(s: string): string {
  if (!/^[a-z_][a-z0-9_$]*$/.test(s)) throw new LocalPoolerError(`"${s}" is not a plain identifier PgBouncer's files can name`);
  return s;
}

export class LocalPooler {
  readonly configFile: string;
  readonly authFile: string;
  readonly hbaFile: string;
  readonly pidFile: string;
  readonly logFile: string;
  /** The entries the files were written from (verifiers, no password), to prune them before an `up`. */
  readonly entriesFile: string;

  constructor(readonly opts: LocalPoolerOptions) {
    this.configFile = path.join(opts.dir, "pgbouncer.ini");
    this.authFile = path.join(opts.dir, "userlist.txt");
    this.hbaFile = path.join(opts.dir, "hba.conf");
    this.pidFile = path.join(opts.dir, "pgbouncer.pid");
    this.logFile = path.join(opts.dir, "pgbouncer.log");
    this.entriesFile = path.join(opts.dir, "entries.json");
  }

  /** The logins it was last configured with. */
  entries(): PoolEntry[] {
    try {
      return JSON.parse(fs.readFileSync(this.entriesFile, "utf8")) as PoolEntry[];
    } catch {
      return [];
    }
  }

  /** Write the config, auth and HBA files for these logins; true when any of them changed. */
  configure(entries: readonly PoolEntry[]): boolean {
    const o = this.opts;
    const databases = [...new Set(entries.map((e) => e.database))].sort();
    const config = [
      "; written by db-platform (docs/pooling.md)",
      "[databases]",
      ...databases.map((d) => `${bare(d)} = host=${o.serverHost} port=${o.serverPort} dbname=${d}`),
      "",
      "[users]",
      ...entries.map((e) => `${bare(e.login)} = pool_mode=${e.mode} max_user_connections=${e.size}`),
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${o.port}`,
      // The console's socket, in the private folder; nothing else is admitted on it.
      `unix_socket_dir = ${o.dir}`,
      "unix_socket_mode = 0600",
      "auth_type = hba",
      `auth_file = ${this.authFile}`,
      `auth_hba_file = ${this.hbaFile}`,
      "admin_users =",
      `stats_users = ${MONITOR_ROLE}`,
      `pool_mode = ${o.mode}`,
      `max_client_conn = ${o.maxClientConnections}`,
      `default_pool_size = ${o.defaultPoolSize}`,
      "server_reset_query = DISCARD ALL",
      // What drivers send at startup that a pooled session cannot carry per client.
      "ignore_startup_parameters = extra_float_digits,options",
      `logfile = ${this.logFile}`,
      `pidfile = ${this.pidFile}`,
      "",
    ].join("\n");
    // The monitoring login is known for the console's trust line, with no secret: it has no HBA line over TCP.
    const auth = [...entries.map((e) => `${quoted(e.login)} ${quoted(e.verifier)}`), `${quoted(MONITOR_ROLE)} ""`].join("\n");
    const hba = [
      "# written by db-platform: each pooled login to its own database, nothing else",
      ...entries.map((e) => `host ${bare(e.database)} ${bare(e.login)} 127.0.0.1/32 scram-sha-256`),
      "# the monitoring login: the console only, over the private socket",
      `local pgbouncer ${MONITOR_ROLE} trust`,
      "",
    ].join("\n");
    fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    let changed = false;
    for (const [file, text] of [
      [this.configFile, config],
      [this.authFile, `${auth}\n`],
      [this.hbaFile, hba],
      [this.entriesFile, `${JSON.stringify(entries, null, 2)}\n`],
    ] as const) {
      if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue;
      fs.writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
      changed = true;
    }
    if (o.runAs.length > 0) execFileSync("chown", ["-R", "postgres:postgres", o.dir]);
    return changed;
  }

  /** The running PgBouncer's pid, or undefined. */
  pid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.pidFile, "utf8").trim());
      return pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async isRunning(): Promise<boolean> {
    return this.pid() !== undefined;
  }

  /** Start it in the background (configured before), and wait until it listens on its port. */
  async start(): Promise<void> {
    if (this.pid() !== undefined) return;
    if (!fs.existsSync(this.configFile)) this.configure([]);
    const logFrom = this.logSize();
    const [cmd, ...prefix] = [...this.opts.runAs, pgbouncerBinary(this.opts.projectDir)];
    const child = spawn(cmd, [...prefix, "-d", this.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const deadline = Date.now() + 10_000;
    const address = `127.0.0.1:${this.opts.port}`;
    // PgBouncer keeps running on its console socket alone when its TCP port is taken: only its log tells.
    let listening: boolean | undefined;
    while (code === 0 && listening === undefined && Date.now() < deadline) {
      const log = this.logSince(logFrom);
      if (log.includes(`cannot listen on ${address}`)) listening = false;
      else if (this.pid() !== undefined && log.includes(`listening on ${address}`)) listening = true;
      else await new Promise((r) => setTimeout(r, 50));
    }
    if (listening === true) return;
    await this.stop();
    const why = listening === false ? `the port is taken by another process` : (stderr || this.logTail()).trim();
    throw new LocalPoolerError(`PgBouncer beside ${this.opts.name} did not start on ${address}: ${why}`);
  }

  /** A session to its console as the monitoring login (SHOW only), over the private socket. */
  async console(): Promise<Client> {
    const c = new Client({ host: this.opts.dir, port: this.opts.port, user: MONITOR_ROLE, database: "pgbouncer" });
    try {
      await c.connect();
    } catch (e) {
      await c.end().catch(() => undefined);
      throw new LocalPoolerError(`PgBouncer beside ${this.opts.name}: cannot read its console (${(e as Error).message}); is it running?`);
    }
    return c;
  }

  /** Its pools and per-database counters, as its console reports them (the console's own pool left out). */
  async readConsole(): Promise<ConsoleReading> {
    const c = await this.console();
    try {
      const n = (v: unknown) => Number(v ?? 0);
      const pools = (await c.query("SHOW POOLS")).rows.filter((r) => r.database !== "pgbouncer");
      const stats = (await c.query("SHOW STATS")).rows.filter((r) => r.database !== "pgbouncer");
      return {
        pools: pools.map((r) => ({
          database: String(r.database),
          login: String(r.user),
          clientsActive: n(r.cl_active),
          clientsWaiting: n(r.cl_waiting),
          serverActive: n(r.sv_active),
          serverIdle: n(r.sv_idle) + n(r.sv_used) + n(r.sv_tested) + n(r.sv_login),
          maxWaitSeconds: n(r.maxwait) + n(r.maxwait_us) / 1e6,
          mode: String(r.pool_mode),
        })),
        stats: stats.map((r) => ({
          database: String(r.database),
          transactions: n(r.total_xact_count),
          queries: n(r.total_query_count),
          waitMicros: n(r.total_wait_time),
          transactionsPerSecond: n(r.avg_xact_count),
          queriesPerSecond: n(r.avg_query_count),
        })),
      };
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Reread the files (a change of services): clients stay connected. */
  reload(): void {
    const pid = this.pid();
    if (pid !== undefined) this.signal(pid, "SIGHUP");
  }

  /** Stop it (SIGINT: PgBouncer's safe shutdown waits for server connections to be released, up to 10 s). */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    this.signal(pid, "SIGINT");
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(pid)) this.signal(pid, "SIGTERM");
    while (isAlive(pid) && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 50));
  }

  private signal(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(pid, signal);
    } catch {
      // it ended meanwhile
    }
  }

  private logSize(): number {
    try {
      return fs.statSync(this.logFile).size;
    } catch {
      return 0;
    }
  }

  /** What it logged after the first `from` bytes. */
  private logSince(from: number): string {
    try {
      return fs.readFileSync(this.logFile).subarray(from).toString("utf8");
    } catch {
      return "";
    }
  }

  private logTail(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").trim().split("\n").slice(-3).join(" ");
    } catch {
      return "no log";
    }
  }
}
