/** `inspection-failed`: a database the audit could not read, so nothing in it was checked. */
import { sorted } from "./context";
import { perItem } from "./rule";

export const inspectionFailed = perItem(
  {
    id: "inspection-failed",
    severity: "high",
    reportedWhen: "a database could not be read (connection refused, no CONNECT for the audit login)",
  },
  ({ live }) => live.databases.filter((db) => db.error),
  (db, { scoped }) => ({
    object: db.name,
    services: sorted(scoped(db.name).areas.map((a) => a.service)),
    message: `database ${db.name} could not be inspected: ${db.error}`,
    fix: "give the audit login CONNECT on it (or run the audit as a superuser), then audit again",
  }),
);
