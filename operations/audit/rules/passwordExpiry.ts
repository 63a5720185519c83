/** `password-expiry` (with `--password-max-age`): logins whose password outlives the password policy. */
import { q } from "./context";
import type { ServerRule } from "./rule";

export const passwordExpiry: ServerRule = {
  id: "password-expiry",
  severity: "low",
  source: "server",
  reportedWhen: "with `--password-max-age N`: a login whose password never expires, or expires later than N days from now",
  *check({ live, system, platform, serviceOf }, { passwordMaxAgeDays, now = new Date() }) {
    if (passwordMaxAgeDays === undefined) return;
    const limit = now.getTime() + passwordMaxAgeDays * 86_400_000;
    for (const role of live.roles) {
      if (!role.login || system(role.name) || platform(role.name)) continue;
      const until = role.validUntil === null ? Number.POSITIVE_INFINITY : Date.parse(role.validUntil);
      if (until <= limit) continue;
      const service = serviceOf(role.name);
      yield {
        object: `role ${role.name}`,
        subject: role.name,
        services: service ? [service] : [],
        message: `login ${role.name}'s password ${role.validUntil === null ? "never expires" : `expires ${role.validUntil}`}; the policy is at most ${passwordMaxAgeDays} days`,
        fix: `rotate it and set ALTER ROLE ${q(role.name)} VALID UNTIL '${new Date(limit).toISOString()}';`,
      };
    }
  },
};
