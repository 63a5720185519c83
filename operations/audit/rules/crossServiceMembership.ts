/** `cross-service-membership`: a role of one service is a member of another service's role. */
import { q, sorted } from "./context";
import type { ServerRule } from "./rule";

export const crossServiceMembership: ServerRule = {
  id: "cross-service-membership",
  severity: "critical",
  source: "server",
  reportedWhen: "a role of one service is a member of a role of another service (`GRANT <other service role> TO <role>`)",
  *check({ memberships, serviceOf }) {
    for (const m of memberships) {
      if (m.kind !== "cross-service") continue;
      const memberService = serviceOf(m.member) as string;
      const roleService = serviceOf(m.role) as string;
      yield {
        object: `role ${m.role}`,
        subject: m.member,
        services: sorted([memberService, roleService]),
        message: `${m.member} (service ${memberService}) is a member of ${m.role} (service ${roleService}) and so holds everything ${m.role} may do`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      };
    }
  },
};
