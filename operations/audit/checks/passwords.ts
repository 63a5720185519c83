/** Logins whose password outlives the password policy. */
import { type AuditContext, q } from "./context";

export function checkPasswordExpiry(ctx: AuditContext, maxDays: number, now: Date): void {
  const { add, live, system, platform, serviceOf } = ctx;
  const limit = now.getTime() + maxDays * 86_400_000;
  for (const role of live.roles) {
    if (!role.login || system(role.name) || platform(role.name)) continue;
    const until = role.validUntil === null ? Number.POSITIVE_INFINITY : Date.parse(role.validUntil);
    if (until <= limit) continue;
    const service = serviceOf(role.name);
    add({
      rule: "password-expiry",
      object: `role ${role.name}`,
      subject: role.name,
      services: service ? [service] : [],
      message: `login ${role.name}'s password ${role.validUntil === null ? "never expires" : `expires ${role.validUntil}`}; the policy is at most ${maxDays} days`,
      fix: `rotate it and set ALTER ROLE ${q(role.name)} VALID UNTIL '${new Date(limit).toISOString()}';`,
    });
  }
}
