/**
 * The whole stack from its Spec: one server component per declared server, one shared database
 * per (server, database) used by schema-isolated services, and one ServiceDatabase per service.
 * Reads like a table of contents; the work is in the components.
 */
import { sharedDataMayGo, sharedDatabaseResource } from "./dataResources";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { Backups } from "./backups/backups";
import { ContainerServer } from "./servers/container";
import { DirectServer } from "./servers/direct";
import { serverDashboard } from "./servers/dashboard";
import { RdsServer } from "./servers/rds";
import type { ServerHandle } from "./servers/server";
import { ServiceDatabase } from "./service/serviceDatabase";
import { monitorConnect, type ServerMonitoring, serverMonitoring } from "./monitoring";
import { currentRoleName, previousRoleName, type ServerSpec, type SharedDatabaseSpec, type Spec } from "./spec";

export interface DatabasePlatformArgs {
  readonly spec: Spec;
  /** Admin passwords of `local` and `external` servers, by server name (secret config). */
  readonly adminPasswords?: Readonly<Record<string, pulumi.Input<string>>>;
}

export interface ServiceOutputs {
  readonly server: string;
  readonly database: pulumi.Output<string>;
  readonly schemas: pulumi.Output<string>[];
  readonly urls: Record<string, pulumi.Output<string>>;
  /** The direct URLs of the logins whose `urls` go through the server's pooler (docs/pooling.md). */
  readonly directUrls?: Record<string, pulumi.Output<string>>;
  /** Logins that have rotated: the previous generation's URLs, valid until the next rotation (docs/rotation.md). */
  readonly previousUrls?: Record<string, pulumi.Output<string>>;
  /** The previous generation's direct URLs of pooled logins. */
  readonly previousDirectUrls?: Record<string, pulumi.Output<string>>;
  /** Per login key: `primary`, or `replica <name>` where its URL points at the server's reader; `pooler → …` when pooled. */
  readonly routing: Record<string, string>;
  readonly secretArns: Record<string, pulumi.Output<string>>;
}

export class DatabasePlatform extends pulumi.ComponentResource {
  readonly servers: Record<string, ServerHandle> = {};
  readonly sharedDatabases: Record<string, postgresql.Database> = {};
  readonly services: Record<string, ServiceDatabase> = {};
  /** The monitoring login of each server (docs/stats.md). */
  readonly monitoring: Record<string, ServerMonitoring> = {};
  /** `backups.storage: s3`: the bucket, runner, schedules and alarms. */
  readonly backups?: Backups;

  constructor(name: string, args: DatabasePlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:index:DatabasePlatform", name, {}, opts);
    const { spec } = args;
    for (const server of spec.servers) {
      this.servers[server.name] = this.createServer(server, args);
      this.monitoring[server.name] = serverMonitoring(this.servers[server.name], this, {
        environment: spec.environment,
        strict: spec.strict,
        tags: spec.tags,
      });
    }
    for (const shared of spec.sharedDatabases)
      this.sharedDatabases[sharedKey(shared.server, shared.name)] = this.createSharedDatabase(
        shared,
        !sharedDataMayGo(spec, shared.server, shared.name),
      );
    for (const service of spec.services) {
      this.services[service.name] = new ServiceDatabase(
        service.name,
        {
          spec: service,
          server: this.servers[service.server],
          environment: spec.environment,
          strict: spec.strict,
          sharedDatabase: service.isolation === "schema" ? this.sharedDatabases[sharedKey(service.server, service.database)] : undefined,
          monitoring: this.monitoring[service.server],
          tags: spec.tags,
          target: service.move && {
            server: this.servers[service.move.target.server],
            sharedDatabase:
              service.move.target.isolation === "schema"
                ? this.sharedDatabases[sharedKey(service.move.target.server, service.move.target.database)]
                : undefined,
            monitoring: this.monitoring[service.move.target.server],
          },
        },
        { parent: this },
      );
    }
    this.admitToProxies();
    if (spec.backups?.storage === "s3") this.backups = this.createBackups(spec);
    for (const server of Object.values(this.servers)) {
      if (!(server instanceof RdsServer)) continue;
      serverDashboard(server, {
        environment: spec.environment,
        services: spec.services.filter((s) => s.server === server.spec.name),
        // Per-service metrics come from the publisher, which runs beside the backup runner.
        monitoring: this.backups ? spec.monitoring : undefined,
      });
    }
    this.registerOutputs({ services: this.serviceOutputs(), backupBucket: this.backups?.bucket.bucket, monitoring: this.monitoringUrls() });
  }

