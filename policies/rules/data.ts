/**
 * Data safety: a service's database and schemas, and a database shared by schema-isolated
 * services, are `protect`ed, so that no config change deletes them with their data
 * (docs/data-safety.md). A service that sets `allowDataLoss: true` relaxes that on purpose; this
 * rule makes the relaxation visible at every preview (advisory by default, mandatory in prod).
 */
import type { StackGraph } from "../engine/graph";
import type { Finding, Rule } from "../engine/types";

export const serviceDataProtected: Rule = {
  name: "service-data-protected",
  description:
    "A service's database and schemas, and a shared database, are protected from deletion unless the service sets allowDataLoss.",
  enforcementLevel: "advisory",
  check(graph: StackGraph) {
    const out: Finding[] = [];
    for (const db of graph.serviceDatabases()) {
      if (db.resource.protect) continue;
      const whose = db.service ? `service ${db.service}` : `services ${[...db.tenants].sort().join(", ")}`;
      const keys = db.service ? [db.service] : [...db.tenants].sort();
      out.push({
        urn: db.resource.urn,
        message: `database "${String(db.resource.props.name)}" of ${whose} is not protected: a config change can delete it with its data (${keys.map((k) => `services.${k}.allowDataLoss`).join(", ")})`,
      });
    }
    for (const schema of graph.schemas.values()) {
      if (!schema.service || schema.resource.protect) continue;
      out.push({
        urn: schema.resource.urn,
        message: `schema "${String(schema.resource.props.name)}" of service ${schema.service} is not protected: a config change can delete it with its data (services.${schema.service}.allowDataLoss)`,
      });
    }
    return out;
  },
};

export const DATA_RULES: readonly Rule[] = [serviceDataProtected];
