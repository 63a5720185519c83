/** `pooler-admission`: reported from the local poolers' files, not the catalogs (operations/audit/poolers.ts checks it). */
import type { PoolerRule } from "./rule";

export const poolerAdmission: PoolerRule = {
  id: "pooler-admission",
  severity: "critical",
  source: "poolers",
  reportedWhen:
    "a local server's PgBouncer admits a login to a database the stack does not pool there (its HBA or auth file), trusts a login other than the monitoring login on its console, has an admin user or another stats user, or listens beyond 127.0.0.1",
};
