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
import { auditContext } from "./checks/context";
import { checkDefaultAcls } from "./checks/defaultAcls";
import { checkDatabases, checkTarget } from "./checks/objects";
import { checkPasswordExpiry } from "./checks/passwords";
import { checkMemberships, checkRoles } from "./checks/roles";

export { BACKDOOR_EXTENSIONS } from "./checks/objects";
export { areaLabel } from "./access";

export interface AnalyzeOptions {
  /** Logins whose password expires later than this many days from now (or never) are reported. */
  readonly passwordMaxAgeDays?: number;
  /** For the password expiry check. @default new Date() */
  readonly now?: Date;
}

export interface ServerAnalysis {
  readonly findings: AuditFinding[];
  /** Per service and PUBLIC: the access level in each area of this server (matrix cells). */
  readonly access: Map<string, Map<string, AccessLevel>>;
  /** Area labels of this server, in declaration order, with their service. */
  readonly areas: Array<{ label: string; service: string }>;
}

/** Runs every check over one model of the server, then computes the access matrix. */
export function analyzeServer(declared: DeclaredServer, live: LiveServer, opts: AnalyzeOptions = {}): ServerAnalysis {
  const ctx = auditContext(declared, live);
  checkRoles(ctx);
  checkMemberships(ctx);
  const targets = checkDatabases(ctx);
  for (const t of targets) checkTarget(ctx, t);
  for (const db of live.databases) if (declared.databases.has(db.name) && !db.error) checkDefaultAcls(ctx, db);
  if (opts.passwordMaxAgeDays !== undefined) checkPasswordExpiry(ctx, opts.passwordMaxAgeDays, opts.now ?? new Date());
  return { findings: ctx.findings, access: accessLevels(ctx, targets), areas: areaLabels(declared) };
}
