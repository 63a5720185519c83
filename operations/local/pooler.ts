/**
 * PgBouncer beside a local server and each of its standbys (`servers.<name>.pooler`;
 * docs/pooling.md), installed once by scripts/pooler/pgbouncer.sh. It listens on 127.0.0.1 only
 * (no Unix socket), has a pool per service database and login, and admits only the pooled
 * service logins the stack declares: each is in its auth file with its SCRAM verifier (the one
 * its role has on the server) and in its HBA file for its own database only, so the admin, the
 * monitoring login, any superuser and any other login are refused before a server connection is
 * opened. Its admin console admits no one. It logs in to the server over TCP as the client's own
 * login, by SCRAM pass-through of the client's proof: no file of it holds a password.
 * A change of services rewrites the files and reloads it (SIGHUP), without dropping clients.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { PoolMode } from "../../components/spec";
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
      "unix_socket_dir =",
      "auth_type = hba",
      `auth_file = ${this.authFile}`,
      `auth_hba_file = ${this.hbaFile}`,
      "admin_users =",
      "stats_users =",
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
    const auth = entries.map((e) => `${quoted(e.login)} ${quoted(e.verifier)}`).join("\n");
    const hba = [
      "# written by db-platform: each pooled login to its own database, nothing else",
      ...entries.map((e) => `host ${bare(e.database)} ${bare(e.login)} 127.0.0.1/32 scram-sha-256`),
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

  /** Start it in the background (configured before), and wait until it listens. */
  async start(): Promise<void> {
    if (this.pid() !== undefined) return;
    if (!fs.existsSync(this.configFile)) this.configure([]);
    const [cmd, ...prefix] = [...this.opts.runAs, pgbouncerBinary(this.opts.projectDir)];
    const child = spawn(cmd, [...prefix, "-d", this.configFile], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const deadline = Date.now() + 10_000;
    while (this.pid() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (code !== 0 || this.pid() === undefined) {
      throw new LocalPoolerError(
        `PgBouncer beside ${this.opts.name} did not start on 127.0.0.1:${this.opts.port}: ${(stderr || this.logTail()).trim()}`,
      );
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

  private logTail(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").trim().split("\n").slice(-3).join(" ");
    } catch {
      return "no log";
    }
  }
}
