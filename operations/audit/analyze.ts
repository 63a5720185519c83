/**
 * Declared against live: the findings and the access matrix of one server.
 *
 * Effective access follows PostgreSQL's rules: a role holds what is granted to it, to PUBLIC,
 * and to every role it is a member of, directly or through other roles (membership is counted
 * whether or not it is inherited, since a member can always SET ROLE); an owner holds every
 * privilege on what it owns; a superuser holds everything.
 */
import type { AccessLevel, AuditFinding, DeclaredServer, LiveServer } from "./model";
import { accessLevels, areaLabels } from "./access";
import { auditContext } from "./rules/context";
import { type AuditOptions, SERVER_RULES } from "./rules";

export { BACKDOOR_EXTENSIONS } from "./rules";
export { areaLabel } from "./access";

export type AnalyzeOptions = AuditOptions;

export interface ServerAnalysis {
  readonly findings: AuditFinding[];
  /** Per service and PUBLIC: the access level in each area of this server (matrix cells). */
  readonly access: Map<string, Map<string, AccessLevel>>;
  /** Area labels of this server, in declaration order, with their service. */
  readonly areas: Array<{ label: string; service: string }>;
}

/** Runs every server rule over one model of the server, then computes the access matrix. */
export function analyzeServer(declared: DeclaredServer, live: LiveServer, opts: AnalyzeOptions = {}): ServerAnalysis {
  const ctx = auditContext(declared, live);
  const findings: AuditFinding[] = [];
  for (const rule of SERVER_RULES) {
    for (const f of rule.check(ctx, opts)) findings.push({ severity: rule.severity, rule: rule.id, server: declared.name, ...f });
  }
  return { findings, access: accessLevels(ctx, ctx.targets), areas: areaLabels(declared) };
}
