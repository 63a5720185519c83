/**
 * Every audit rule, most severe first: one unit per kind of finding. `analyzeServer` runs the
 * server rules over one model of a live server; docs/audit.md's table of rules is checked against
 * this list (test/docs.test.ts).
 */
import type { AuditRule } from "../model";
import { backdoor } from "./backdoor";
import { archiveHealth } from "./archiveHealth";
import { backupFreshness } from "./backupFreshness";
import { credentialAge } from "./credentialAge";
import { crossServiceAccess } from "./crossServiceAccess";
import { crossServiceMembership } from "./crossServiceMembership";
import { drift } from "./drift";
import { inspectionFailed } from "./inspectionFailed";
import { passwordExpiry } from "./passwordExpiry";
import { poolerAdmission } from "./poolerAdmission";
import { powerfulRole } from "./powerfulRole";
import { publicAccess } from "./publicAccess";
import type { AuditRuleDef, ServerRule } from "./rule";
import { undeclaredDatabase } from "./undeclaredDatabase";
import { undeclaredSchema } from "./undeclaredSchema";
import { unmanagedRole } from "./unmanagedRole";

export type { AuditOptions, AuditRuleDef, ServerRule } from "./rule";
export { BACKDOOR_EXTENSIONS } from "./backdoor";

export const AUDIT_RULES: readonly AuditRuleDef[] = [
  crossServiceAccess,
  crossServiceMembership,
  poolerAdmission,
  publicAccess,
  powerfulRole,
  backdoor,
  drift,
  undeclaredSchema,
  inspectionFailed,
  backupFreshness,
  archiveHealth,
  unmanagedRole,
  undeclaredDatabase,
  credentialAge,
  passwordExpiry,
];

export const SERVER_RULES: readonly ServerRule[] = AUDIT_RULES.filter((r): r is ServerRule => r.source === "server");

const BY_ID = new Map(AUDIT_RULES.map((r) => [r.id, r]));

/** The rule of one kind of finding. */
export function auditRule(id: AuditRule): AuditRuleDef {
  const rule = BY_ID.get(id);
  if (!rule) throw new Error(`no audit rule ${id}`);
  return rule;
}
