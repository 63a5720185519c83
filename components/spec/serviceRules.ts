/**
 * Service rules: each service entry checked (its server, isolation, roles, schemas, extensions)
 * and built into its model; names that would collide across services or servers.
 */
import { ALLOWED_EXTENSIONS, FORBIDDEN_EXTENSIONS, ROLE_CONNECTION_LIMITS } from "./defaults";
import type { RoleSpec, ServerSpec, ServiceSpec } from "./model";
import { BUILTIN_ROLE_SUFFIXES, identifierProblem, serviceDatabaseName, serviceRoleName, serviceSchemaName, toIdentifier } from "./naming";
import { type PathSegment, type Problem, suggestion } from "./problems";
import { alternateRoleName, loginRoleNames, periodDays } from "./rotation";
import { type RawService } from "./schema";
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
  if (raw.createSchemas && isolation === "database") {
    out.push({
      path: at("createSchemas"),
      message: "only for isolation schema: a service's own database already lets its owner role create schemas",
    });
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

  const loginKeys = [BUILTIN_ROLE_SUFFIXES.app, BUILTIN_ROLE_SUFFIXES.readonly, BUILTIN_ROLE_SUFFIXES.migrator, ...roleKeys];
  for (const key of Object.keys(raw.credentials ?? {})) {
    if (!loginKeys.includes(key)) {
      out.push({
        path: at("credentials", key),
        message: `"${key}" is not a login of service ${name} (its logins: ${[...new Set(loginKeys)].join(", ")})${suggestion(key, loginKeys)}`,
      });
    } else {
      const alternate = alternateRoleName(serviceRoleName(name, key));
      const p = identifierProblem(alternate);
      if (p) out.push({ path: at("credentials", key), message: `its alternate login for rotation: ${p}` });
      const taken = roleKeys.find((k) => serviceRoleName(name, k) === alternate);
      if (taken)
        out.push({
          path: at("credentials", key),
          message: `its alternate login for rotation, ${alternate}, is the role of roles.${taken}: rename that role`,
        });
    }
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

/** A move's target (`services.<name>.move.to`): known server, a database for schema isolation, another place. */
export function checkMove(name: string, raw: RawService, servers: ReadonlySet<string>): Problem[] {
  if (!raw.move) return [];
  const at = (...p: PathSegment[]) => ["services", name, "move", ...p];
  const { to } = raw.move;
  const out: Problem[] = [];
  if (!servers.has(to.server)) {
    const known = [...servers];
    out.push({
      path: at("to", "server"),
      message: `unknown server "${to.server}" (known: ${known.join(", ") || "none"})${suggestion(to.server, known)}`,
    });
  }
  if (to.isolation === "schema" && !to.database) {
    out.push({ path: at("to", "database"), message: "required when isolation is schema: the shared database the service moves into" });
  }
  const database = to.isolation === "database" ? serviceDatabaseName(name, to.database) : to.database;
  const p = database ? identifierProblem(database) : undefined;
  if (p) out.push({ path: at("to", "database"), message: p });
  const from = buildService(name, raw);
  const here = to.server === from.server && to.isolation === from.isolation && database === from.database;
  if (raw.move.phase === "done") {
    if (!here)
      out.push({
        path: at("to"),
        message: `phase done: the service must be declared where it moved (${to.isolation} isolation, database ${database ?? "?"} on server ${to.server})`,
      });
  } else if (here) {
    out.push({
      path: at("to"),
      message: `is where service ${name} already is (${from.isolation} isolation, database ${from.database} on server ${from.server})`,
    });
  }
  return out;
}

/** The service as declared at a move's target: same name, roles and schemas, another place. */
export function movedService(raw: RawService): RawService {
  const { move, ...rest } = raw;
  if (!move) return rest;
  return { ...rest, server: move.to.server, isolation: move.to.isolation, database: move.to.database };
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
    ...(login && raw.credentials?.[key] && { credential: raw.credentials[key] }),
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
    ...(raw.rotation && { rotationDays: periodDays(raw.rotation) }),
    allowDataLoss: raw.allowDataLoss ?? false,
    createSchemas: raw.createSchemas ?? false,
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
  // A move's target claims its names as the service's own: both places exist during the move.
  const places = services.flatMap((s) =>
    s.move
      ? [
          { s, moving: false },
          { s: s.move.target, moving: true },
        ]
      : [{ s, moving: false }],
  );
  const dbIsolated = new Map<string, string>();
  for (const { s } of places) if (s.isolation === "database") dbIsolated.set(`${s.server}/${s.database}`, s.name);

  for (const { s, moving } of places) {
    const at = (...p: PathSegment[]) =>
      moving ? ["services", s.name, "move", "to", ...p.filter((x) => x === "database")] : ["services", s.name, ...p];
    const owner = `services.${s.name}`;
    for (const r of [s.owner, ...s.logins]) {
      const path = r.kind === "scoped" || raws.get(s.name)?.roles?.[r.key] ? at("roles", r.key) : at();
      for (const role of r.login ? loginRoleNames(r) : [r.name]) {
        claim(`${s.server}/role/${role}`, owner, path, `role "${role}" on server ${s.server}`);
      }
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
