/**
 * RDS Proxy (docs/pooling.md): clients must use TLS, and a proxy admits service logins only, each
 * by its own Secrets Manager secret: never the instance's master user (the platform's admin), the
 * monitoring login, or a secret RDS manages for the master user.
 */
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { anyUnknown } from "../engine/graph";
import type { Finding, Rule } from "../engine/types";
import { RDS_INSTANCE } from "./rds";

export const RDS_PROXY = "aws:rds/proxy:Proxy";

interface ProxyAuth {
  readonly authScheme?: unknown;
  readonly secretArn?: unknown;
  readonly username?: unknown;
  readonly clientPasswordAuthType?: unknown;
}

const label = (props: Readonly<Record<string, unknown>>, name: string) => `RDS Proxy "${String(props.name ?? name)}"`;

export const rdsProxyTls: Rule = {
  name: "rds-proxy-tls",
  description: "RDS Proxy must require TLS from its clients.",
  enforcementLevel: "mandatory",
  check(graph) {
    const out: Finding[] = [];
    for (const p of graph.ofType(RDS_PROXY)) {
      if (anyUnknown(p.props.requireTls))
        out.push({ urn: p.urn, message: `${label(p.props, p.name)}: cannot verify requireTls during preview`, unverifiable: true });
      else if (p.props.requireTls !== true) out.push({ urn: p.urn, message: `${label(p.props, p.name)} must have requireTls true` });
    }
    return out;
  },
};

export const rdsProxyServiceLoginsOnly: Rule = {
  name: "rds-proxy-service-logins-only",
  description:
    "RDS Proxy admits service logins only, each by its own secret with SCRAM-SHA-256: never the master user (admin), the monitoring login or the master user's secret.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    const instances = graph.ofType(RDS_INSTANCE);
    const masters = new Set(instances.map((i) => i.props.username).filter((u): u is string => typeof u === "string"));
    const masterSecrets = new Set(
      instances.flatMap((i) => ((i.props.masterUserSecrets as Array<{ secretArn?: unknown }> | undefined) ?? []).map((s) => s.secretArn)),
    );
    for (const p of graph.ofType(RDS_PROXY)) {
      const auths = (p.props.auths as ProxyAuth[] | undefined) ?? [];
      if (anyUnknown(p.props.auths, ...auths.map((a) => a.username))) {
        out.push({
          urn: p.urn,
          message: `${label(p.props, p.name)}: cannot verify the logins it admits during preview`,
          unverifiable: true,
        });
        continue;
      }
      for (const a of auths) {
        const who = typeof a.username === "string" ? a.username : undefined;
        const refuse = (why: string) => out.push({ urn: p.urn, message: `${label(p.props, p.name)} ${why}` });
        if (!who) refuse("admits a secret without naming its login (auths[].username): it could be the admin's");
        else if (masters.has(who)) refuse(`admits "${who}", an RDS master user (the platform's admin): only service logins may be pooled`);
        else if (who === MONITOR_ROLE) refuse(`admits the monitoring login "${who}": only service logins may be pooled`);
        if (masterSecrets.has(a.secretArn)) refuse("admits the master user's RDS-managed secret");
        if (a.authScheme !== "SECRETS" || a.clientPasswordAuthType !== "POSTGRES_SCRAM_SHA_256")
          refuse(
            `must admit ${who ?? "each login"} by its secret with SCRAM-SHA-256 (authScheme SECRETS, clientPasswordAuthType POSTGRES_SCRAM_SHA_256)`,
          );
      }
    }
    return out;
  },
};

export const PROXY_RULES: readonly Rule[] = [rdsProxyTls, rdsProxyServiceLoginsOnly];
