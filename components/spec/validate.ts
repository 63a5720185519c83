/**
 * Parse and validate the `db-platform:*` config into a Spec, once, before any resource exists.
 * Every problem is collected (shape problems from zod, then whole-config rules) so a person
 * fixes them all in one round; a Spec is returned only when there are none.
 */
import { z } from "zod";
import { buildBackups, checkBackups } from "./backupRules";
import {
  buildServer,
  checkAdminPasswords,
  checkLocalPorts,
  checkLocalVersions,
  checkRdsUpgrades,
  checkReplicaNames,
  checkServer,
} from "./serverRules";
import { buildService, checkCollisions, checkMove, checkService, movedService } from "./serviceRules";
import { buildMonitoring, checkMonitoring, withAlarms } from "./monitoringRules";
import { checkPoolTotals, checkProxyEndpoints, withPool } from "./poolRules";
import { rotatedOnRds } from "./rotation";
import { placesOf, type Spec, type ServerSpec, type ServiceSpec, type SharedDatabaseSpec } from "./model";
import { backupDefaults, STRICT_ENVIRONMENTS } from "./defaults";
import { fromZod, type PathSegment, type Problem, SpecError } from "./problems";
import {
  alarmsSchema,
  backupsSchema,
  monitoringSchema,
  serviceAlarmsSchema,
  configSchema,
  networkSchema,
  poolerSchema,
  replicaSchema,
  servicePoolSchema,
  scopedRoleSchema,
  serverSchema,
  serviceSchema,
  rdsServerSchema,
  localServerSchema,
  externalServerSchema,
  containerServerSchema,
} from "./schema";

/** The config as read from a stack: values under `db-platform:` (keys without the namespace). */
export interface ConfigInput {
  readonly values: Readonly<Record<string, unknown>>;
  /** Keys (without namespace) whose values are Pulumi secrets. */
  readonly secretKeys: ReadonlySet<string>;
  /** `aws:region` of the stack, when set. */
  readonly awsRegion?: string;
}

const SERVER_SHAPES = {
  rds: rdsServerSchema,
  local: localServerSchema,
  external: externalServerSchema,
  container: containerServerSchema,
} as const;

/** The valid keys at a config path, for "did you mean" suggestions. */
function knownKeysAt(values: Readonly<Record<string, unknown>>) {
  return (path: readonly PathSegment[]): readonly string[] => {
    const keys = (o: z.ZodObject) => Object.keys(o.shape);
    const [top, entry, sub, , leaf] = path;
    if (path.length === 0) return keys(configSchema);
    if (top === "network" || (top === "servers" && path.at(-1) === "network")) return keys(networkSchema);
    if (top === "alarms") return keys(alarmsSchema);
    if (top === "backups") return keys(backupsSchema);
    if (top === "monitoring") return keys(monitoringSchema);
    if (top === "services" && sub === "alarms") return keys(serviceAlarmsSchema);
    if (top === "servers" && sub === "replicas") return keys(replicaSchema);
    if (top === "servers" && sub === "pooler") return keys(poolerSchema);
    if (top === "services" && sub === "pool") return keys(servicePoolSchema);
    if (top === "servers" && path.length === 2) {
      const hosting = (values.servers as Record<string, { hosting?: string }> | undefined)?.[String(entry)]?.hosting;
      const shape = SERVER_SHAPES[hosting as keyof typeof SERVER_SHAPES];
      return shape ? keys(shape) : [];
    }
    if (top === "services" && sub === "roles" && leaf === undefined) return keys(scopedRoleSchema);
    if (top === "services" && path.length === 2) return keys(serviceSchema);
    return [];
  };
}

/** Validate and build the Spec, or throw a SpecError listing every problem. */
export function loadSpec(input: ConfigInput): Spec {
  const result = validateConfig(input);
  if (!result.ok) throw new SpecError(result.problems);
  return result.spec;
}

export type ValidationResult = { ok: true; spec: Spec } | { ok: false; problems: Problem[] };

