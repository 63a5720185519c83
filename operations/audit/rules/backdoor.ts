/** `backdoor`: ways out of a database — FDW and dblink extensions, foreign servers, user mappings, subscriptions. */
import { q } from "./context";
import type { ServerRule } from "./rule";

/** Extensions that let a session reach other databases or servers. */
export const BACKDOOR_EXTENSIONS = new Set(["dblink", "postgres_fdw", "file_fdw", "mysql_fdw", "oracle_fdw", "tds_fdw", "mongo_fdw"]);
const isBackdoorExtension = (name: string) => BACKDOOR_EXTENSIONS.has(name) || name.endsWith("_fdw");

export const backdoor: ServerRule = {
  id: "backdoor",
  severity: "critical",
  source: "server",
  reportedWhen:
    "any database (declared or not) has a foreign data wrapper or dblink extension, a foreign server, a user mapping or a subscription",
  *check({ live }) {
    const services: string[] = [];
    for (const db of live.databases) {
      const where = `(in database ${db.name})`;
      for (const e of db.extensions.filter((x) => isBackdoorExtension(x.name))) {
        // `services` first: the JSON report's key order since version 1.
        yield {
          services,
          object: `${db.name} extension ${e.name}`,
          message: `extension ${e.name} in ${db.name} lets sessions reach other databases or servers`,
          fix: `DROP EXTENSION ${q(e.name)}; ${where}`,
        };
      }
      for (const s of db.foreignServers) {
        yield {
          services,
          object: `${db.name} foreign server ${s.name}`,
          subject: s.owner,
          message: `foreign server ${s.name} (${s.wrapper}, owner ${s.owner}) in ${db.name} reaches outside the database`,
          fix: `DROP SERVER ${q(s.name)} CASCADE; ${where}`,
        };
      }
      for (const m of db.userMappings) {
        yield {
          services,
          object: `${db.name} user mapping ${m.user}@${m.server}`,
          subject: m.user,
          message: `user mapping for ${m.user} on foreign server ${m.server} in ${db.name} holds credentials for another server`,
          fix: `DROP USER MAPPING FOR ${m.user === "public" ? "PUBLIC" : q(m.user)} SERVER ${q(m.server)}; ${where}`,
        };
      }
      for (const s of db.subscriptions) {
        yield {
          services,
          object: `${db.name} subscription ${s.name}`,
          subject: s.owner,
          message: `subscription ${s.name} (owner ${s.owner}) copies data into ${db.name} from another server`,
          fix: `DROP SUBSCRIPTION ${q(s.name)}; ${where}`,
        };
      }
    }
  },
};
