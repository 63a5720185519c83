/**
 * Schemas a service creates itself. A schema-isolated service whose migration tools run
 * `CREATE SCHEMA IF NOT EXISTS` (Drizzle, Prisma) needs its owner role to hold CREATE on the
 * shared database (`services.<name>.createSchemas`), and may then create schemas there that the
 * stack does not declare. `no-cross-service-privileges` admits that CREATE only for a tenant's
 * NOLOGIN owner role; this rule makes each such relaxation visible at every preview (advisory by
 * default, mandatory where a stack's policy config makes every rule mandatory, as prod's does).
 */
import { PG, type StackGraph } from "../engine/graph";
import type { Finding, Rule } from "../engine/types";

export const serviceCreatesSchemas: Rule = {
  name: "service-creates-schemas",
  description: "A service's owner role holds CREATE on a shared database only where the service sets createSchemas; each one is reported.",
  enforcementLevel: "advisory",
  check(graph: StackGraph) {
    const out: Finding[] = [];
    for (const r of graph.ofType(PG.grant)) {
      const p = r.props;
      if (p.objectType !== "database" || !Array.isArray(p.privileges)) continue;
      if (!p.privileges.some((x) => String(x).toUpperCase() === "CREATE")) continue;
      const db = graph.database(r.provider, p.database);
      const grantee = graph.role(r.provider, p.role);
      if (!db || db.service || !grantee?.service) continue;
      out.push({
        urn: r.urn,
        message: `role "${String(p.role)}" (service ${grantee.service}) may create schemas in shared database "${String(p.database)}" on server ${graph.serverLabel(r.provider)} (services.${grantee.service}.createSchemas): a schema it creates is outside the stack until declared`,
      });
    }
    return out;
  },
};

export const SCHEMA_RULES: readonly Rule[] = [serviceCreatesSchemas];
