/**
 * The platform's monitoring login (components/monitoring.ts, docs/stats.md) is the one role the
 * stack declares outside every service: it may be a member of `pg_monitor` and hold CONNECT on
 * databases, and nothing else — no power attribute, no other membership, no privilege on a
 * schema or an object. No other role outside the services joins a built-in role. On RDS its
 * alternate (its second credential slot for Secrets Manager's rotation) is a member of it only,
 * holding nothing.
 */
import { MONITOR_MEMBERSHIP, MONITOR_ROLE } from "../../components/spec/defaults";
import { alternateRoleName } from "../../components/spec/rotation";
import { anyUnknown, PG, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";
import { POWERFUL_ROLES } from "./postgresql";

/** PostgreSQL's and the clouds' predefined roles: cluster-wide by nature. */
const isBuiltIn = (role: string) => /^(pg_|rds_|rdsadmin$|azure_|cloudsql)/.test(role) || POWERFUL_ROLES.has(role);

const MONITOR_ALTERNATE = alternateRoleName(MONITOR_ROLE);

const POWER = ["superuser", "createDatabase", "createRole", "replication", "bypassRowLevelSecurity"] as const;

/** A grant of exactly CONNECT on a database to the monitoring login: what it may hold. */
export function isMonitorConnect(r: PolicyInputResource): boolean {
  const p = r.props;
  return (
    r.type === PG.grant &&
    p.role === MONITOR_ROLE &&
    p.objectType === "database" &&
    Array.isArray(p.privileges) &&
    p.privileges.length === 1 &&
    String(p.privileges[0]).toUpperCase() === "CONNECT"
  );
}

export const monitoringRole: Rule = {
  name: "monitoring-role",
  description: `The monitoring login ${MONITOR_ROLE} is a member of ${MONITOR_MEMBERSHIP} with CONNECT on databases and nothing else; no other role outside the services joins a built-in role.`,
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph: StackGraph) {
    const out: Finding[] = [];
    for (const { resource: r, service } of graph.roles.values()) {
      const name = r.props.name;
      if (service || anyUnknown(name)) continue;
      const joined = ((r.props.roles as unknown[] | undefined) ?? []).map(String);
      if (name === MONITOR_ALTERNATE) {
        // Its second credential slot on RDS (docs/rotation.md): a member of it only, with nothing of its own.
        const power = POWER.filter((a) => r.props[a] === true);
        if (joined.length !== 1 || joined[0] !== MONITOR_ROLE || power.length > 0)
          out.push({
            urn: r.urn,
            message: `${MONITOR_ALTERNATE} is ${MONITOR_ROLE}'s alternate login: a member of ${MONITOR_ROLE} only, with no power attribute; found ${[...joined, ...power].join(", ") || "no membership"}`,
          });
        continue;
      }
      if (name !== MONITOR_ROLE) {
        const builtIn = joined.filter(isBuiltIn);
        if (builtIn.length > 0) {
          out.push({
            urn: r.urn,
            message: `role "${String(name)}" must not be a member of ${builtIn.join(", ")}: only the monitoring login ${MONITOR_ROLE} joins a built-in role (${MONITOR_MEMBERSHIP})`,
          });
        }
        continue;
      }
      const extra = joined.filter((g) => g !== MONITOR_MEMBERSHIP);
      if (extra.length > 0) {
        out.push({ urn: r.urn, message: `${MONITOR_ROLE} may be a member of ${MONITOR_MEMBERSHIP} only; found ${extra.join(", ")}` });
      }
      const power = POWER.filter((a) => r.props[a] === true);
      if (power.length > 0) out.push({ urn: r.urn, message: `${MONITOR_ROLE} must not have ${power.join(", ")}` });
    }
    for (const r of [...graph.ofType(PG.grant), ...graph.ofType(PG.defaultPrivileges)]) {
      if (r.props.role === MONITOR_ALTERNATE) {
        out.push({ urn: r.urn, message: `${MONITOR_ALTERNATE} holds nothing of its own: its privileges come from ${MONITOR_ROLE}` });
        continue;
      }
      if (r.props.role !== MONITOR_ROLE || isMonitorConnect(r)) continue;
      out.push({
        urn: r.urn,
        message: `${MONITOR_ROLE} may hold CONNECT on databases only; found ${String(r.props.objectType)} privileges (${String(r.props.privileges)}) in database "${String(r.props.database)}"`,
      });
    }
    for (const r of graph.ofType(PG.grantRole)) {
      if ([MONITOR_ROLE, MONITOR_ALTERNATE].some((m) => r.props.role === m || r.props.grantRole === m)) {
        out.push({ urn: r.urn, message: `${MONITOR_ROLE} takes no membership but ${MONITOR_MEMBERSHIP}, and no role joins it` });
      }
    }
    return out;
  },
};

export const MONITORING_RULES: readonly Rule[] = [monitoringRole];
