/**
 * Whole-config rules (references, names, environment strictness) and the builders that turn a
 * checked raw entry into its model. Builders run only on entries whose checks found nothing.
 */
import {
  backupDefaults,
  CONTAINER_DEFAULTS,
  CONTAINER_IMAGES,
  DEFAULT_VERSION,
  EXTERNAL_DEFAULTS,
  ALLOWED_EXTENSIONS,
  FORBIDDEN_EXTENSIONS,
  LOCAL_DEFAULTS,
  ROLE_CONNECTION_LIMITS,
  rdsDefaults,
} from "./defaults";
import type { BackupsSpec, RoleSpec, ServerSpec, ServiceSpec } from "./model";
import { BUILTIN_ROLE_SUFFIXES, identifierProblem, serviceDatabaseName, serviceRoleName, serviceSchemaName, toIdentifier } from "./naming";
import { type PathSegment, type Problem, suggestion } from "./problems";
import { REPLICA_HOSTING, type RawBackups, type RawNetwork, type RawServer, type RawService } from "./schema";
import type { ConfigInput } from "./validate";

export interface ServerContext {
  readonly name: string;
  readonly strict: boolean;
  readonly awsRegion?: string;
  readonly stackNetwork?: RawNetwork;
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1)$/;

export function checkServer(raw: RawServer, ctx: ServerContext): Problem[] {
  const at = (...p: PathSegment[]) => ["servers", ctx.name, ...p];
  const out: Problem[] = [];

  if (ctx.strict && (raw.hosting === "local" || raw.hosting === "container")) {
    out.push({ path: at("hosting"), message: `"${raw.hosting}" is not allowed in a strict environment (prod): use rds or external` });
  }

  out.push(...checkReplicas(raw, ctx));

  switch (raw.hosting) {
    case "rds": {
      if (!ctx.awsRegion) out.push({ path: ["aws:region"], message: `required by servers.${ctx.name} (hosting rds)` });
      if (!raw.network && !ctx.stackNetwork) {
        out.push({ path: at("network"), message: "required for hosting rds (or set the stack-wide db-platform:network)" });
      }
      if (ctx.strict && raw.publiclyAccessible) {
        out.push({ path: at("publiclyAccessible"), message: "must be false in a strict environment (prod)" });
      }
      if (ctx.strict && raw.requireTls === false) {
        out.push({ path: at("requireTls"), message: "must be true in a strict environment (prod)" });
      }
      if (raw.allocatedStorage && raw.maxAllocatedStorage && raw.maxAllocatedStorage < raw.allocatedStorage) {
        out.push({ path: at("maxAllocatedStorage"), message: `must be at least allocatedStorage (${raw.allocatedStorage})` });
      }
      for (const key of Object.keys(raw.parameters ?? {})) {
        if (key === "rds.force_ssl") out.push({ path: at("parameters", key), message: "set requireTls instead" });
      }
      if (raw.masterUsername) {
        const p = identifierProblem(raw.masterUsername);
        if (p) out.push({ path: at("masterUsername"), message: p });
      }
      break;
    }
    case "local":
      if (raw.host && !LOOPBACK.test(raw.host)) {
        out.push({ path: at("host"), message: `"${raw.host}" is not a loopback address; use hosting external for other hosts` });
      }
      if (raw.adminUser) {
        const p = identifierProblem(raw.adminUser);
        if (p) out.push({ path: at("adminUser"), message: p });
      }
      break;
    case "external":
    case "container":
      break;
  }
  return out;
}

/** Keys of a replica entry that only RDS replicas have, and the one only standbys have. */
const RDS_REPLICA_KEYS = ["region", "instanceClass", "maxAllocatedStorage", "parameters", "network"] as const;

