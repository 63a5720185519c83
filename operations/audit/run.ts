/**
 * `db-platform audit`: the declared side from the stack (synthesized offline, or a `pulumi stack
 * export` given with --state), the live side from each server's catalogs, compared per server.
 *
 * Connections: a `local` server is read over its private socket as the bootstrap superuser (the
 * same trust `db-platform local` uses); any server can be given as `--server-url name=URL`, which
 * wins. Every session is read-only (default_transaction_read_only) and only reads catalogs.
 * With backups configured, each service's latest backup manifest is checked against the RPO.
 */
import * as path from "node:path";
import { Client, escapeIdentifier } from "pg";
import type { ServerSpec, Spec } from "../../components/spec";
import { formatProblem, validateConfig } from "../../components/spec";
import { LOCAL_BOOTSTRAP_SUPERUSER } from "../../components/spec/defaults";
import { fromStateDocument, fromSynth } from "../../policies/engine/sources";
import type { StackInput } from "../../policies/engine/types";
import { localRoot } from "../local/local";
import { readJson } from "../stack/policyCheck";
import { readConfigFile } from "../stack/stackConfig";
import { synth } from "../stack/synth";
import { analyzeServer } from "./analyze";
import { backupFindings } from "./backups";
import { collectServer, type Connect } from "./catalog";
import { declaredServers } from "./declared";
import type { AuditReport } from "./model";
import { buildReport, type ServerResult } from "./report";

export class AuditError extends Error {}

export interface AuditOptions {
  /** The stack's config file, name and project, as `--stack`/`--config` resolve them. */
  readonly file: string;
  readonly stack: string;
  readonly project: string;
  readonly projectDir: string;
  /** A `pulumi stack export` document or `synth --json` output to read the declared side from. */
  readonly state?: string;
  readonly service?: string;
  /** Server name -> PostgreSQL URL of a login that may read every database's catalogs. */
  readonly serverUrls?: Readonly<Record<string, string>>;
  readonly passwordMaxAgeDays?: number;
  /** Databases read at the same time per server. @default 8 */
  readonly concurrency?: number;
  /** Check each service's latest backup against the RPO when the stack configures backups. @default true */
  readonly backups?: boolean;
  /** AWS region for the backup bucket (the stack's aws:region unless set). */
  readonly awsRegion?: string;
}

/** Every audit session: read-only, and no catalog query may hang. */
export const AUDIT_SESSION_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=60000";

/** Parse repeated `--server-url name=postgresql://…` values. */
export function parseServerUrls(values: readonly string[]): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=]+)=(postgres(?:ql)?:\/\/.+)$/.exec(v);
    if (!m) throw new AuditError(`--server-url ${v}: expected <server>=postgresql://user:password@host:port/database`);
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
    throw new AuditError(`server ${server}: cannot connect to ${where} (${(e as Error).message || (e as { code?: string }).code})`);
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
  throw new AuditError(
    `server ${server.name} (hosting ${server.hosting}): give --server-url ${server.name}=postgresql://<login>@<host>:<port>/postgres for ${opts.urlHint}`,
  );
}

function loadSpec(file: string): { input: ReturnType<typeof readConfigFile>; spec: Spec } {
  const input = readConfigFile(file);
  const result = validateConfig(input);
  if (!result.ok) throw new AuditError(`${path.basename(file)}:\n${result.problems.map(formatProblem).join("\n")}`);
  return { input, spec: result.spec };
}

export async function runAudit(opts: AuditOptions): Promise<AuditReport> {
  const started = performance.now();
  const { input, spec } = loadSpec(opts.file);
  if (opts.service && !spec.services.some((s) => s.name === opts.service)) {
    throw new AuditError(
      `--service ${opts.service}: stack ${opts.stack} has no such service (${spec.services.map((s) => s.name).join(", ")})`,
    );
  }
  const declaredInput: StackInput = opts.state
    ? fromStateDocument(readJson(opts.state))
    : fromSynth(await synth(input, opts.project, opts.stack));
  const declared = declaredServers(declaredInput, spec);
  const wanted = opts.service ? new Set([spec.services.find((s) => s.name === opts.service)?.server]) : undefined;

  const results: ServerResult[] = [];
  for (const server of spec.servers) {
    const d = declared.get(server.name);
    if (!d || (wanted && !wanted.has(server.name))) continue;
    const connect = serverConnector(server, {
      ...opts,
      urlHint: "a login that can read every database (the RDS master user, the container's admin)",
    });
    const live = await collectServer(server.name, connect, { concurrency: opts.concurrency });
    results.push({ live, analysis: analyzeServer(d, live, { passwordMaxAgeDays: opts.passwordMaxAgeDays }) });
  }
  const audited = spec.services.filter((s) => !opts.service || s.name === opts.service);
  const backups =
    opts.backups === false
      ? []
      : await backupFindings({ spec, stack: opts.stack, projectDir: opts.projectDir, awsRegion: input.awsRegion }, audited);
  return buildReport({
    stack: opts.stack,
    results,
    extraFindings: backups,
    durationMs: performance.now() - started,
    service: opts.service,
  });
}
