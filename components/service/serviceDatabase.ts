/**
 * One service's slice of a server: its database (or schemas in a shared database), a NOLOGIN
 * owner role, login roles with generated passwords, grants and default privileges that reach
 * only its own objects, and connection URLs as secrets.
 */
import { serviceDatabaseResource, serviceSchemaResource } from "../dataResources";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ReplicaEndpoint, ServerHandle } from "../servers/server";
import { loginSecret } from "../servers/aws";
import { serverTags } from "../servers/server";
import { loginSecretName, type RoleSpec, type ServiceSpec } from "../spec";
import { planService } from "./plan";
import { monitorConnect, type ServerMonitoring } from "../monitoring";

export interface ServiceDatabaseArgs {
  readonly spec: ServiceSpec;
  readonly server: ServerHandle;
  readonly environment: string;
  /** A strict environment: longer recovery windows for the logins' secrets. @default false */
  readonly strict?: boolean;
  /** Schema isolation: the shared database resource the schemas live in. */
  readonly sharedDatabase?: postgresql.Database;
  /** The server's monitoring login: CONNECT on the service's own database. */
  readonly monitoring?: ServerMonitoring;
  /** Extra tags for AWS resources. @default {} */
  readonly tags?: Readonly<Record<string, string>>;
}

/** Attributes every service role states explicitly, so the policy pack sees them. */
export const UNPRIVILEGED = {
  superuser: false,
  createDatabase: false,
  createRole: false,
  replication: false,
  bypassRowLevelSecurity: false,
} as const;

export function connectionUrl(
  user: string,
  password: pulumi.Input<string>,
  host: pulumi.Input<string>,
  port: pulumi.Input<number>,
  database: string,
  sslMode: string,
) {
  return pulumi.secret(
    pulumi.interpolate`postgresql://${user}:${pulumi.output(password).apply(encodeURIComponent)}@${host}:${port}/${database}?sslmode=${sslMode}`,
  );
}

/** Logins that never write: they connect to the server's reader replica when it has one. */
export function readsOnly(login: RoleSpec): boolean {
  return login.kind === "readonly" || (login.kind === "scoped" && login.write.length === 0);
}

/** Where a login connects: the primary, or the server's reader replica for read-only logins. */
export function loginTarget(login: RoleSpec, server: ServerHandle): { label: string; endpoint: ReplicaEndpoint } {
  if (server.reader && readsOnly(login)) return { label: `replica ${server.reader.name}`, endpoint: server.reader };
  return { label: "primary", endpoint: { host: server.host, port: server.port } };
}

const monitorRole = (args: ServiceDatabaseArgs) => (args.monitoring ? [args.monitoring.role] : []);

export class ServiceDatabase extends pulumi.ComponentResource {
  readonly spec: ServiceSpec;
  readonly database: pulumi.Output<string>;
  readonly schemas: pulumi.Output<string>[];
  readonly ownerRole: postgresql.Role;
  /** The server admin's membership in the owner role. */
  readonly adminMembership: postgresql.GrantRole;
  readonly loginRoles: Record<string, postgresql.Role> = {};
  /** Connection URLs by login key (app, readonly, migrator, scoped keys), all secret. */
  readonly urls: Record<string, pulumi.Output<string>> = {};
  /** RDS only: Secrets Manager secret ARN by login key. */
  readonly secretArns: Record<string, pulumi.Output<string>> = {};
  /** Where each login's URL points: `primary`, or `replica <name>` for read-only logins on a server with a reader. */
  readonly routing: Record<string, string> = {};

