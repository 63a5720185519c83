/**
 * Rotation's alternate logins (docs/rotation.md, components/spec/rotation.ts): a service login
 * `<login>_alt` is the second credential slot of `<login>`, so it must be exactly as able as the
 * login and no more — a LOGIN member of that login only, of the same service, with the same
 * connection limit and settings, holding no privilege, default privilege or membership of its
 * own. Mandatory in every stack: an alternate that held more would be a second, unreviewed login.
 */
import { anyUnknown, PG, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";
import { ALTERNATE_SUFFIX, LOGIN_TAG } from "../../components/spec/rotation";

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

const SECRET = "aws:secretsmanager/secret:Secret";
const SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation";

/**
 * Every login's Secrets Manager secret (the services' and the monitoring login's: tagged
 * `db-platform:login`) is rotated by a rotation function on a schedule
 * (docs/rotation.md, "On AWS"): a SecretRotation beside it (`<login>-rotation` for
 * `<login>-secret`, same parent) with a function and a period of at most `maximumDays`. The
 * `…/previous` secrets are written by the function itself. Advisory by default; mandatory in the
 * strict environments' policy config.
 */
export const loginSecretRotation: Rule = {
  name: "login-secret-rotation",
  description:
    "Every login's Secrets Manager secret (the services' and the monitoring login's) must be rotated by a rotation function at least every maximumDays days.",
  enforcementLevel: "advisory",
  configSchema: { maximumDays: { type: "number", description: "The longest rotation period accepted, in days.", default: 90 } },
  check(graph: StackGraph, config) {
    const out: Finding[] = [];
    const max = Number(config.maximumDays);
    for (const secret of graph.ofType(SECRET)) {
      const tags = (secret.props.tags as Record<string, unknown> | undefined) ?? {};
      const name = secret.props.name;
      if (!tags[LOGIN_TAG] || !secret.name.endsWith("-secret")) continue;
      if (anyUnknown(name) || String(name).endsWith("/previous")) continue;
      const rotationName = `${secret.name.slice(0, -"-secret".length)}-rotation`;
      const rotation = graph.ofType(SECRET_ROTATION).find((r) => r.name === rotationName && r.parent === secret.parent);
      const owner = tags["db-platform:service"] ? `service ${String(tags["db-platform:service"])}` : `login ${String(tags[LOGIN_TAG])}`;
      const refuse = (why: string) => out.push({ urn: secret.urn, message: `secret "${String(name)}" (${owner}): ${why}` });
      if (!rotation) {
        refuse(`must be rotated by Secrets Manager with a rotation function (aws.secretsmanager.SecretRotation ${rotationName})`);
        continue;
      }
      const rules = (rotation.props.rotationRules as { automaticallyAfterDays?: unknown; scheduleExpression?: unknown } | undefined) ?? {};
      if (anyUnknown(rotation.props.rotationLambdaArn, rules.automaticallyAfterDays)) {
        out.push({ urn: secret.urn, message: `secret ${secret.name}: cannot verify its rotation during preview`, unverifiable: true });
        continue;
      }
      if (typeof rotation.props.rotationLambdaArn !== "string" || rotation.props.rotationLambdaArn === "")
        refuse("its rotation must name the server's rotation function (rotationLambdaArn)");
      const days = Number(rules.automaticallyAfterDays);
      // A schedule expression alone says nothing the rule can check: the period is stated in days.
      if (!(days > 0 && days <= max))
        refuse(`must rotate at least every ${max} days (automaticallyAfterDays is ${String(rules.automaticallyAfterDays ?? "unset")})`);
    }
    return out;
  },
};

export const ROTATION_RULES: readonly Rule[] = [rotationAlternates, loginSecretRotation];
