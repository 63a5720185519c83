/**
 * Read-only sessions to a stack's servers, for the commands that only read them (`audit` as an
 * admin that reads every catalog, `stats` and its publisher task as the monitoring login): a
 * `--server-url` wins; a `local` server is reached over its private socket as the bootstrap
 * superuser, which then takes exactly the given login's privileges (SET ROLE). Every session is
 * read-only and no query may hang.
 */
import * as path from "node:path";
import { Client, escapeIdentifier } from "pg";
import type { ServerSpec } from "../components/spec";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../components/spec/defaults";
import { localRoot } from "./local/local";

/** A server could not be read: named, with where it was looked for (never a password). */
export class ServerReadError extends Error {}

/** Opens a session to one database of a server. */
export type Connect = (database: string) => Promise<Client>;

/** Every audit session: read-only, and no catalog query may hang. */
export const AUDIT_SESSION_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=60000";

/** Parse repeated `--server-url name=postgresql://…` values. */
export function parseServerUrls(values: readonly string[]): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=]+)=(postgres(?:ql)?:\/\/.+)$/.exec(v);
    if (!m) throw new ServerReadError(`--server-url ${v}: expected <server>=postgresql://user:password@host:port/database`);
    urls[m[1]] = m[2];
  }
  return urls;
}

/** Open a session, or fail naming the server and where it was looked for (never the password). */
async function open(server: string, where: string, config: ConstructorParameters<typeof Client>[0], role?: string): Promise<Client> {
  const client = new Client(config);
  try {
    await client.connect();
    // The local bootstrap superuser takes exactly the privileges of the login it stands for.
    if (role) await client.query(`SET ROLE ${escapeIdentifier(role)}`);
  } catch (e) {
    await client.end().catch(() => undefined);
    throw new ServerReadError(`server ${server}: cannot connect to ${where} (${(e as Error).message || (e as { code?: string }).code})`);
  }
  return client;
}

export interface ConnectorOptions {
  readonly stack: string;
  readonly projectDir: string;
  readonly serverUrls?: Readonly<Record<string, string>>;
  /** On a local server, SET ROLE to this login after connecting through the socket. */
  readonly localRole?: string;
  /** What `--server-url` must name, for the error when it is missing. */
  readonly urlHint: string;
}

/** Read-only sessions to each database of a server: `--server-url`, or a local server's private socket. */
export function serverConnector(server: ServerSpec, opts: ConnectorOptions): Connect {
  const url = opts.serverUrls?.[server.name];
  if (url) {
    return (database) => {
      const u = new URL(url);
      u.pathname = `/${encodeURIComponent(database)}`;
      const where = `${u.hostname}:${u.port || 5432}/${database} as ${decodeURIComponent(u.username)}`;
      return open(server.name, where, { connectionString: u.toString(), options: AUDIT_SESSION_OPTIONS, connectionTimeoutMillis: 15_000 });
    };
  }
  if (server.hosting === "local") {
    const socketDir = path.join(localRoot(opts.projectDir, opts.stack), server.name, "run");
    return (database) =>
      open(
        server.name,
        `${socketDir} (is it running? db-platform local start --stack ${opts.stack})`,
        { host: socketDir, port: server.port, user: LOCAL_BOOTSTRAP_SUPERUSER, database, options: AUDIT_SESSION_OPTIONS },
        opts.localRole,
      );
  }
  throw new ServerReadError(
    `server ${server.name} (hosting ${server.hosting}): give --server-url ${server.name}=postgresql://<login>@<host>:<port>/postgres for ${opts.urlHint}`,
  );
}
