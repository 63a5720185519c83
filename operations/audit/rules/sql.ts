/** SQL names and fixed sets the audit rules share. */
import { escapeIdentifier as q } from "pg";
import type { LiveObject, RoleAttribute } from "../model";

export { q };

/** Databases every server has, which no stack declares. */
export const SYSTEM_DATABASES = new Set(["postgres", "rdsadmin", "azure_maintenance", "azure_sys", "cloudsqladmin"]);

export const ATTRIBUTE_SQL: Record<RoleAttribute, string> = {
  superuser: "SUPERUSER",
  createdb: "CREATEDB",
  createrole: "CREATEROLE",
  replication: "REPLICATION",
  bypassrls: "BYPASSRLS",
};

export const SQL_KIND: Record<LiveObject["kind"], string> = {
  database: "DATABASE",
  schema: "SCHEMA",
  table: "TABLE",
  sequence: "SEQUENCE",
  function: "FUNCTION",
};

export const WRITE_PRIVILEGES = new Set([
  "INSERT",
  "UPDATE",
  "DELETE",
  "TRUNCATE",
  "CREATE",
  "EXECUTE",
  "MAINTAIN",
  "REFERENCES",
  "TRIGGER",
]);

export const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
