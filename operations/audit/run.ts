/**
 * `db-platform audit`: the declared side from the stack (synthesized offline, or a `pulumi stack
 * export` given with --state), the live side from each server's catalogs, compared per server.
 *
 * Connections: a `local` server is read over its private socket as the bootstrap superuser (the
 * same trust `db-platform local` uses); any server can be given as `--server-url name=URL`, which
 * wins. Every session is read-only (default_transaction_read_only) and only reads catalogs.
 * With backups configured, each service's latest backup manifest is checked against the RPO and
 * each local server's continuous archive for its health (operations/audit/archives.ts); the
 * local poolers' files are checked against what the stack pools (operations/audit/poolers.ts).
 */
import * as path from "node:path";
import type { Spec } from "../../components/spec";
import { formatProblem, locationOf, validateConfig } from "../../components/spec";
import { fromStateDocument, fromSynth } from "../../policies/engine/sources";
import type { StackInput } from "../../policies/engine/types";
import { readJson } from "../stack/policyCheck";
import { readConfigFile } from "../stack/stackConfig";
import { synth } from "../stack/synth";
import { analyzeServer } from "./analyze";
import { archiveFindings } from "./archives";
import { backupFindings } from "./backups";
import { ServerReadError as AuditError, serverConnector } from "../connect";
import { collectServer } from "./catalog";
import { declaredServers } from "./declared";
import { poolerFindings } from "./poolers";
import { credentialFindings } from "./rules/credentialAge";
import type { AuditReport } from "./model";
import { buildReport, MOVE_STATES, type ServerResult } from "./report";

/** The audit could not run (exit 3); also what reading a server's catalogs fails with. */
export { AuditError };
export { AUDIT_SESSION_OPTIONS, parseServerUrls } from "../connect";

export interface AuditOptions {
  /** The stack's config file, name and project, as `--stack`/`--config` resolve them. */
  readonly file: string;
  readonly stack: string;
  readonly project: string;
  /** The time credentials are aged against (`credential-age`). @default new Date() */
  readonly now?: Date;
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
      : [
          ...(await backupFindings({ spec, stack: opts.stack, projectDir: opts.projectDir, awsRegion: input.awsRegion }, audited)),
          ...(await archiveFindings(spec, opts.stack, opts.projectDir, audited)),
        ];
  return buildReport({
    stack: opts.stack,
    results,
    extraFindings: [...backups, ...poolerFindings(spec, opts.stack, opts.projectDir), ...credentialFindings(audited, opts.now)],
    durationMs: performance.now() - started,
    service: opts.service,
    moves: spec.services.flatMap((s) =>
      s.move
        ? [{ service: s.name, from: locationOf(s), to: locationOf(s.move.target), phase: s.move.phase, state: MOVE_STATES[s.move.phase] }]
        : [],
    ),
  });
}
