/** `powerful-role`: attributes the stack does not declare, or a service role inside a role that reaches everything. */
import { ROLE_ATTRIBUTES } from "../model";
import { ATTRIBUTE_SQL, q, sorted } from "./context";
import type { ServerRule } from "./rule";

export const powerfulRole: ServerRule = {
  id: "powerful-role",
  severity: "critical",
  source: "server",
  reportedWhen:
    "a role has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS the stack does not declare, or a service role is a member of a superuser, the platform's admin or a built-in that reaches every database (`pg_read_all_data`, `pg_write_all_data`, `pg_execute_server_program`, `rds_superuser`, …)",
  *check({ live, declared, memberships, liveRoles, system, platform, serviceOf }) {
    for (const role of live.roles) {
      if (system(role.name) || platform(role.name)) continue;
      const d = declared.roles.get(role.name);
      const granted = ROLE_ATTRIBUTES.filter((a) => role[a] && !d?.attributes[a]);
      if (granted.length === 0) continue;
      yield {
        object: `role ${role.name}`,
        subject: role.name,
        services: d?.service ? [d.service] : [],
        message: `role ${role.name} has ${granted.map((a) => ATTRIBUTE_SQL[a]).join(", ")}, which the stack does not declare`,
        fix: `ALTER ROLE ${q(role.name)} ${granted.map((a) => `NO${ATTRIBUTE_SQL[a]}`).join(" ")};`,
      };
    }
    for (const m of memberships) {
      if (m.kind !== "powerful") continue;
      const why = liveRoles.get(m.role)?.superuser
        ? "is a superuser"
        : platform(m.role)
          ? "is the platform's own login"
          : "reaches every database";
      yield {
        object: `role ${m.role}`,
        subject: m.member,
        services: sorted([serviceOf(m.member), serviceOf(m.role)].filter((s): s is string => !!s)),
        message: `${m.member} (service ${serviceOf(m.member)}) is a member of ${m.role}, which ${why}`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      };
    }
  },
};