  /** Per-service outputs for the stack: database, schemas, secret URLs, secret ARNs. */
  serviceOutputs(): Record<string, ServiceOutputs> {
    return Object.fromEntries(
      Object.entries(this.services).map(([name, s]) => [
        name,
        {
          server: s.serving.server,
          database: s.database,
          schemas: s.schemas,
          urls: s.urls,
          ...(Object.keys(s.directUrls).length > 0 && { directUrls: s.directUrls }),
          ...(Object.keys(s.previousUrls).length > 0 && { previousUrls: s.previousUrls }),
          ...(Object.keys(s.previousDirectUrls).length > 0 && { previousDirectUrls: s.previousDirectUrls }),
          routing: s.routing,
          secretArns: s.secretArns,
        },
      ]),
    );
  }

  /** Each RDS Proxy admits the logins whose URLs go through it, with their secrets. */
  private admitToProxies(): void {
    for (const server of Object.values(this.servers)) {
      if (!(server instanceof RdsServer) || !server.proxy) continue;
      server.proxy.admit(
        Object.values(this.services)
          .filter((s) => s.serving.server === server.spec.name)
          .flatMap((s) =>
            s.spec.logins
              .filter((l) => s.routing[l.key]?.startsWith("pooler"))
              .flatMap((l) => [
                { username: currentRoleName(l), secretArn: s.secretArns[l.key], service: s.spec.name },
                // A rotated login's previous credential, admitted until the next rotation (docs/rotation.md).
                ...(s.previousSecretArns[l.key]
                  ? [{ username: previousRoleName(l) as string, secretArn: s.previousSecretArns[l.key], service: s.spec.name }]
                  : []),
              ]),
          ),
      );
    }
  }

  /** Per server, the monitoring login's URL (secret): what `db-platform stats` connects with. */
  monitoringUrls(): Record<string, pulumi.Output<string>> {
    return Object.fromEntries(Object.entries(this.monitoring).map(([server, m]) => [server, m.url]));
  }

  private createServer(server: ServerSpec, args: DatabasePlatformArgs): ServerHandle {
    const { spec } = args;
    const opts = { parent: this };
    switch (server.hosting) {
      case "rds":
        return new RdsServer(
          server.name,
          {
            spec: server,
            environment: spec.environment,
            tags: spec.tags,
            alarmEmail: spec.alarmEmail,
            pooledServices: spec.services.filter((s) => s.server === server.name && s.pool).map((s) => s.name),
          },
          opts,
        );
      case "container":
        return new ContainerServer(server.name, { spec: server, environment: spec.environment }, opts);
      case "local":
      case "external": {
        const adminPassword = args.adminPasswords?.[server.name];
        if (adminPassword === undefined) throw new pulumi.RunError(`adminPasswords.${server.name}: missing admin password`);
        return new DirectServer(server.name, { spec: server, adminPassword }, opts);
      }
    }
  }

  /** The AWS side of logical backups, for the services on RDS servers (others: `db-platform backup run --url`). */
  private createBackups(spec: Spec): Backups {
    const servers = Object.values(this.servers)
      .filter((s): s is RdsServer => s instanceof RdsServer)
      .map((server) => ({
        server,
        services: Object.values(this.services)
          .filter((s) => s.spec.server === server.spec.name)
          .map((s) => ({ spec: s.spec, readonlySecretArn: s.secretArns.readonly })),
        monitorSecretArn: this.monitoring[server.spec.name].secretArn as pulumi.Output<string>,
      }))
      .filter((s) => s.services.length > 0);
    return new Backups(
      "backups",
      {
        spec: spec.backups as NonNullable<Spec["backups"]>,
        environment: spec.environment,
        stack: pulumi.getStack(),
        servers,
        monitoring: spec.monitoring,
        tags: spec.tags,
        alarmEmail: spec.alarmEmail,
      },
      { parent: this },
    );
  }

  /** A database shared by schema-isolated services: owned by the admin, closed to PUBLIC; protected unless all its services allow data loss. */
  private createSharedDatabase(shared: SharedDatabaseSpec, protect: boolean): postgresql.Database {
    const name = `${shared.server}-${shared.name}`;
    const pg = { parent: this, provider: this.servers[shared.server].provider };
    const db = new postgresql.Database(
      sharedDatabaseResource(shared.server, shared.name),
      { name: shared.name, template: "template0", encoding: "UTF8" },
      // Dropped before the monitoring login, whose DROP OWNED revokes its CONNECT here (a race with DROP DATABASE otherwise).
      { ...pg, protect, dependsOn: [this.monitoring[shared.server].role] },
    );
    new postgresql.Grant(
      `${name}-shared-db-revoke-public`,
      { database: db.name, role: "public", objectType: "database", privileges: [] },
      pg,
    );
    new postgresql.Grant(
      `${name}-shared-public-schema-revoke-public`,
      { database: db.name, role: "public", objectType: "schema", schema: "public", privileges: [] },
      pg,
    );
    monitorConnect(`${name}-shared-db-monitor`, db.name, this.monitoring[shared.server], { ...pg, deletedWith: db });
    return db;
  }
}

function sharedKey(server: string, database: string): string {
  return `${server}/${database}`;
}
