/** `undeclared-database`: a database on the server that no stack resource declares. */
import { q, SYSTEM_DATABASES } from "./context";
import { perItem } from "./rule";

export const undeclaredDatabase = perItem(
  {
    id: "undeclared-database",
    severity: "medium",
    reportedWhen: "a database exists that no stack resource declares (`postgres` and the cloud's own maintenance databases aside)",
  },
  ({ live, declared }) => live.databases.filter((db) => !db.error && !declared.databases.has(db.name) && !SYSTEM_DATABASES.has(db.name)),
  (db, { serviceOf }) => ({
    object: db.name,
    subject: db.owner,
    services: [serviceOf(db.owner)].filter((s): s is string => s !== undefined),
    message: `database ${db.name} (owner ${db.owner}) exists on the server but no stack resource declares it`,
    fix: `declare it in the stack, or DROP DATABASE ${q(db.name)} once its data is saved`,
  }),
);
