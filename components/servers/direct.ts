/**
 * Servers the platform reaches but does not create: `local` (a PostgreSQL server on this machine,
 * started by the project's tooling, see scripts/) and `external` (an existing server). Both are
 * managed through an admin login that needs only CREATEDB and CREATEROLE.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ExternalServerSpec, LocalServerSpec } from "../spec";
import { ServerComponent } from "./server";

export interface DirectServerArgs {
  readonly spec: LocalServerSpec | ExternalServerSpec;
  /** The admin login's password, from the secret `db-platform:adminPasswords.<server>`. */
  readonly adminPassword: pulumi.Input<string>;
}

export class DirectServer extends ServerComponent {
  readonly spec: LocalServerSpec | ExternalServerSpec;

  constructor(name: string, args: DirectServerArgs, opts?: pulumi.ComponentResourceOptions) {
    const type = args.spec.hosting === "local" ? "db-platform:servers:LocalServer" : "db-platform:servers:ExternalServer";
    super(type, name, {}, opts);
    const { spec } = args;
    this.spec = spec;
    this.connectAdmin(
      name,
      {
        host: spec.host,
        port: spec.port,
        username: spec.adminUser,
        password: pulumi.secret(args.adminPassword),
        sslmode: spec.sslMode,
        superuser: spec.hosting === "external" ? spec.superuser : false,
        expectedVersion: spec.version,
        connectTimeout: 15,
      },
      { parent: this },
    );
    // Local servers: the streaming standbys `db-platform local start` runs on this machine.
    for (const r of spec.replicas) this.replicaEndpoints[r.name] = { host: this.host, port: pulumi.output(r.port) };
    this.registerOutputs({ host: this.host, port: this.port, reader: spec.reader, replicas: this.replicaEndpoints });
  }
}
