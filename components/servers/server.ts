/**
 * What every hosting kind hands to the services placed on it: an explicit PostgreSQL provider
 * and the address services connect to.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as postgresql from "@pulumi/postgresql";
import type { ServerSpec } from "../spec";

export interface ServerHandle {
  readonly spec: ServerSpec;
  /** Every database object on this server is registered with this provider, explicitly. */
  readonly provider: postgresql.Provider;
  /** Where clients connect (the primary). */
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** The `sslmode` service connection URLs carry. */
  readonly sslMode: string;
  /** The component that owns the server's resources; service components are parented to the platform. */
  readonly component: pulumi.ComponentResource;
  /** RDS only: the customer-managed key that encrypts the service logins' secrets. */
  readonly kmsKeyArn?: pulumi.Output<string>;
}

/** Tags every AWS resource of a server carries; the policy pack checks the environment tag. */
export function serverTags(environment: string, server: string, extra: Readonly<Record<string, string>>): Record<string, string> {
  return {
    ...extra,
    "db-platform:environment": environment,
    "db-platform:server": server,
    "managed-by": "db-platform",
  };
}
