/** Roles and memberships: unmanaged and powerful roles, cross-service memberships, drift. */
import { POWERFUL_ROLES } from "../../../policies/rules/postgresql";
import { ROLE_ATTRIBUTES } from "../model";
import { ATTRIBUTE_SQL, type AuditContext, q, sorted } from "./context";

/** Every live role against its declaration, and every declared role against the server. */
export function checkRoles(ctx: AuditContext): void {
  const { add, declared, live, liveRoles, system, platform } = ctx;
  for (const role of live.roles) {
    if (system(role.name) || platform(role.name)) continue;
    const d = declared.roles.get(role.name);
    const granted = ROLE_ATTRIBUTES.filter((a) => role[a] && !d?.attributes[a]);
    if (!d) {
      add({
        rule: "unmanaged-role",
        object: `role ${role.name}`,
        subject: role.name,
        services: [],
        message: `role ${role.name} exists on the server but no stack resource declares it${role.login ? " (it can log in)" : ""}`,
        fix: `declare it in the stack, or DROP ROLE ${q(role.name)} after reassigning what it owns`,
      });
    }
    if (granted.length > 0) {
      add({
        rule: "powerful-role",
        object: `role ${role.name}`,
        subject: role.name,
        services: d?.service ? [d.service] : [],
        message: `role ${role.name} has ${granted.map((a) => ATTRIBUTE_SQL[a]).join(", ")}, which the stack does not declare`,
        fix: `ALTER ROLE ${q(role.name)} ${granted.map((a) => `NO${ATTRIBUTE_SQL[a]}`).join(" ")};`,
      });
    }
    if (d && d.login !== role.login) {
      add({
        rule: "drift",
        object: `role ${role.name}`,
        subject: role.name,
        services: d.service ? [d.service] : [],
        message: `role ${role.name} is ${role.login ? "LOGIN" : "NOLOGIN"} live but declared ${d.login ? "LOGIN" : "NOLOGIN"}`,
        fix: `ALTER ROLE ${q(role.name)} ${d.login ? "LOGIN" : "NOLOGIN"}; or run pulumi up`,
      });
    }
  }
  for (const d of declared.roles.values()) {
    if (!liveRoles.has(d.name)) {
      add({
        rule: "drift",
        object: `role ${d.name}`,
        subject: d.name,
        services: d.service ? [d.service] : [],
        message: `role ${d.name} is declared but does not exist on the server`,
        fix: "run pulumi up (or pulumi refresh if it was removed on purpose)",
      });
    }
  }
}

/** Every live membership against the declared ones, and the other way round. */
export function checkMemberships(ctx: AuditContext): void {
  const { add, declared, live, liveRoles, system, platform, serviceOf } = ctx;
  for (const m of live.memberships) {
    if (system(m.member) || platform(m.member)) continue;
    const memberService = serviceOf(m.member);
    const roleService = serviceOf(m.role);
    const declaredMembership = declared.roles.get(m.member)?.memberOf.includes(m.role) ?? false;
    const services = sorted([memberService, roleService].filter((s): s is string => !!s));
    if (memberService && roleService && memberService !== roleService) {
      add({
        rule: "cross-service-membership",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} (service ${memberService}) is a member of ${m.role} (service ${roleService}) and so holds everything ${m.role} may do`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
      continue;
    }
    if (memberService && (POWERFUL_ROLES.has(m.role) || platform(m.role) || liveRoles.get(m.role)?.superuser)) {
      add({
        rule: "powerful-role",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} (service ${memberService}) is a member of ${m.role}, which ${liveRoles.get(m.role)?.superuser ? "is a superuser" : platform(m.role) ? "is the platform's own login" : "reaches every database"}`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
      continue;
    }
    if (!declaredMembership) {
      add({
        rule: "drift",
        object: `role ${m.role}`,
        subject: m.member,
        services,
        message: `${m.member} is a member of ${m.role} live, which the stack does not declare`,
        fix: `REVOKE ${q(m.role)} FROM ${q(m.member)};`,
      });
    }
  }
  for (const d of declared.roles.values()) {
    for (const role of d.memberOf) {
      if (!liveRoles.has(d.name) || live.memberships.some((m) => m.member === d.name && m.role === role)) continue;
      add({
        rule: "drift",
        object: `role ${role}`,
        subject: d.name,
        services: d.service ? [d.service] : [],
        message: `${d.name} is declared a member of ${role} but is not`,
        fix: `GRANT ${q(role)} TO ${q(d.name)}; or run pulumi up`,
      });
    }
  }
}
