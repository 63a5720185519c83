/**
 * Rotation's alternate logins (docs/rotation.md, components/spec/rotation.ts): a service login
 * `<login>_alt` is the second credential slot of `<login>`, so it must be exactly as able as the
 * login and no more — a LOGIN member of that login only, of the same service, with the same
 * connection limit and settings, holding no privilege, default privilege or membership of its
 * own. Mandatory in every stack: an alternate that held more would be a second, unreviewed login.
 */
import { anyUnknown, PG, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";
import { ALTERNATE_SUFFIX } from "../../components/spec/rotation";

/** Settings an alternate shares with its login. */
const SAME = ["login", "inherit", "connectionLimit", "assumeRole", "searchPaths"] as const;

const json = (v: unknown) => JSON.stringify(v ?? null);

export const rotationAlternates: Rule = {
  name: "rotation-alternates",
  description: `A service login's alternate (its name with ${ALTERNATE_SUFFIX}, its second credential for rotation) is a member of that login only, with its settings, and holds nothing of its own.`,
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph: StackGraph) {
    const out: Finding[] = [];
    const alternates = new Map<string, PolicyInputResource>();
    for (const { resource: r, service } of graph.roles.values()) {
      const name = r.props.name;
      if (!service || anyUnknown(name) || !String(name).endsWith(ALTERNATE_SUFFIX)) continue;
      const of = String(name).slice(0, -ALTERNATE_SUFFIX.length);
      const login = graph.role(r.provider, of);
      if (!login || login.service !== service || login.resource.props.login !== true) continue;
      alternates.set(`${r.provider}|${String(name)}`, r);
      const roles = ((r.props.roles as unknown[] | undefined) ?? []).map(String);
      if (roles.length !== 1 || roles[0] !== of) {
        out.push({
          urn: r.urn,
          message: `role "${String(name)}" (service ${service}) is ${of}'s alternate login: it must be a member of "${of}" only; found ${roles.join(", ") || "no membership"}`,
        });
      }
      const differ = SAME.filter((k) => !anyUnknown(r.props[k]) && json(r.props[k]) !== json(login.resource.props[k]));
      if (differ.length > 0) {
        out.push({
          urn: r.urn,
          message: `role "${String(name)}" (service ${service}) must have the settings of "${of}", whose alternate login it is; ${differ.join(", ")} differ`,
        });
      }
    }
    const heldBy = (r: PolicyInputResource, role: unknown) => alternates.has(`${r.provider}|${String(role)}`);
    for (const r of [...graph.ofType(PG.grant), ...graph.ofType(PG.defaultPrivileges), ...graph.ofType(PG.grantRole)]) {
      if (!heldBy(r, r.props.role) && !(r.type === PG.grantRole && heldBy(r, r.props.grantRole))) continue;
      out.push({
        urn: r.urn,
        message: `${r.name}: an alternate login holds nothing of its own and no role joins it: its privileges come from its login`,
      });
    }
    return out;
  },
};

export const ROTATION_RULES: readonly Rule[] = [rotationAlternates];
