/**
 * The program body shared by `index.ts` (the real engine) and `db-platform synth` (the SDK's
 * mocks): validate the config once, then register the platform.
 */
import * as pulumi from "@pulumi/pulumi";
import { DatabasePlatform } from "./platform";
import type { ReplicaEndpoint } from "./servers/server";
import { type ConfigInput, loadSpec, SpecError } from "./spec";

export interface ServerOutputs {
  readonly hosting: string;
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** The replica serving read-only logins; absent when the primary serves them. */
  readonly reader?: string;
  readonly replicas: Readonly<Record<string, ReplicaEndpoint>>;
}

export interface ProgramOutputs {
  readonly environment: string;
  readonly servers: Record<string, ServerOutputs>;
  readonly services: ReturnType<DatabasePlatform["serviceOutputs"]>;
  /** `backups.storage: s3`: the backup bucket's name (DB_PLATFORM_BACKUP_BUCKET for `db-platform backup`). */
  readonly backupBucket?: pulumi.Output<string>;
  /** Per server: the monitoring login's URL (secret), for `db-platform stats`. */
  readonly monitoring: Record<string, pulumi.Output<string>>;
}

export function runProgram(input: ConfigInput): ProgramOutputs {
  let spec;
  try {
    spec = loadSpec(input);
  } catch (e) {
    // RunError prints the message alone: one line per problem, no stack trace.
    if (e instanceof SpecError) throw new pulumi.RunError(e.message);
    throw e;
  }
  const passwords = input.values.adminPasswords as Record<string, unknown> | undefined;
  const adminPasswords = Object.fromEntries(
    Object.entries(passwords ?? {}).map(([server, value]) => [server, pulumi.secret(typeof value === "string" ? value : "[secret]")]),
  );
  const platform = new DatabasePlatform("db-platform", { spec, adminPasswords });
  return {
    environment: spec.environment,
    servers: Object.fromEntries(
      Object.entries(platform.servers).map(([n, s]) => [
        n,
        { hosting: s.spec.hosting, host: s.host, port: s.port, reader: s.reader?.name, replicas: s.replicaEndpoints },
      ]),
    ),
    services: platform.serviceOutputs(),
    backupBucket: platform.backups?.bucket.bucket,
    monitoring: platform.monitoringUrls(),
  };
}