  constructor(name: string, args: ServiceDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:service:ServiceDatabase", name, {}, opts);
    const { spec, server } = args;
    this.spec = spec;
    const pg = { parent: this, provider: server.provider };

    // Under schema isolation the owner's objects and default privileges live in the shared
    // database, which outlives the service: its role is managed through that database's provider,
    // whose REASSIGN/DROP OWNED on delete then clear them, so DROP ROLE succeeds.
    this.ownerRole = new postgresql.Role(
      `${name}-owner`,
      { name: spec.owner.name, login: false, inherit: true, ...UNPRIVILEGED },
      spec.isolation === "schema"
        ? { ...pg, provider: server.providerFor(spec.database), dependsOn: args.sharedDatabase ? [args.sharedDatabase] : [] }
        : pg,
    );
    // The admin is not a superuser (as on RDS). As a lasting member of the owner role it holds the
    // owner's rights, so its GRANT/REVOKE on the service's database take effect (the provider takes
    // no membership for database grants) and the provider never grants and revokes temporary
    // memberships, which race under parallel applies. Every object of the service waits for it.
    // PostgreSQL 16+ already gives the creating admin ADMIN OPTION on the role (granted by the
    // bootstrap superuser, without INHERIT), and reads back `admin_option` true; 15 does not. The
    // membership that matters is this plain, inheriting one, so that flag is not compared.
    this.adminMembership = new postgresql.GrantRole(
      `${name}-admin-member`,
      { role: server.adminRole, grantRole: this.ownerRole.name, withAdminOption: false },
      { ...pg, ignoreChanges: ["withAdminOption"] },
    );
    const owned = { ...pg, dependsOn: [this.adminMembership] };

    const passwords: Record<string, random.RandomPassword> = {};
    for (const login of spec.logins) {
      passwords[login.key] = new random.RandomPassword(`${name}-${login.key}-password`, { length: 40, special: false }, { parent: this });
      this.loginRoles[login.key] = this.createLogin(name, login, passwords[login.key].result, pg);
    }
    // Containers outlive the logins' privileges in them: the database (or, under schema isolation,
    // the schemas) is dropped before any login role, and takes every grant and default privilege
    // inside it along. Those are then not revoked one by one (`deletedWith`); removed alone, they are.
    const logins = Object.values(this.loginRoles);

    let database: postgresql.Database | undefined = args.sharedDatabase;
    if (spec.isolation === "database") {
      database = new postgresql.Database(
        serviceDatabaseResource(name),
        { name: spec.database, owner: this.ownerRole.name, template: "template0", encoding: "UTF8", allowConnections: true },
        // Dropped before the monitoring login: its DROP OWNED revokes its CONNECT here, and would race DROP DATABASE.
        { ...owned, dependsOn: [this.adminMembership, ...logins, ...monitorRole(args)], protect: !spec.allowDataLoss },
      );
    }
    if (!database) throw new pulumi.ResourceError(`service ${spec.name}: isolation schema needs its shared database`, this);
    this.database = database.name;
    const ownDatabase = spec.isolation === "database" ? database : undefined;

    const schemaResources = spec.schemas.map(
      (schema) =>
        new postgresql.Schema(
          serviceSchemaResource(name, schema),
          { name: schema, database: database.name, owner: this.ownerRole.name, ifNotExists: false, dropCascade: true },
          { ...owned, dependsOn: [this.adminMembership, ...logins], protect: !spec.allowDataLoss, deletedWith: ownDatabase },
        ),
    );
    this.schemas = schemaResources.map((s) => s.name);

    // Referencing the role resources (not just their names) orders grants after the roles.
    const rolesByName = new Map(spec.logins.map((l) => [l.name, this.loginRoles[l.key]]));
    const roleRef = (roleName: string) => rolesByName.get(roleName)?.name ?? roleName;
    const schemaByName = new Map(spec.schemas.map((schema, i) => [schema, schemaResources[i]]));
    // What drops a grant or default privilege with itself: the service's own database, or under
    // schema isolation the schema it is in (database-wide ones in the shared database: nothing).
    const container = (schema?: string) => ownDatabase ?? (schema ? schemaByName.get(schema) : undefined);
    const inside = (schema?: string) => ({ ...pg, dependsOn: [this.adminMembership, ...schemaResources], deletedWith: container(schema) });
    const plan = planService(spec);
    // Privileges on one schema and its objects change one grant at a time. For them the provider
    // locks only the grantee role, so two grants on the same schema (or its tables) for different
    // roles at once both update the same catalog rows, and one fails with "tuple concurrently
    // updated" (seen on PostgreSQL 15 at --parallel 16). Database-level grants it locks itself.
    const lastInSchema = new Map<string, postgresql.Grant>();
    for (const g of plan.grants) {
      const previous = g.schema ? lastInSchema.get(g.schema) : undefined;
      const opts = inside(g.schema);
      const grant = new postgresql.Grant(
        `${name}-grant-${g.key}`,
        { database: database.name, role: roleRef(g.role), objectType: g.objectType, schema: g.schema, privileges: [...g.privileges] },
        previous ? { ...opts, dependsOn: [...opts.dependsOn, previous] } : opts,
      );
      if (g.schema) lastInSchema.set(g.schema, grant);
    }
    for (const d of plan.defaultPrivileges) {
      new postgresql.DefaultPrivileges(
        `${name}-default-${d.key}`,
        {
          database: database.name,
          owner: this.ownerRole.name,
          role: roleRef(d.role),
          schema: d.schema,
          objectType: d.objectType,
          privileges: [...d.privileges],
        },
        inside(d.schema),
      );
    }
    if (ownDatabase && args.monitoring) monitorConnect(`${name}-grant-monitor-db`, database.name, args.monitoring, inside());
    for (const ext of spec.extensions) {
      new postgresql.Extension(
        `${name}-ext-${ext}`,
        { name: ext, database: database.name, schema: spec.schemas[0] },
        inside(spec.schemas[0]),
      );
    }

    for (const login of spec.logins) {
      const target = loginTarget(login, server);
      this.routing[login.key] = target.label;
      this.urls[login.key] = connectionUrl(
        login.name,
        passwords[login.key].result,
        target.endpoint.host,
        target.endpoint.port,
        spec.database,
        server.sslMode,
      );
    }
    if (server.spec.hosting === "rds" && server.kmsKeyArn) {
      this.createSecrets(name, args, passwords);
    }

    this.registerOutputs({
      database: this.database,
      schemas: this.schemas,
      urls: this.urls,
      routing: this.routing,
      secretArns: this.secretArns,
    });
  }

