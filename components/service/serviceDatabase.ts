/**
 * One service's slice of a server: its database (or schemas in a shared database), a NOLOGIN
 * owner role, login roles with generated passwords, grants and default privileges that reach
 * only its own objects, and connection URLs as secrets.
 */
import { moveTargetPrefix, serviceDatabaseResource, serviceSchemaResource } from "../dataResources";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import type { ReplicaEndpoint, ServerHandle } from "../servers/server";
import { loginSecret } from "../servers/aws";
import { rotateLoginSecret } from "../servers/loginRotation";
import { serverTags } from "../servers/server";
import { loginSecretName, type RoleSpec, type ServiceSpec } from "../spec";
import { POOLED_KINDS } from "../spec/poolRules";
import { LOGIN_ROTATION_DAYS } from "../spec/defaults";
import { slotRoleName } from "../spec/rotation";
import { planService } from "./plan";
import { createLoginRoles, loginPasswords, servingSlots, type SlotPasswords, UNPRIVILEGED } from "./credentials";
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
  /** A move's target: its server, shared database (schema isolation) and monitoring login. */
  readonly target?: { server: ServerHandle; sharedDatabase?: postgresql.Database; monitoring?: ServerMonitoring };
}

export { UNPRIVILEGED } from "./credentials";

/** A login's URL; without a password where the login's secret holds it (Secrets Manager rotates it). */
export function connectionUrl(
  user: string,
  password: pulumi.Input<string> | undefined,
  host: pulumi.Input<string>,
  port: pulumi.Input<number>,
  database: string,
  sslMode: string,
) {
  const credential =
    password === undefined ? pulumi.output(user) : pulumi.interpolate`${user}:${pulumi.output(password).apply(encodeURIComponent)}`;
  return pulumi.secret(pulumi.interpolate`postgresql://${credential}@${host}:${port}/${database}?sslmode=${sslMode}`);
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

/**
 * Where a pooled login connects (docs/pooling.md): the pooler beside the instance its direct URL
 * points at, when the service has a pool and its server a pooler; undefined otherwise (migrator
 * and scoped logins always connect directly).
 */
export function pooledTarget(
  login: RoleSpec,
  server: ServerHandle,
  service: ServiceSpec,
): { label: string; endpoint: ReplicaEndpoint } | undefined {
  if (!service.pool || !POOLED_KINDS.has(login.kind)) return undefined;
  const direct = loginTarget(login, server);
  if (server.pooler) {
    // RDS Proxy serves the primary only: its read-only endpoints need an Aurora cluster, so a login reading from a replica stays direct.
    if (direct.label !== "primary") return undefined;
    return { label: "pooler → primary", endpoint: server.pooler(service.name) };
  }
  const pooler = server.spec.hosting === "local" ? server.spec.pooler : undefined;
  if (!pooler) return undefined;
  const reader = server.reader && readsOnly(login) ? server.spec.replicas.findIndex((r) => r.name === server.reader?.name) : -1;
  const port = reader >= 0 ? pooler.standbyPorts[reader] : pooler.port;
  return { label: `pooler → ${direct.label}`, endpoint: { host: direct.endpoint.host, port: pulumi.output(port) } };
}

/**
 * Where a slot's resources are named: the service's own names, or during a move the target's
 * (`<service>.next-…`). When a move has just ended (`arrived`), the own names carry aliases of the
 * target's, so the target takes the service's own names again without being touched.
 */
class Slot {
  constructor(
    readonly prefix: string,
    private readonly aliasPrefix?: string,
  ) {}
  name(suffix: string): string {
    return `${this.prefix}-${suffix}`;
  }
  opts(suffix: string): pulumi.CustomResourceOptions {
    return this.aliasPrefix ? { aliases: [{ name: `${this.aliasPrefix}-${suffix}` }] } : {};
  }
}

/** The service's roles on one server: the NOLOGIN owner, the admin's membership in it, the logins. */
interface Identity {
  readonly server: ServerHandle;
  readonly ownerRole: postgresql.Role;
  readonly adminMembership: postgresql.GrantRole;
  readonly loginRoles: Record<string, postgresql.Role>;
  /** The alternate login roles of the logins that have rotated (docs/rotation.md). */
  readonly alternates: postgresql.Role[];
}

export class ServiceDatabase extends pulumi.ComponentResource {
  readonly spec: ServiceSpec;
  /** The place the logins' URLs point at: the spec, or a move's target once it serves. */
  readonly serving: ServiceSpec;
  readonly database: pulumi.Output<string>;
  readonly schemas: pulumi.Output<string>[];
  /** Connection URLs by login key (app, readonly, migrator, scoped keys), all secret; pooled logins' through the pooler. */
  readonly urls: Record<string, pulumi.Output<string>> = {};
  /** The direct URLs of the logins whose `urls` go through the pooler. */
  readonly directUrls: Record<string, pulumi.Output<string>> = {};
  /** Logins that have rotated: the previous generation's URL, valid until the next rotation (docs/rotation.md). */
  readonly previousUrls: Record<string, pulumi.Output<string>> = {};
  /** The previous generation's direct URLs of the logins whose `previousUrls` go through the pooler. */
  readonly previousDirectUrls: Record<string, pulumi.Output<string>> = {};
  /** RDS only: Secrets Manager secret ARN by login key. */
  readonly secretArns: Record<string, pulumi.Output<string>> = {};
  /** RDS only, pooled logins that have rotated: the previous generation's secret, which RDS Proxy admits beside the current one. */
  readonly previousSecretArns: Record<string, pulumi.Output<string>> = {};
  /** Where each login's URL points: `primary`, or `replica <name>` for read-only logins on a server with a reader. */
  readonly routing: Record<string, string> = {};
  private readonly passwords: Record<string, SlotPasswords> = {};

  constructor(name: string, args: ServiceDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:service:ServiceDatabase", name, {}, opts);
    const { spec, server } = args;
    this.spec = spec;
    // Passwords belong to the service, not to a server: a login keeps its password when it moves.
    for (const login of spec.logins) this.passwords[login.key] = loginPasswords(name, login, this);
    const move = spec.move;
    // Aliases only where a move has just ended: each costs the SDK work on every registration.
    const own = new Slot(name, spec.arrived ? moveTargetPrefix(name) : undefined);
    let served: { place: ServiceSpec; server: ServerHandle; database: postgresql.Database; identity: Identity };
    if (!move) {
      const identity = this.identity(own, spec, server, args.sharedDatabase);
      served = { place: spec, server, database: this.location(own, spec, identity, args.sharedDatabase, args.monitoring), identity };
    } else {
      // A move (docs/data-moves.md): the current place until it is retired, the target beside it.
      const target = args.target;
      if (!target) throw new pulumi.ResourceError(`service ${spec.name}: a move needs its target server`, this);
      const next = new Slot(moveTargetPrefix(name));
      const sameServer = move.target.server === spec.server;
      const current = move.phase !== "retire" || sameServer ? this.identity(own, spec, server, args.sharedDatabase) : undefined;
      const moved = sameServer && current ? current : this.identity(next, move.target, target.server, target.sharedDatabase);
      let old: postgresql.Database | undefined;
      if (move.phase !== "retire" && current) old = this.location(own, spec, current, args.sharedDatabase, args.monitoring);
      const fresh = this.location(next, move.target, moved, target.sharedDatabase, target.monitoring);
      served =
        move.phase === "copy" && old && current
          ? { place: spec, server, database: old, identity: current }
          : { place: move.target, server: target.server, database: fresh, identity: moved };
    }
    this.serving = served.place;
    this.database = served.database.name;
    this.schemas = served.place.schemas.map((schema) => pulumi.output(schema));

    for (const login of spec.logins) {
      // Secrets Manager's logins: the secret holds the credential (it rotates), the URL only where to connect.
      const url = (slot: "a" | "b", t: { endpoint: ReplicaEndpoint }) =>
        connectionUrl(
          slotRoleName(login, slot),
          login.rotatedBy ? undefined : this.password(login, slot),
          t.endpoint.host,
          t.endpoint.port,
          served.place.database,
          served.server.sslMode,
        );
      const direct = loginTarget(login, served.server);
      const pooled = pooledTarget(login, served.server, spec);
      const { current, previous } = servingSlots(login);
      this.routing[login.key] = (pooled ?? direct).label;
      this.urls[login.key] = url(current, pooled ?? direct);
      if (pooled) this.directUrls[login.key] = url(current, direct);
      if (previous && !login.rotatedBy) this.previousUrls[login.key] = url(previous, pooled ?? direct);
      if (previous && pooled && !login.rotatedBy) this.previousDirectUrls[login.key] = url(previous, direct);
    }
    if (served.server.spec.hosting === "rds" && served.server.kmsKeyArn) {
      this.createSecrets(name, args, served.server, served.place, [
        ...Object.values(served.identity.loginRoles),
        ...served.identity.alternates,
      ]);
    }

    this.registerOutputs({
      database: this.database,
      schemas: this.schemas,
      urls: this.urls,
      ...(Object.keys(this.directUrls).length > 0 && { directUrls: this.directUrls }),
      ...(Object.keys(this.previousUrls).length > 0 && { previousUrls: this.previousUrls }),
      ...(Object.keys(this.previousDirectUrls).length > 0 && { previousDirectUrls: this.previousDirectUrls }),
      routing: this.routing,
      secretArns: this.secretArns,
    });
  }

  /** The service's roles on a server. */
  private identity(slot: Slot, spec: ServiceSpec, server: ServerHandle, sharedDatabase?: postgresql.Database): Identity {
    const pg = { parent: this, provider: server.provider };
    // Under schema isolation the owner's objects and default privileges live in the shared
    // database, which outlives the service: its role is managed through that database's provider,
    // whose REASSIGN/DROP OWNED on delete then clear them, so DROP ROLE succeeds. (A later move to
    // a database of its own changes only the provider, which the engine does not replace for.)
    const ownerRole = new postgresql.Role(
      slot.name("owner"),
      { name: spec.owner.name, login: false, inherit: true, ...UNPRIVILEGED },
      spec.isolation === "schema"
        ? { ...pg, ...slot.opts("owner"), provider: server.providerFor(spec.database), dependsOn: sharedDatabase ? [sharedDatabase] : [] }
        : { ...pg, ...slot.opts("owner") },
    );
    // The admin is not a superuser (as on RDS). As a lasting member of the owner role it holds the
    // owner's rights, so its GRANT/REVOKE on the service's database take effect (the provider takes
    // no membership for database grants) and the provider never grants and revokes temporary
    // memberships, which race under parallel applies. Every object of the service waits for it.
    // PostgreSQL 16+ already gives the creating admin ADMIN OPTION on the role (granted by the
    // bootstrap superuser, without INHERIT), and reads back `admin_option` true; 15 does not. The
    // membership that matters is this plain, inheriting one, so that flag is not compared.
    const adminMembership = new postgresql.GrantRole(
      slot.name("admin-member"),
      { role: server.adminRole, grantRole: ownerRole.name, withAdminOption: false },
      { ...pg, ...slot.opts("admin-member"), ignoreChanges: ["withAdminOption"] },
    );
    const loginRoles: Record<string, postgresql.Role> = {};
    const alternates: postgresql.Role[] = [];
    for (const login of spec.logins) {
      const pooled = Boolean(server.spec.hosting === "local" && server.spec.pooler && spec.pool && POOLED_KINDS.has(login.kind));
      const { role, alternate } = createLoginRoles(
        slot,
        { login, owner: ownerRole, schemas: this.spec.schemas, passwords: this.passwords[login.key], pooled },
        pg,
      );
      loginRoles[login.key] = role;
      if (alternate) alternates.push(alternate);
    }
    return { server, ownerRole, adminMembership, loginRoles, alternates };
  }

  /** The service's place: its database (or schemas in a shared one), grants and default privileges. Returns the database. */
  private location(
    slot: Slot,
    spec: ServiceSpec,
    identity: Identity,
    sharedDatabase: postgresql.Database | undefined,
    monitoring: ServerMonitoring | undefined,
  ): postgresql.Database {
    const { server, adminMembership, ownerRole } = identity;
    const pg = { parent: this, provider: server.provider };
    const owned = { ...pg, dependsOn: [adminMembership] };
    const monitorRole = monitoring ? [monitoring.role] : [];
    // Containers outlive the logins' privileges in them: the database (or, under schema isolation,
    // the schemas) is dropped before any login role, and takes every grant and default privilege
    // inside it along. Those are then not revoked one by one (`deletedWith`); removed alone, they are.
    const logins = [...Object.values(identity.loginRoles), ...identity.alternates];

    let database: postgresql.Database | undefined = sharedDatabase;
    if (spec.isolation === "database") {
      const dbName = serviceDatabaseResource(slot.prefix);
      database = new postgresql.Database(
        dbName,
        { name: spec.database, owner: ownerRole.name, template: "template0", encoding: "UTF8", allowConnections: true },
        // Dropped before the monitoring login: its DROP OWNED revokes its CONNECT here, and would race DROP DATABASE.
        {
          ...owned,
          ...slot.opts(dbName.slice(slot.prefix.length + 1)),
          dependsOn: [adminMembership, ...logins, ...monitorRole],
          protect: !spec.allowDataLoss,
        },
      );
    }
    if (!database) throw new pulumi.ResourceError(`service ${spec.name}: isolation schema needs its shared database`, this);
    const inDatabase = database;
    const ownDatabase = spec.isolation === "database" ? database : undefined;

    const schemaResources = spec.schemas.map((schema) => {
      const resource = serviceSchemaResource(slot.prefix, schema);
      return new postgresql.Schema(
        resource,
        { name: schema, database: inDatabase.name, owner: ownerRole.name, ifNotExists: false, dropCascade: true },
        {
          ...owned,
          ...slot.opts(resource.slice(slot.prefix.length + 1)),
          dependsOn: [adminMembership, ...logins],
          protect: !spec.allowDataLoss,
          deletedWith: ownDatabase,
        },
      );
    });

    // Referencing the role resources (not just their names) orders grants after the roles.
    const rolesByName = new Map(spec.logins.map((l) => [l.name, identity.loginRoles[l.key]]));
    const roleRef = (roleName: string) => rolesByName.get(roleName)?.name ?? roleName;
    const schemaByName = new Map(spec.schemas.map((schema, i) => [schema, schemaResources[i]]));
    // What drops a grant or default privilege with itself: the service's own database, or under
    // schema isolation the schema it is in (database-wide ones in the shared database: nothing).
    const container = (schema?: string) => ownDatabase ?? (schema ? schemaByName.get(schema) : undefined);
    const inside = (suffix: string, schema?: string) => ({
      ...pg,
      ...slot.opts(suffix),
      dependsOn: [adminMembership, ...schemaResources],
      deletedWith: container(schema),
    });
    const plan = planService(spec);
    // Privileges on one schema and its objects change one grant at a time. For them the provider
    // locks only the grantee role, so two grants on the same schema (or its tables) for different
    // roles at once both update the same catalog rows, and one fails with "tuple concurrently
    // updated" (seen on PostgreSQL 15 at --parallel 16). Database-level grants it locks itself.
    const lastInSchema = new Map<string, postgresql.Grant>();
    for (const g of plan.grants) {
      const previous = g.schema ? lastInSchema.get(g.schema) : undefined;
      const opts = inside(`grant-${g.key}`, g.schema);
      const grant = new postgresql.Grant(
        slot.name(`grant-${g.key}`),
        { database: database.name, role: roleRef(g.role), objectType: g.objectType, schema: g.schema, privileges: [...g.privileges] },
        previous ? { ...opts, dependsOn: [...opts.dependsOn, previous] } : opts,
      );
      if (g.schema) lastInSchema.set(g.schema, grant);
    }
    for (const d of plan.defaultPrivileges) {
      new postgresql.DefaultPrivileges(
        slot.name(`default-${d.key}`),
        {
          database: database.name,
          owner: ownerRole.name,
          role: roleRef(d.role),
          schema: d.schema,
          objectType: d.objectType,
          privileges: [...d.privileges],
        },
        inside(`default-${d.key}`, d.schema),
      );
    }
    if (ownDatabase && monitoring) monitorConnect(slot.name("grant-monitor-db"), database.name, monitoring, inside("grant-monitor-db"));
    for (const ext of spec.extensions) {
      new postgresql.Extension(
        slot.name(`ext-${ext}`),
        { name: ext, database: database.name, schema: spec.schemas[0] },
        inside(`ext-${ext}`, spec.schemas[0]),
      );
    }
    return database;
  }

  private password(login: RoleSpec, slot: "a" | "b"): pulumi.Output<string> {
    const p = this.passwords[login.key][slot];
    if (!p) throw new pulumi.ResourceError(`service ${this.spec.name}: login ${login.key} has no credential in slot ${slot}`, this);
    return p.result;
  }

  /**
   * One Secrets Manager secret per login in the standard RDS secret JSON shape, pointing at the
   * serving place with the current slot's credential; a rotated login behind RDS Proxy also the
   * previous slot's (`<name>/previous`), which the proxy admits until the next rotation.
   */
  private createSecrets(name: string, args: ServiceDatabaseArgs, server: ServerHandle, place: ServiceSpec, roles: postgresql.Role[]): void {
    const { spec, environment } = args;
    const tags = { ...serverTags(environment, server.spec.name, args.tags ?? {}), "db-platform:service": spec.name };
    for (const login of place.logins) {
      // A pooled login's secret names where its URL points: RDS Proxy, which reads the same secret to log in as it.
      const proxied = pooledTarget(login, server, spec);
      const { endpoint } = proxied ?? loginTarget(login, server);
      const { current, previous } = servingSlots(login);
      const secret = (slot: "a" | "b", suffix: string) =>
        loginSecret(
          `${name}-${login.key}${suffix}`,
          {
            secretName: `${loginSecretName(environment, spec.name, login.key)}${suffix ? "/previous" : ""}`,
            description: `${spec.name} ${login.key} login for ${place.database}${suffix ? " (previous credential, valid until the next rotation)" : ""}`,
            kmsKeyId: server.kmsKeyArn,
            recoveryWindowInDays: args.strict ? 30 : 7,
            tags,
            host: endpoint.host,
            port: endpoint.port,
            username: slotRoleName(login, slot),
            password: this.password(login, slot),
            dbname: place.database,
            login: login.name,
            rotated: login.rotatedBy !== undefined,
            proxied: proxied !== undefined,
          },
          { parent: this },
        );
      const made = secret(current, "");
      this.secretArns[login.key] = made.arn;
      if (proxied && previous) this.previousSecretArns[login.key] = secret(previous, "-previous").arn;
      const rotation = server.loginRotation;
      if (!login.rotatedBy || !rotation) continue;
      rotateLoginSecret(`${name}-${login.key}-rotation`, rotation, made, spec.rotationDays ?? LOGIN_ROTATION_DAYS, {
        parent: this,
        after: roles,
      });
    }
  }
}
