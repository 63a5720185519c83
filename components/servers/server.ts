/**
 * What every hosting kind hands to the services placed on it: an explicit PostgreSQL provider
 * and the address services connect to.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import type { ServerSpec } from "../spec";
import type { LoginRotation } from "./loginRotation";

export interface ServerHandle {
  readonly spec: ServerSpec;
  /** Every database object on this server is registered with this provider, explicitly. */
  readonly provider: postgresql.Provider;
  /**
   * The login the provider connects as (the RDS master user, the local or external admin):
   * never a superuser on RDS, so it is made a member of each service's owner role (see
   * docs/isolation.md) to grant and revoke on the objects that role owns.
   */
  readonly adminRole: string;
  /**
   * The same server's provider connected to `database` (the main provider for `postgres`). The
   * provider drops a role's privileges and default privileges (REASSIGN/DROP OWNED) only in the
   * database it is connected to: a role whose objects live in a shared database is managed
   * through that database's provider, so deleting it leaves nothing that blocks DROP ROLE.
   */
  providerFor(database: string): postgresql.Provider;
  /** Where clients connect (the primary). */
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** The `sslmode` service connection URLs carry. */
  readonly sslMode: string;
  /** The component that owns the server's resources; service components are parented to the platform. */
  readonly component: pulumi.ComponentResource;
  /** RDS only: the customer-managed key that encrypts the service logins' secrets. */
  readonly kmsKeyArn?: pulumi.Output<string>;
  /** Every replica's address, by replica name. */
  readonly replicaEndpoints: Readonly<Record<string, ReplicaEndpoint>>;
  /** The replica that serves read-only logins (`servers.<name>.reader`), when there is one. */
  readonly reader?: ReaderEndpoint;
  /**
   * RDS only: where a service's pooled logins connect, its own RDS Proxy endpoint (the proxy's
   * default one for a service without) (local poolers: the spec's ports).
   */
  readonly pooler?: (service: string) => ReplicaEndpoint;
  /** RDS only: the function Secrets Manager rotates the service logins' secrets with (components/servers/loginRotation.ts). */
  readonly loginRotation?: LoginRotation;
}

export interface ReplicaEndpoint {
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** RDS: the replica's region. */
  readonly region?: string;
}

/** A stable reader address: always the same named replica, never a random one of several. */
export interface ReaderEndpoint extends ReplicaEndpoint {
  readonly name: string;
}

/** The reader of a server: its `reader` replica's endpoint, by name. */
export function readerOf(name: string | undefined, endpoints: Readonly<Record<string, ReplicaEndpoint>>): ReaderEndpoint | undefined {
  return name !== undefined && endpoints[name] ? { name, ...endpoints[name] } : undefined;
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

const UNBOUNDED_POOL = { maxConnections: 0 } as const;

/**
 * One server's PostgreSQL providers: the main one (database `postgres`) and one per other database
 * asked for. Their connection pools are unbounded (`maxConnections: 0`; the provider's default is
 * 20): creating a database, the provider holds one connection in a transaction with an advisory
 * lock on the admin role while it needs a second one, so once the engine runs as many operations
 * at once as the pool is large, every connection waits for the lock and the lock holder for a
 * connection — forever (seen at `--parallel 32`). Connections stay bounded by the engine's
 * parallelism (about three per operation).
 */
export class ServerProviders {
  readonly main: postgresql.Provider;
  private readonly byDatabase = new Map<string, postgresql.Provider>();

  constructor(
    private readonly name: string,
    private readonly args: postgresql.ProviderArgs,
    private readonly opts: pulumi.CustomResourceOptions,
  ) {
    this.main = new postgresql.Provider(`${name}-postgresql`, { ...args, ...UNBOUNDED_POOL, database: "postgres" }, opts);
  }

  for(database: string): postgresql.Provider {
    if (database === "postgres") return this.main;
    let provider = this.byDatabase.get(database);
    if (!provider) {
      provider = new postgresql.Provider(`${this.name}-postgresql-${database}`, { ...this.args, ...UNBOUNDED_POOL, database }, this.opts);
      this.byDatabase.set(database, provider);
    }
    return provider;
  }
}

/** How a server's providers reach it as its admin login. */
export interface AdminConnection extends postgresql.ProviderArgs {
  readonly host: pulumi.Input<string>;
  readonly port: pulumi.Input<number>;
  readonly username: string;
  readonly sslmode: string;
}

/**
 * What the hosting kinds share: the admin connection and its providers, the replicas' addresses
 * and the reader. Each kind's constructor creates (or finds) the server, fills `replicaEndpoints`
 * and calls `connectAdmin` once.
 */
export abstract class ServerComponent extends pulumi.ComponentResource implements ServerHandle {
  abstract readonly spec: ServerSpec;
  readonly component: pulumi.ComponentResource = this;
  readonly replicaEndpoints: Record<string, ReplicaEndpoint> = {};
  pooler?: (service: string) => ReplicaEndpoint;
  private admin?: { host: pulumi.Output<string>; port: pulumi.Output<number>; role: string; sslMode: string; providers: ServerProviders };

  /** Connect the server's PostgreSQL providers as its admin login. */
  protected connectAdmin(name: string, connection: AdminConnection, opts: pulumi.CustomResourceOptions): void {
    // An Output is kept as it is: re-wrapping it would resolve a tick later and reorder registrations.
    const output = <T>(v: pulumi.Input<T>): pulumi.Output<T> => (pulumi.Output.isInstance(v) ? v : pulumi.output(v)) as pulumi.Output<T>;
    this.admin = {
      host: output(connection.host),
      port: output(connection.port),
      role: connection.username,
      sslMode: connection.sslmode,
      providers: new ServerProviders(name, connection, opts),
    };
  }

  private get connected() {
    if (!this.admin) throw new Error(`${this.constructor.name}: connectAdmin was not called`);
    return this.admin;
  }

  get host(): pulumi.Output<string> {
    return this.connected.host;
  }
  get port(): pulumi.Output<number> {
    return this.connected.port;
  }
  get adminRole(): string {
    return this.connected.role;
  }
  get sslMode(): string {
    return this.connected.sslMode;
  }
  get provider(): postgresql.Provider {
    return this.connected.providers.main;
  }
  providerFor(database: string): postgresql.Provider {
    return this.connected.providers.for(database);
  }
  get reader(): ReaderEndpoint | undefined {
    return readerOf(this.spec.reader, this.replicaEndpoints);
  }
}
