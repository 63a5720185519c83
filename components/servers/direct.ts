/**
 * Servers the platform reaches but does not create: `local` (a PostgreSQL server on this machine,
 * started by the project's tooling, see scripts/) and `external` (an existing server). Both are
 * managed through an admin login that needs only CREATEDB and CREATEROLE.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import type { ExternalServerSpec, LocalServerSpec } from "../spec";
import { type ReaderEndpoint, type ReplicaEndpoint, readerOf, type ServerHandle, ServerProviders } from "./server";

export interface DirectServerArgs {
  readonly spec: LocalServerSpec | ExternalServerSpec;
  /** The admin login's password, from the secret `db-platform:adminPasswords.<server>`. */
  readonly adminPassword: pulumi.Input<string>;
}

export class DirectServer extends pulumi.ComponentResource implements ServerHandle {
  readonly spec: LocalServerSpec | ExternalServerSpec;
  readonly provider: postgresql.Provider;
  private readonly providers: ServerProviders;
  readonly adminRole: string;
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly sslMode: string;
  readonly component = this;
  /** Local servers: the streaming standby serving read-only logins (started by `db-platform local start`). */
  readonly reader?: ReaderEndpoint;
  readonly replicaEndpoints: Record<string, ReplicaEndpoint>;

  providerFor(database: string): postgresql.Provider {
    return this.providers.for(database);
  }

  constructor(name: string, args: DirectServerArgs, opts?: pulumi.ComponentResourceOptions) {
    const type = args.spec.hosting === "local" ? "db-platform:servers:LocalServer" : "db-platform:servers:ExternalServer";
    super(type, name, {}, opts);
    const { spec } = args;
    this.spec = spec;
    this.sslMode = spec.sslMode;
    this.host = pulumi.output(spec.host);
    this.port = pulumi.output(spec.port);
    this.adminRole = spec.adminUser;
    this.providers = new ServerProviders(
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
    this.provider = this.providers.main;
    this.replicaEndpoints = Object.fromEntries(spec.replicas.map((r) => [r.name, { host: this.host, port: pulumi.output(r.port) }]));
    this.reader = readerOf(spec.reader, this.replicaEndpoints);
    this.registerOutputs({ host: this.host, port: this.port, reader: spec.reader, replicas: this.replicaEndpoints });
  }
}
