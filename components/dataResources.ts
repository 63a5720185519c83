/**
 * The resources that hold a service's data, named the way the program registers them: a service's
 * own database (`<service>-db`), its schemas (`<service>-schema-<schema>`) and a database shared
 * by schema-isolated services (`<server>-<database>-shared-db`). The program names them with these
 * functions; `db-platform up` compares them with a stack's state before it applies anything
 * (operations/stack/dataProtection.ts).
 */
import { placesOf, type Spec } from "./spec";

/**
 * During a move (`db-platform move`) the target place's resources are named after
 * `<service>.next`; once the move is done they take the service's own names again (aliases).
 */
export const MOVE_TARGET_SUFFIX = ".next";
export const moveTargetPrefix = (service: string) => `${service}${MOVE_TARGET_SUFFIX}`;

export const serviceDatabaseResource = (service: string) => `${service}-db`;
export const serviceSchemaResource = (service: string, schema: string) => `${service}-schema-${schema}`;
export const sharedDatabaseResource = (server: string, database: string) => `${server}-${database}-shared-db`;

export interface DataResource {
  readonly kind: "database" | "schema";
  /** The resource's name in the stack. */
  readonly resource: string;
  /** The PostgreSQL name: the database's, or the schema's. */
  readonly name: string;
  /** A schema's database. */
  readonly database?: string;
  /** The service whose data it holds; undefined for a shared database. */
  readonly service?: string;
  /** Whether `up` may delete or replace it (its service's `allowDataLoss`, or every service's in a shared database). */
  readonly mayGo: boolean;
}

/** A shared database may go only when every service in it allows its data to go. */
export function sharedDataMayGo(spec: Spec, server: string, database: string): boolean {
  return spec.services
    .filter((s) => placesOf(s).some((p) => p.isolation === "schema" && p.server === server && p.database === database))
    .every((s) => s.allowDataLoss);
}

/** Every data resource a spec declares. */
export function dataResources(spec: Spec): DataResource[] {
  const out: DataResource[] = [];
  for (const shared of spec.sharedDatabases) {
    out.push({
      kind: "database",
      resource: sharedDatabaseResource(shared.server, shared.name),
      name: shared.name,
      mayGo: sharedDataMayGo(spec, shared.server, shared.name),
    });
  }
  for (const service of spec.services) {
    for (const s of placesOf(service)) {
      const prefix = s === service ? s.name : moveTargetPrefix(s.name);
      if (s.isolation === "database")
        out.push({
          kind: "database",
          resource: serviceDatabaseResource(prefix),
          name: s.database,
          service: s.name,
          mayGo: s.allowDataLoss,
        });
      for (const schema of s.schemas)
        out.push({
          kind: "schema",
          resource: serviceSchemaResource(prefix, schema),
          name: schema,
          database: s.database,
          service: s.name,
          mayGo: s.allowDataLoss,
        });
    }
  }
  return out;
}
