/** `cross-service-access`: a role of one service reaches, owns or will be handed another service's objects. */
import { PUBLIC } from "../model";
import { extraDefaultAcl, SQL_KIND, sorted } from "./context";
import type { ServerRule } from "./rule";

export const crossServiceAccess: ServerRule = {
  id: "cross-service-access",
  severity: "critical",
  source: "server",
  reportedWhen:
    "a role of one service (or a role it reaches) holds a privilege on, or owns, another service's database, schema, table, sequence or function, or default privileges hand it another service's future objects",
  *check({ targets, extraGrants, defaultAcls, serviceOf }) {
    for (const t of targets) {
      const ownerService = serviceOf(t.owner);
      if (t.services.size === 0 || !ownerService || t.services.has(ownerService)) continue;
      const objectServices = [...t.services];
      yield {
        object: t.label,
        subject: t.owner,
        services: sorted([ownerService, ...objectServices]),
        message: `${t.kind} ${t.label} of service ${objectServices.join(", ")} is owned by ${t.owner} (service ${ownerService})`,
        fix: `ALTER ${SQL_KIND[t.kind]} ${t.sqlName} OWNER TO <a role of ${objectServices.join(", ")}>;`,
      };
    }
    for (const g of extraGrants) {
      const t = g.target;
      const objectServices = [...t.services];
      for (const r of g.intruders) {
        yield {
          object: t.label,
          subject: r.name,
          services: sorted([r.service as string, ...objectServices]),
          message: `${r.name} (service ${r.service}) has ${g.privileges.join(", ")} on ${t.kind} ${t.label} of service ${objectServices.join(", ")}${r.name === g.grantee ? "" : ` through ${g.grantee}`}`,
          fix: g.revoke,
        };
      }
    }
    for (const d of defaultAcls) {
      if (d.extra.length > 0 && d.grantee !== PUBLIC && d.intruders.length > 0) yield extraDefaultAcl(d);
    }
  },
};
