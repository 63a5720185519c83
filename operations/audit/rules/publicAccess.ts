/** `public-access`: PUBLIC (every role on the server) holds something on a declared object, now or on future ones. */
import { PUBLIC } from "../model";
import { extraDefaultAcl } from "./context";
import type { ServerRule } from "./rule";

export const publicAccess: ServerRule = {
  id: "public-access",
  severity: "critical",
  source: "server",
  reportedWhen:
    "`PUBLIC` holds anything on a declared database, schema, table or sequence (CONNECT, TEMP, CREATE, USAGE, SELECT, …), or default privileges would give it future objects",
  *check({ extraGrants, defaultAcls }) {
    for (const g of extraGrants) {
      if (g.grantee !== PUBLIC) continue;
      const t = g.target;
      yield {
        object: t.label,
        subject: PUBLIC,
        services: [...t.services],
        message: `PUBLIC (every role on the server) has ${g.privileges.join(", ")} on ${t.kind} ${t.label}`,
        fix: g.revoke,
      };
    }
    for (const d of defaultAcls) if (d.extra.length > 0 && d.grantee === PUBLIC) yield extraDefaultAcl(d);
  },
};
