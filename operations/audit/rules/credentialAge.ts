/**
 * `credential-age`: a login of a service with `services.<name>.rotation` whose credential is older
 * than that period — rotated longer ago, or never rotated (its age unknown): reported from the
 * stack file's credentials, which `db-platform rotate` writes (docs/rotation.md), not the catalogs
 * (PostgreSQL does not record when a password was set). `credentialFindings` checks it. The logins
 * Secrets Manager rotates (services on rds servers) are not its: their schedule is the stack's
 * SecretRotation, which the pack's `login-secret-rotation` rule requires.
 */
import type { ServiceSpec } from "../../../components/spec";
import type { AuditFinding } from "../model";
import type { CredentialRule } from "./rule";

export const credentialAge: CredentialRule = {
  id: "credential-age",
  severity: "medium",
  source: "credentials",
  reportedWhen:
    "a login of a service that sets a rotation period (`services.<name>.rotation`) was last rotated longer ago than that, never rotated, or its rotation stopped before it was verified",
};

const DAY = 86_400_000;

/** The logins of the audited services whose credentials are due. */
export function credentialFindings(services: readonly ServiceSpec[], now = new Date()): AuditFinding[] {
  const out: AuditFinding[] = [];
  for (const s of services) {
    if (s.rotationDays === undefined) continue;
    for (const login of s.logins) {
      if (login.rotatedBy) continue;
      const c = login.credential;
      const days = c ? Math.floor((now.getTime() - Date.parse(c.rotatedAt)) / DAY) : undefined;
      const message = c?.pending
        ? `login ${login.name}'s rotation to generation ${c.generation} was written but not verified`
        : days === undefined
          ? `login ${login.name} has never been rotated (the period is ${s.rotationDays} days)`
          : days > s.rotationDays
            ? `login ${login.name} was last rotated ${days} days ago (generation ${c?.generation}); the period is ${s.rotationDays} days`
            : undefined;
      if (!message) continue;
      out.push({
        severity: credentialAge.severity,
        rule: credentialAge.id,
        server: s.server,
        object: `role ${login.name}`,
        subject: login.name,
        services: [s.name],
        message,
        fix: `npx db-platform rotate --stack <stack> --service ${s.name} --login ${login.key}`,
      });
    }
  }
  return out;
}