function checkReplicas(raw: RawServer, ctx: ServerContext): Problem[] {
  const at = (...p: PathSegment[]) => ["servers", ctx.name, ...p];
  const out: Problem[] = [];
  const replicas = raw.replicas ?? [];
  if (replicas.length > 0 && !REPLICA_HOSTING.has(raw.hosting)) {
    out.push({
      path: at("replicas"),
      message: `hosting "${raw.hosting}" cannot have read replicas (only ${[...REPLICA_HOSTING].join(", ")})`,
    });
    return out;
  }
  const seen = new Set<string>();
  replicas.forEach((r, i) => {
    if (seen.has(r.name)) out.push({ path: at("replicas", i, "name"), message: `duplicate replica name "${r.name}"` });
    seen.add(r.name);
    if (raw.hosting !== "rds") {
      for (const key of RDS_REPLICA_KEYS) {
        if (r[key] !== undefined)
          out.push({ path: at("replicas", i, key), message: `only RDS replicas have ${key} (this is a ${raw.hosting} standby)` });
      }
      return;
    }
    if (r.port !== undefined)
      out.push({ path: at("replicas", i, "port"), message: "an RDS replica listens on 5432; port is for local and container standbys" });
    const crossRegion = r.region !== undefined && r.region !== ctx.awsRegion;
    if (r.region !== undefined && r.region === ctx.awsRegion) {
      out.push({
        path: at("replicas", i, "region"),
        message: `"${r.region}" is the primary's region; omit region for a same-region replica`,
      });
    }
    if (crossRegion && !r.network) {
      out.push({
        path: at("replicas", i, "network"),
        message: `required for a cross-region replica: the VPC and private subnets in ${r.region}`,
      });
    }
    if (!crossRegion && r.network) {
      out.push({
        path: at("replicas", i, "network"),
        message: "only for cross-region replicas; a same-region replica uses its primary's subnet group",
      });
    }
    for (const key of Object.keys(r.parameters ?? {})) {
      if (key === "rds.force_ssl")
        out.push({ path: at("replicas", i, "parameters", key), message: "set requireTls on the primary instead" });
    }
    const floor = raw.allocatedStorage ?? 20;
    if (r.maxAllocatedStorage !== undefined && r.maxAllocatedStorage < floor) {
      out.push({ path: at("replicas", i, "maxAllocatedStorage"), message: `must be at least the primary's allocatedStorage (${floor})` });
    }
  });
  if (raw.reader !== undefined && !seen.has(raw.reader)) {
    out.push({
      path: at("reader"),
      message: `unknown replica "${raw.reader}"${seen.size ? ` (declared: ${[...seen].join(", ")})` : " (this server declares no replicas)"}`,
    });
  }
  return out;
}

/** Replica identifiers share the namespace of servers: `<environment>-<name>` on AWS. */
export function checkReplicaNames(servers: ReadonlyMap<string, RawServer>): Problem[] {
  const out: Problem[] = [];
  const owners = new Map<string, string>();
  for (const [name, raw] of servers) {
    (raw.replicas ?? []).forEach((r, i) => {
      const owner = owners.get(r.name);
      const clash = servers.has(r.name) ? `server ${r.name}` : owner && owner !== name ? `a replica of servers.${owner}` : undefined;
      if (clash) out.push({ path: ["servers", name, "replicas", i, "name"], message: `"${r.name}" is already the name of ${clash}` });
      owners.set(r.name, name);
    });
  }
  return out;
}

/** Local and container servers and their standbys all listen on this machine: one port each. */
/** Ports on 127.0.0.1 the stack's local tooling listens on: servers, standbys and the local S3 server. */
export function checkLocalPorts(servers: readonly ServerSpec[], backupsPort?: number): Problem[] {
  const out: Problem[] = [];
  const users = new Map<number, string>();
  const claim = (port: number, path: PathSegment[], label: string) => {
    const user = users.get(port);
    if (user) out.push({ path, message: `port ${port} is already used by ${user}` });
    else users.set(port, label);
  };
  for (const s of servers) {
    if (s.hosting !== "local" && s.hosting !== "container") continue;
    claim(s.port, ["servers", s.name, "port"], `servers.${s.name}`);
    s.replicas.forEach((r, i) => claim(r.port, ["servers", s.name, "replicas", i, "port"], `servers.${s.name}.replicas[${i}] (${r.name})`));
  }
  if (backupsPort !== undefined) claim(backupsPort, ["backups", "port"], "backups (the local S3 server)");
  return out;
}

/** The default reader: the first replica in the primary's region; none means the primary. */
function defaultReader(raw: RawServer, awsRegion: string | undefined): string | undefined {
  const replicas = raw.replicas ?? [];
  if (raw.hosting === "rds") return replicas.find((r) => r.region === undefined || r.region === awsRegion)?.name;
  return replicas[0]?.name;
}

