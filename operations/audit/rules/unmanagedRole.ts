/** `unmanaged-role`: a role on the server that no stack resource declares. */
import { q } from "./context";
import type { ServerRule } from "./rule";

export const unmanagedRole: ServerRule = {
  id: "unmanaged-role",
  severity: "medium",
  source: "server",
  reportedWhen: "a role exists that no stack resource declares",
  *check({ live, declared, system, platform }) {
    for (const role of live.roles) {
      if (system(role.name) || platform(role.name) || declared.roles.has(role.name)) continue;
      yield {
        object: `role ${role.name}`,
        subject: role.name,
        services: [],
        message: `role ${role.name} exists on the server but no stack resource declares it${role.login ? " (it can log in)" : ""}`,
        fix: `declare it in the stack, or DROP ROLE ${q(role.name)} after reassigning what it owns`,
      };
    }
  },
};
