/** `unmanaged-role`: a role on the server that no stack resource declares. */
import { q } from "./context";
import { perItem } from "./rule";

export const unmanagedRole = perItem(
  { id: "unmanaged-role", severity: "medium", reportedWhen: "a role exists that no stack resource declares" },
  ({ live, declared, system, platform }) => live.roles.filter((r) => !system(r.name) && !platform(r.name) && !declared.roles.has(r.name)),
  (role) => ({
    object: `role ${role.name}`,
    subject: role.name,
    services: [],
    message: `role ${role.name} exists on the server but no stack resource declares it${role.login ? " (it can log in)" : ""}`,
    fix: `declare it in the stack, or DROP ROLE ${q(role.name)} after reassigning what it owns`,
  }),
);
