/**
 * Happy-path config factories for tests. Each test starts from one of these and changes one
 * thing, so a failing case points at exactly one rule.
 */
import type { ConfigInput } from "../../components/spec";

export type Values = Record<string, unknown>;

export function devValues(): Values {
  return {
    environment: "dev",
    servers: { local: { hosting: "local", version: "16", port: 54329 } },
    services: {
      inventory: { server: "local" },
      payments: { server: "local", isolation: "schema", database: "platform" },
      profile: { server: "local", isolation: "schema", database: "platform" },
      "sv-sdk": {
        server: "local",
        schemas: ["auth", "email", "audit", "permissions"],
        roles: { readonly: { read: ["*"] }, auditor: { read: ["audit"] } },
      },
    },
    adminPasswords: { local: "dev-admin-password" },
  };
}

export function prodValues(): Values {
  return {
    environment: "prod",
    network: { vpcId: "vpc-1", subnetIds: ["subnet-a", "subnet-b"], allowedSecurityGroupIds: ["sg-app"] },
    backups: { storage: "s3", replicaRegion: "eu-west-1" },
    servers: { main: { hosting: "rds", version: "16" }, studio: { hosting: "rds" } },
    services: {
      inventory: { server: "main" },
      payments: { server: "main", isolation: "schema", database: "platform" },
      studio: { server: "studio" },
    },
  };
}

export function input(values: Values, opts: { awsRegion?: string; secretKeys?: string[] } = {}): ConfigInput {
  return {
    values,
    secretKeys: new Set(opts.secretKeys ?? ("adminPasswords" in values ? ["adminPasswords"] : [])),
    awsRegion: opts.awsRegion ?? "eu-central-1",
  };
}

/** A deep copy of `values` with `mutate` applied. */
export function changed(values: Values, mutate: (v: Values) => void): Values {
  const copy = structuredClone(values);
  mutate(copy);
  return copy;
}

// Narrow helpers for mutating nested config in table-driven tests.
export const servers = (v: Values) => v.servers as Record<string, Record<string, unknown>>;
export const services = (v: Values) => v.services as Record<string, Record<string, unknown>>;