/** The ports of a local or container server's standbys: declared, else the primary's port + 1 + index. */
export function standbyPorts(raw: RawServer, primaryPort: number): number[] {
  return (raw.replicas ?? []).map((r, i) => r.port ?? primaryPort + 1 + i);
}

export function buildServer(raw: RawServer, ctx: ServerContext): ServerSpec {
  const base = {
    name: ctx.name,
    version: raw.version ?? DEFAULT_VERSION,
    reader: raw.reader ?? defaultReader(raw, ctx.awsRegion),
  };
  const standbys = (primaryPort: number) => standbyPorts(raw, primaryPort).map((port, i) => ({ name: (raw.replicas ?? [])[i].name, port }));
  switch (raw.hosting) {
    case "rds": {
      const d = rdsDefaults(ctx.strict);
      const net = (raw.network ?? ctx.stackNetwork) as RawNetwork;
      const region = ctx.awsRegion as string;
      const instanceClass = raw.instanceClass ?? d.instanceClass;
      const maxAllocatedStorage = raw.maxAllocatedStorage ?? Math.max(d.maxAllocatedStorage, raw.allocatedStorage ?? 0);
      const parameters = stringValues(raw.parameters);
      return {
        ...base,
        hosting: "rds",
        region,
        replicas: (raw.replicas ?? []).map((r) => ({
          name: r.name,
          region: r.region ?? region,
          crossRegion: r.region !== undefined,
          instanceClass: r.instanceClass ?? instanceClass,
          maxAllocatedStorage: r.maxAllocatedStorage ?? maxAllocatedStorage,
          parameters: { ...parameters, ...stringValues(r.parameters) },
          network: r.network ? fullNetwork(r.network) : undefined,
        })),
        instanceClass,
        allocatedStorage: raw.allocatedStorage ?? d.allocatedStorage,
        maxAllocatedStorage,
        multiAz: raw.multiAz ?? d.multiAz,
        deletionProtection: raw.deletionProtection ?? d.deletionProtection,
        skipFinalSnapshot: raw.skipFinalSnapshot ?? d.skipFinalSnapshot,
        backupRetentionDays: raw.backupRetentionDays ?? d.backupRetentionDays,
        backupWindow: raw.backupWindow ?? d.backupWindow,
        maintenanceWindow: raw.maintenanceWindow ?? d.maintenanceWindow,
        performanceInsightsRetentionDays: raw.performanceInsightsRetentionDays ?? d.performanceInsightsRetentionDays,
        monitoringIntervalSeconds: raw.monitoringIntervalSeconds ?? d.monitoringIntervalSeconds,
        publiclyAccessible: raw.publiclyAccessible ?? d.publiclyAccessible,
        requireTls: raw.requireTls ?? d.requireTls,
        slowQueryMs: raw.slowQueryMs ?? d.slowQueryMs,
        masterUsername: raw.masterUsername ?? d.masterUsername,
        sslMode: raw.sslMode ?? d.sslMode,
        network: fullNetwork(net),
        parameters,
        alarms: { ...d.alarms, ...raw.alarms },
      };
    }
    case "local": {
      const port = raw.port ?? LOCAL_DEFAULTS.port;
      return {
        ...base,
        hosting: "local",
        replicas: standbys(port),
        host: raw.host ?? LOCAL_DEFAULTS.host,
        port,
        adminUser: raw.adminUser ?? LOCAL_DEFAULTS.adminUser,
        sslMode: raw.sslMode ?? LOCAL_DEFAULTS.sslMode,
      };
    }
    case "external":
      return {
        ...base,
        hosting: "external",
        replicas: [],
        host: raw.host,
        port: raw.port ?? EXTERNAL_DEFAULTS.port,
        adminUser: raw.adminUser,
        sslMode: raw.sslMode ?? EXTERNAL_DEFAULTS.sslMode,
        superuser: raw.superuser ?? EXTERNAL_DEFAULTS.superuser,
      };
    case "container": {
      const port = raw.port ?? CONTAINER_DEFAULTS.port;
      return {
        ...base,
        hosting: "container",
        replicas: standbys(port),
        port,
        image: raw.image ?? CONTAINER_IMAGES[base.version],
      };
    }
  }
}

