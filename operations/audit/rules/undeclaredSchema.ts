/**
 * `undeclared-schema`: a schema in a service's database or a shared database that no stack
 * resource declares — typically made by a migration tool (Drizzle's `drizzle`, a tool's
 * bookkeeping schema) or a team. It holds the service's data, yet no grant, default privilege,
 * backup, export or move covers it until it is declared (docs/service-teams.md).
 */
import { q } from "./context";
import { perItem } from "./rule";

export const undeclaredSchema = perItem(
  {
    id: "undeclared-schema",
    severity: "high",
    reportedWhen:
      "a schema exists in a service's database or a shared database that no stack resource declares (`public` aside): outside the stack's grants, backups, exports and moves",
  },
  ({ live, declared }) => {
    const areaDatabases = new Set(declared.areas.map((a) => a.database));
    const known = new Set(declared.schemas.map((s) => `${s.database}/${s.name}`));
    return live.databases
      .filter((db) => !db.error && areaDatabases.has(db.name))
      .flatMap((db) => db.schemas.map((schema) => ({ db: db.name, schema })))
      .filter(({ db, schema }) => schema.name !== "public" && !known.has(`${db}/${schema.name}`));
  },
  ({ db, schema }, { serviceOf, declared }) => {
    const service = serviceOf(schema.owner);
    const shared = declared.areas.some((a) => a.database === db && a.schemas);
    return {
      object: `${db}/${schema.name}`,
      subject: schema.owner,
      services: service ? [service] : [],
      message: `schema ${schema.name} in ${shared ? "shared " : ""}database ${db} (owner ${schema.owner}) is not declared: no grant, backup, export or move of ${service ? `service ${service}` : "any service"} covers it`,
      fix: service
        ? `declare it (services.${service}.schemas: [..., ${schema.name}]) and run up, which adopts it with the service's grants; or move its objects into a declared schema and DROP SCHEMA ${q(schema.name)}`
        : `DROP SCHEMA ${q(schema.name)} once its data is saved, or declare it for the service it belongs to`,
    };
  },
);