  private createLogin(name: string, login: RoleSpec, password: pulumi.Output<string>, opts: pulumi.CustomResourceOptions): postgresql.Role {
    const isMigrator = login.kind === "migrator";
    return new postgresql.Role(
      `${name}-${login.key}`,
      {
        name: login.name,
        login: true,
        password,
        inherit: true,
        connectionLimit: login.connectionLimit,
        // Unqualified names resolve to the service's own schemas.
        searchPaths: isMigrator ? [...this.spec.schemas] : [...login.read],
        // The migrator works as the owner, so every object it creates is owned by the owner role
        // and picks up the default privileges.
        roles: isMigrator ? [this.ownerRole.name] : [],
        assumeRole: isMigrator ? this.ownerRole.name : undefined,
        ...UNPRIVILEGED,
      },
      opts,
    );
  }

  /** One Secrets Manager secret per login in the standard RDS secret JSON shape. */
  private createSecrets(name: string, args: ServiceDatabaseArgs, passwords: Record<string, random.RandomPassword>): void {
    const { spec, server, environment } = args;
    const tags = { ...serverTags(environment, server.spec.name, args.tags ?? {}), "db-platform:service": spec.name };
    for (const login of spec.logins) {
      const { endpoint } = loginTarget(login, server);
      this.secretArns[login.key] = loginSecret(
        `${name}-${login.key}`,
        {
          secretName: loginSecretName(environment, spec.name, login.key),
          description: `${spec.name} ${login.key} login for ${spec.database}`,
          kmsKeyId: server.kmsKeyArn,
          recoveryWindowInDays: args.strict ? 30 : 7,
          tags,
          host: endpoint.host,
          port: endpoint.port,
          username: login.name,
          password: passwords[login.key].result,
          dbname: spec.database,
        },
        { parent: this },
      );
    }
  }
}