function stringValues(values: Readonly<Record<string, string | number | boolean>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, String(v)]));
}

function fullNetwork(net: RawNetwork): Required<RawNetwork> {
  return {
    vpcId: net.vpcId,
    subnetIds: net.subnetIds,
    allowedCidrs: net.allowedCidrs ?? [],
    allowedSecurityGroupIds: net.allowedSecurityGroupIds ?? [],
  };
}

/** `local` and `external` servers need an admin password, held as a secret. */
export function checkAdminPasswords(input: ConfigInput, servers: ReadonlyMap<string, RawServer>, declared: ReadonlySet<string>): Problem[] {
  const out: Problem[] = [];
  const passwords = input.values.adminPasswords;
  const names = passwords && typeof passwords === "object" ? Object.keys(passwords) : [];
  if (passwords !== undefined && !input.secretKeys.has("adminPasswords")) {
    out.push({
      path: ["adminPasswords"],
      message: "must be a secret (pulumi config set --secret --path 'db-platform:adminPasswords.<server>' …)",
    });
  }
  for (const [name, raw] of servers) {
    if ((raw.hosting === "local" || raw.hosting === "external") && !names.includes(name)) {
      out.push({
        path: ["adminPasswords", name],
        message: `missing: servers.${name} (hosting ${raw.hosting}) needs its admin password (pulumi config set --secret --path 'db-platform:adminPasswords.${name}' …)`,
      });
    }
  }
  for (const name of names) {
    const raw = servers.get(name);
    if (!declared.has(name)) {
      out.push({ path: ["adminPasswords", name], message: `unknown server "${name}"${suggestion(name, [...declared])}` });
    } else if (raw && (raw.hosting === "rds" || raw.hosting === "container")) {
      out.push({ path: ["adminPasswords", name], message: `hosting ${raw.hosting} generates its admin password; remove this entry` });
    }
  }
  return out;
}

export function checkService(name: string, raw: RawService, servers: ReadonlySet<string>): Problem[] {
  const at = (...p: PathSegment[]) => ["services", name, ...p];
  const out: Problem[] = [];
  const ident = toIdentifier(name);

  if (!servers.has(raw.server)) {
    const known = [...servers];
    out.push({
      path: at("server"),
      message: `unknown server "${raw.server}" (known: ${known.join(", ") || "none"})${suggestion(raw.server, known)}`,
    });
  }
  const isolation = raw.isolation ?? "database";
  if (isolation === "schema" && !raw.database) {
    out.push({ path: at("database"), message: "required when isolation is schema: the shared database the service's schemas live in" });
  }
  const identifierChecks: Array<[PathSegment[], string]> = [[at(), ident]];
  if (raw.database) identifierChecks.push([at("database"), raw.database]);
  (raw.schemas ?? []).forEach((s, i) => identifierChecks.push([at("schemas", i), s]));
  const roleKeys = Object.keys(raw.roles ?? {});
  for (const key of roleKeys) identifierChecks.push([at("roles", key), serviceRoleName(name, key)]);
  for (const suffix of Object.values(BUILTIN_ROLE_SUFFIXES)) identifierChecks.push([at(), serviceRoleName(name, suffix)]);
  if (isolation === "database") identifierChecks.push([at(), serviceDatabaseName(name, raw.database)]);
  for (const [path, id] of identifierChecks) {
    const p = identifierProblem(id);
    if (p) out.push({ path, message: p });
  }

  const schemas = raw.schemas ?? [serviceSchemaName(name)];
  const dup = schemas.find((s, i) => schemas.indexOf(s) !== i);
  if (dup) out.push({ path: at("schemas"), message: `schema "${dup}" is listed twice` });

  for (const [key, role] of Object.entries(raw.roles ?? {})) {
    if (key === "owner" || key === "migrator") {
      out.push({ path: at("roles", key), message: `"${key}" is a built-in role and cannot be scoped (scopable built-ins: app, readonly)` });
      continue;
    }
    if (!role.read?.length && !role.write?.length) {
      out.push({ path: at("roles", key), message: "grants nothing: give it read or write schemas" });
    }
    if (key === "readonly" && role.write?.length) {
      out.push({ path: at("roles", key, "write"), message: "the readonly login cannot write" });
    }
    for (const field of ["read", "write"] as const) {
      for (const s of role[field] ?? []) {
        if (s !== "*" && !schemas.includes(s)) {
          out.push({
            path: at("roles", key, field),
            message: `schema "${s}" is not a schema of service ${name} (its schemas: ${schemas.join(", ")})${suggestion(s, schemas)}`,
          });
        }
      }
    }
  }
  (raw.extensions ?? []).forEach((e, i) => {
    if (FORBIDDEN_EXTENSIONS.has(e)) {
      out.push({ path: at("extensions", i), message: `"${e}" reaches outside the service's database and is not allowed` });
    } else if (!ALLOWED_EXTENSIONS.includes(e)) {
      out.push({
        path: at("extensions", i),
        message: `"${e}" is not on the extension allow-list (trusted extensions a non-superuser admin can create, as on RDS: ${ALLOWED_EXTENSIONS.join(", ")})${suggestion(e, ALLOWED_EXTENSIONS)}`,
      });
    }
  });
  return out;
}