export function validateConfig(input: ConfigInput): ValidationResult {
  const problems: Problem[] = [];
  const known = knownKeysAt(input.values);

  // Top level first, with servers and services left opaque so that one bad entry does not hide
  // the problems of the others.
  const topSchema = configSchema.extend({
    servers: z.record(z.string(), z.unknown()).refine((s) => Object.keys(s).length > 0, {
      message: "declare at least one server",
    }),
    services: z.record(z.string(), z.unknown()).optional(),
  });
  const top = topSchema.safeParse(input.values);
  if (!top.success) problems.push(...fromZod(top.error, [], known));

  const environment = typeof input.values.environment === "string" ? input.values.environment : "";
  const strict = STRICT_ENVIRONMENTS.has(environment);
  const stackNetwork = networkSchema.safeParse(input.values.network);

  const rawServers = asRecord(input.values.servers);
  const parsedServers = parseEntries("servers", "server", rawServers, serverSchema, known, problems);

  const servers: ServerSpec[] = [];
  for (const [name, raw] of parsedServers) {
    const ctx = { name, strict, awsRegion: input.awsRegion, stackNetwork: stackNetwork.success ? stackNetwork.data : undefined };
    const found = checkServer(raw, ctx);
    problems.push(...found);
    if (found.length === 0) servers.push(buildServer(raw, ctx));
  }
  problems.push(...checkAdminPasswords(input, parsedServers, new Set(Object.keys(rawServers))));
  const rawBackups = top.success ? top.data.backups : undefined;
  const localS3Port = rawBackups?.storage === "local" ? (rawBackups.port ?? backupDefaults(strict, "").port) : undefined;
  problems.push(
    ...checkReplicaNames(parsedServers),
    ...checkLocalPorts(servers, localS3Port),
    ...checkLocalVersions(servers),
    ...checkRdsUpgrades(servers),
  );

  const rawServices = asRecord(input.values.services);
  const parsedServices = parseEntries("services", "service", rawServices, serviceSchema, known, problems);

  const services: ServiceSpec[] = [];
  for (const [name, raw] of parsedServices) {
    const found = [...checkService(name, raw, new Set(Object.keys(rawServers))), ...checkMove(name, raw, new Set(Object.keys(rawServers)))];
    problems.push(...found);
    if (found.length > 0) continue;
    const pooled = withPool(withAlarms(rotatedOnRds(buildService(name, raw), servers), raw, servers), raw, servers);
    problems.push(...pooled.problems);
    const service = pooled.service;
    if (!raw.move) services.push(service);
    else if (raw.move.phase === "done") services.push({ ...service, arrived: true });
    else {
      const target = withAlarms(rotatedOnRds(buildService(name, movedService(raw)), servers), raw, servers);
      const phase = raw.move.phase;
      services.push({ ...service, move: { target, phase, ...(raw.move.export && { export: raw.move.export }) } });
    }
  }
  problems.push(...checkCollisions(services, servers, parsedServices), ...checkPoolTotals(servers, services));
  problems.push(...checkProxyEndpoints(servers, services, environment));
  if (rawBackups) problems.push(...checkBackups(rawBackups, { strict, environment, awsRegion: input.awsRegion, servers: parsedServers }));
  else if (top.success && strict && [...parsedServers.values()].some((s) => s.hosting === "rds")) {
    problems.push({
      path: ["backups"],
      message:
        "required in strict environments with rds servers: per-service backups to S3 and RDS backups replicated to another region (storage: s3, replicaRegion: …)",
    });
  }

  const rawMonitoring = top.success ? top.data.monitoring : undefined;
  problems.push(...checkMonitoring(rawMonitoring, { backups: rawBackups, servers: parsedServers, services: parsedServices }));

  if (problems.length > 0 || !top.success) return { ok: false, problems };

  return {
    ok: true,
    spec: {
      environment,
      strict,
      servers,
      services,
      sharedDatabases: sharedDatabasesOf(services),
      alarmEmail: top.data.alarms?.email,
      tags: top.data.tags ?? {},
      backups: rawBackups ? buildBackups(rawBackups, strict, environment) : undefined,
      monitoring: buildMonitoring(rawMonitoring),
    },
  };
}

function sharedDatabasesOf(services: readonly ServiceSpec[]): SharedDatabaseSpec[] {
  const byKey = new Map<string, { server: string; name: string; services: string[] }>();
  for (const s of services.flatMap(placesOf)) {
    if (s.isolation !== "schema") continue;
    const key = `${s.server}/${s.database}`;
    const entry = byKey.get(key) ?? { server: s.server, name: s.database, services: [] };
    entry.services.push(s.name);
    byKey.set(key, entry);
  }
  return [...byKey.values()];
}

/** Parse each named entry on its own, so one bad entry does not hide the problems of the others. */
function parseEntries<T>(
  key: string,
  noun: string,
  raw: Record<string, unknown>,
  schema: z.ZodType<T>,
  known: (path: readonly PathSegment[]) => readonly string[],
  problems: Problem[],
): Map<string, T> {
  const parsed = new Map<string, T>();
  for (const [name, value] of Object.entries(raw)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      problems.push({ path: [key, name], message: `${noun} names must be lower-case letters, digits and -, starting with a letter` });
      continue;
    }
    const result = schema.safeParse(value);
    if (result.success) parsed.set(name, result.data);
    else problems.push(...fromZod(result.error, [key, name], known));
  }
  return parsed;
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
