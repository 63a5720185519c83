/** `undeclared-database`: a database on the server that no stack resource declares. */
import { q, SYSTEM_DATABASES } from "./context";
import type { ServerRule } from "./rule";

export const undeclaredDatabase: ServerRule = {
  id: "undeclared-database",
  severity: "medium",
  source: "server",
  reportedWhen: "a database exists that no stack resource declares (`postgres` and the cloud's own maintenance databases aside)",
  *check({ live, declared, serviceOf }) {
    for (const db of live.databases) {
      if (db.error || declared.databases.has(db.name) || SYSTEM_DATABASES.has(db.name)) continue;
      const service = serviceOf(db.owner);
      yield {
        object: db.name,
        subject: db.owner,
        services: service ? [service] : [],
        message: `database ${db.name} (owner ${db.owner}) exists on the server but no stack resource declares it`,
        fix: `declare it in the stack, or DROP DATABASE ${q(db.name)} once its data is saved`,
      };
    }
  },
};