export function buildService(name: string, raw: RawService): ServiceSpec {
  const isolation = raw.isolation ?? "database";
  const schemas = raw.schemas ?? [serviceSchemaName(name)];
  const expand = (list: readonly string[] | undefined) => (list?.includes("*") ? [...schemas] : [...(list ?? [])]);
  const role = (key: string, kind: RoleSpec["kind"], read: string[], write: string[], limit: number, login = true): RoleSpec => ({
    name: serviceRoleName(name, key),
    key,
    kind,
    login,
    // Writing implies reading.
    read: [...new Set([...read, ...write])],
    write,
    connectionLimit: limit,
  });
  const scoped = raw.roles ?? {};
  const app = scoped.app
    ? role(
        "app",
        "app",
        expand(scoped.app.read),
        expand(scoped.app.write),
        scoped.app.connectionLimit ?? raw.connectionLimit ?? ROLE_CONNECTION_LIMITS.app,
      )
    : role("app", "app", [...schemas], [...schemas], raw.connectionLimit ?? ROLE_CONNECTION_LIMITS.app);
  const readonly = scoped.readonly
    ? role("readonly", "readonly", expand(scoped.readonly.read), [], scoped.readonly.connectionLimit ?? ROLE_CONNECTION_LIMITS.readonly)
    : role("readonly", "readonly", [...schemas], [], ROLE_CONNECTION_LIMITS.readonly);
  const logins: RoleSpec[] = [app, readonly, role("migrator", "migrator", [...schemas], [...schemas], ROLE_CONNECTION_LIMITS.migrator)];
  for (const [key, r] of Object.entries(scoped)) {
    if (key === "app" || key === "readonly") continue;
    logins.push(role(key, "scoped", expand(r.read), expand(r.write), r.connectionLimit ?? ROLE_CONNECTION_LIMITS.scoped));
  }
  return {
    name,
    server: raw.server,
    isolation,
    database: isolation === "database" ? serviceDatabaseName(name, raw.database) : (raw.database as string),
    schemas,
    owner: role("owner", "owner", [...schemas], [...schemas], -1, false),
    logins,
    extensions: raw.extensions ?? [],
  };
}

/**
 * Names that must be unique on one server: roles (cluster-wide), databases, and schemas within
 * a shared database. A collision is reported at the later service, naming the earlier one.
 */
