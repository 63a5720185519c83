/**
 * Server rules: each server entry checked (hosting, network, TLS, replicas, ports, admin
 * passwords) and built into its model with the hosting's defaults. Builders run only on entries
 * whose checks found nothing.
 */
import {
  CONTAINER_DEFAULTS,
  CONTAINER_IMAGES,
  DEFAULT_VERSION,
  EXTERNAL_DEFAULTS,
  LOCAL_DEFAULTS,
  type RdsDefaults,
  rdsDefaults,
  RDS_PROXY_DEFAULTS,
} from "./defaults";
import type { ServerSpec } from "./model";
import { identifierProblem } from "./naming";
import { type PathSegment, type Problem, suggestion } from "./problems";
import { buildPooler } from "./poolRules";
import { LOCAL_POSTGRES_VERSIONS, REPLICA_HOSTING, type RawNetwork, type RawServer } from "./schema";
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
      if (raw.pooler) {
        const p = { ...RDS_PROXY_DEFAULTS, ...raw.pooler };
        if (p.maxIdleConnectionsPercent > p.maxConnectionsPercent)
          out.push({
            path: at("pooler", "maxIdleConnectionsPercent"),
            message: `must be at most maxConnectionsPercent (${p.maxConnectionsPercent})`,
          });
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
    const pooler = s.hosting === "local" ? s.pooler : undefined;
    if (pooler) {
      claim(pooler.port, ["servers", s.name, "pooler", "port"], `servers.${s.name}.pooler`);
      pooler.standbyPorts.forEach((p, i) =>
        claim(p, ["servers", s.name, "pooler", "port"], `servers.${s.name}.pooler (for ${s.replicas[i].name})`),
      );
    }
  }
  if (backupsPort !== undefined) claim(backupsPort, ["backups", "port"], "backups (the local S3 server)");
  return out;
}

/** A local server runs one of the pinned PostgreSQL builds. */
export function checkLocalVersions(servers: readonly ServerSpec[]): Problem[] {
  return servers
    .filter((s) => s.hosting === "local" && !(LOCAL_POSTGRES_VERSIONS as readonly string[]).includes(s.version))
    .map((s) => ({
      path: ["servers", s.name, "version"],
      message: `hosting local runs the pinned PostgreSQL builds (${LOCAL_POSTGRES_VERSIONS.join(", ")}; scripts/postgres/wheels.tsv), not ${s.version}`,
    }));
}

/**
 * An RDS major upgrade in progress (written by `db-platform upgrade`): from an older major, with
 * automated backups on (RDS takes its pre-upgrade snapshot only then).
 */
export function checkRdsUpgrades(servers: readonly ServerSpec[]): Problem[] {
  const out: Problem[] = [];
  for (const s of servers) {
    if (s.hosting !== "rds" || !s.upgrade) continue;
    if (Number(s.upgrade.from) >= Number(s.version))
      out.push({
        path: ["servers", s.name, "upgrade", "from"],
        message: `${s.upgrade.from} is not older than version ${s.version}: an upgrade goes to a newer major (db-platform upgrade rollback clears this block)`,
      });
    if (s.backupRetentionDays < 1)
      out.push({
        path: ["servers", s.name, "backupRetentionDays"],
        message: "a major upgrade needs automated backups (at least 1 day): RDS takes its pre-upgrade snapshot only then",
      });
  }
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

/** The RDS settings a stack may leave out: each is the stack's value, else the (strict or not) default. */
const RDS_SETTINGS = [
  "allocatedStorage",
  "multiAz",
  "deletionProtection",
  "skipFinalSnapshot",
  "backupRetentionDays",
  "masterPasswordRotationDays",
  "backupWindow",
  "maintenanceWindow",
  "performanceInsightsRetentionDays",
  "monitoringIntervalSeconds",
  "publiclyAccessible",
  "requireTls",
  "slowQueryMs",
  "masterUsername",
  "sslMode",
] as const satisfies ReadonlyArray<keyof RdsDefaults>;

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
        ...withDefaults(raw, d, RDS_SETTINGS),
        maxAllocatedStorage,
        ...(raw.upgrade ? { upgrade: raw.upgrade } : {}),
        ...(raw.pooler ? { pooler: { ...RDS_PROXY_DEFAULTS, ...raw.pooler } } : {}),
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
        ...(raw.pooler ? { pooler: buildPooler(raw, port, (raw.replicas ?? []).length) } : {}),
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

/** `keys` of `raw`, each falling back to its default. */
function withDefaults<T, K extends keyof T>(raw: Partial<Pick<T, K>>, defaults: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, raw[k] ?? defaults[k]])) as Pick<T, K>;
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