export function checkCollisions(
  services: readonly ServiceSpec[],
  servers: readonly ServerSpec[],
  raws: ReadonlyMap<string, RawService>,
): Problem[] {
  const out: Problem[] = [];
  const claims = new Map<string, string>();
  const claim = (key: string, owner: string, path: PathSegment[], what: string) => {
    const prior = claims.get(key);
    if (prior && prior !== owner) out.push({ path, message: `${what} is also produced by ${prior}` });
    else claims.set(key, owner);
  };
  for (const server of servers) {
    const admin = server.hosting === "rds" ? server.masterUsername : "adminUser" in server ? server.adminUser : undefined;
    if (admin) claims.set(`${server.name}/role/${admin}`, `servers.${server.name} (its admin login)`);
  }
  const dbIsolated = new Map<string, string>();
  for (const s of services) if (s.isolation === "database") dbIsolated.set(`${s.server}/${s.database}`, s.name);

  for (const s of services) {
    const at = (...p: PathSegment[]) => ["services", s.name, ...p];
    const owner = `services.${s.name}`;
    for (const r of [s.owner, ...s.logins]) {
      const path = r.kind === "scoped" || raws.get(s.name)?.roles?.[r.key] ? at("roles", r.key) : at();
      claim(`${s.server}/role/${r.name}`, owner, path, `role "${r.name}" on server ${s.server}`);
    }
    if (s.isolation === "database") {
      claim(`${s.server}/db/${s.database}`, owner, at("database"), `database "${s.database}" on server ${s.server}`);
    } else {
      const other = dbIsolated.get(`${s.server}/${s.database}`);
      if (other) {
        out.push({
          path: at("database"),
          message: `"${s.database}" is the database of service ${other} (isolation database); a shared database cannot be another service's own`,
        });
      }
      s.schemas.forEach((schema, i) =>
        claim(
          `${s.server}/schema/${s.database}/${schema}`,
          owner,
          at("schemas", i),
          `schema "${schema}" in database ${s.database} on server ${s.server}`,
        ),
      );
    }
  }
  return out;
}

const S3_ONLY = [
  "schedule",
  "archiveAfterDays",
  "expireAfterDays",
  "noncurrentExpireAfterDays",
  "objectLockDays",
  "replicaRegion",
] as const;

/** Where backups go must fit the stack's servers; prod replicates RDS backups to another region. */
export function checkBackups(
  raw: RawBackups,
  ctx: { strict: boolean; awsRegion?: string; servers: ReadonlyMap<string, RawServer> },
): Problem[] {
  const out: Problem[] = [];
  const at = (...p: PathSegment[]) => ["backups", ...p];
  const rds = [...ctx.servers].filter(([, s]) => s.hosting === "rds").map(([n]) => n);
  if (raw.storage === "local") {
    if (rds.length > 0) {
      out.push({ path: at("storage"), message: `local is for stacks without rds servers (servers ${rds.join(", ")} are rds): use s3` });
    }
    for (const key of S3_ONLY) if (raw[key] !== undefined) out.push({ path: at(key), message: "only applies to storage s3" });
    return out;
  }
  if (raw.port !== undefined) out.push({ path: at("port"), message: "only applies to storage local" });
  if (!ctx.awsRegion) out.push({ path: at("storage"), message: "s3 needs aws:region (pulumi config set aws:region …)" });
  const d = backupDefaults(ctx.strict, "");
  const archive = raw.archiveAfterDays ?? d.archiveAfterDays;
  const expire = raw.expireAfterDays ?? d.expireAfterDays;
  if (expire <= archive) {
    out.push({
      path: at("expireAfterDays"),
      message: `must be more than archiveAfterDays (${archive}): dumps would expire before they are archived`,
    });
  }
  const lock = raw.objectLockDays ?? d.objectLockDays;
  if (lock >= expire) out.push({ path: at("objectLockDays"), message: `must be less than expireAfterDays (${expire})` });
  if (ctx.strict && rds.length > 0 && raw.replicaRegion === undefined) {
    out.push({
      path: at("replicaRegion"),
      message: "required in strict environments: RDS automated backups are replicated to another region",
    });
  }
  if (raw.replicaRegion !== undefined && raw.replicaRegion === ctx.awsRegion) {
    out.push({ path: at("replicaRegion"), message: `must differ from aws:region (${ctx.awsRegion})` });
  }
  return out;
}

export function buildBackups(raw: RawBackups, strict: boolean, environment: string): BackupsSpec {
  const d = backupDefaults(strict, environment);
  return {
    storage: raw.storage,
    bucket: raw.bucket ?? (raw.storage === "local" ? d.bucket : undefined),
    rpoHours: raw.rpoHours ?? d.rpoHours,
    schedule: raw.schedule ?? d.schedule,
    archiveAfterDays: raw.archiveAfterDays ?? d.archiveAfterDays,
    expireAfterDays: raw.expireAfterDays ?? d.expireAfterDays,
    noncurrentExpireAfterDays: raw.noncurrentExpireAfterDays ?? d.noncurrentExpireAfterDays,
    objectLockDays: raw.storage === "local" ? 0 : (raw.objectLockDays ?? d.objectLockDays),
    replicaRegion: raw.replicaRegion,
    port: raw.port ?? d.port,
  };
}
