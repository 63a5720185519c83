/**
 * An independent check of the isolation promise over synthesized resources: every grant,
 * default privilege and membership of a service role stays inside that service's own database
 * and schemas, and PUBLIC is revoked on every database a service uses. It reads only the
 * resources and the spec's ownership, never the components' code, so a component bug shows up.
 */
import type { SynthResource } from "../../operations/stack/synth";
import { loginRoleNames, placesOf, type ServiceSpec, type Spec } from "../../components/spec";
import { T } from "./synth";

/** The platform's monitoring login: pg_monitor and CONNECT on databases, nothing else (docs/stats.md). */
const MONITOR = "db_platform_monitor";

interface Owned {
  service: ServiceSpec;
  /** Where the service's data is on this server: its place, and a move's target (both exist during a move). */
  places: ServiceSpec[];
  provider: string;
}

/** Provider URN of each server, from the postgresql providers in the resources. */
function providerOf(resources: readonly SynthResource[], server: string): string {
  const p = resources.find((r) => r.type === T.pgProvider && r.name === `${server}-postgresql`);
  if (!p) throw new Error(`no postgresql provider for server ${server}`);
  return p.urn;
}

/** A server's per-database providers (`<server>-postgresql-<db>`) stand for the same server. */
function onMainProviders(resources: readonly SynthResource[]): SynthResource[] {
  const main = new Map<string, string>();
  for (const p of resources.filter((r) => r.type === T.pgProvider)) {
    const server = /^(.*)-postgresql(?:-[a-z0-9_]+)?$/.exec(p.name)?.[1];
    const primary = resources.find((r) => r.type === T.pgProvider && r.name === `${server}-postgresql`);
    if (primary) main.set(p.urn, primary.urn);
  }
  return resources.map((r) => (r.provider && main.has(r.provider) ? { ...r, provider: main.get(r.provider) as string } : r));
}

export function isolationViolations(spec: Spec, all: readonly SynthResource[]): string[] {
  const resources = onMainProviders(all);
  const out: string[] = [];
  const roleOwner = new Map<string, Owned>();
  for (const s of spec.services) {
    for (const place of placesOf(s)) {
      const provider = providerOf(resources, place.server);
      // A login's alternate (its second credential slot, docs/rotation.md) is the service's too.
      for (const name of [s.owner.name, ...s.logins.flatMap(loginRoleNames)]) {
        const known = roleOwner.get(`${provider}|${name}`);
        if (known) known.places.push(place);
        else roleOwner.set(`${provider}|${name}`, { service: s, places: [place], provider });
      }
    }
  }
  const ownerOf = (provider: string | null, role: unknown) => roleOwner.get(`${provider}|${String(role)}`);
  const inService = (o: Owned, database: unknown, schema: unknown) =>
    o.places.some((p) => database === p.database && (schema === undefined || p.schemas.includes(String(schema))));

  for (const r of resources) {
    const p = r.props;
    if (r.type === T.grant) {
      if (p.role === "public") {
        if ((p.privileges as unknown[]).length > 0) out.push(`${r.name}: grants ${String(p.privileges)} to PUBLIC`);
        continue;
      }
      if (p.role === MONITOR) {
        const connectOnly = p.objectType === "database" && JSON.stringify(p.privileges) === '["CONNECT"]';
        if (!connectOnly) out.push(`${r.name}: ${MONITOR} gets ${String(p.objectType)} ${String(p.privileges)}`);
        continue;
      }
      const owner = ownerOf(r.provider, p.role);
      if (!owner) {
        out.push(`${r.name}: grant to a role no service owns (${String(p.role)})`);
        continue;
      }
      const s = owner.service;
      // Schema-isolated services may only CONNECT (and TEMP) to their shared database.
      const ok = p.objectType === "database" ? owner.places.some((x) => x.database === p.database) : inService(owner, p.database, p.schema);
      if (!ok) out.push(`${r.name}: ${String(p.role)} (service ${s.name}) reaches ${String(p.database)}/${String(p.schema ?? "")}`);
    }
    if (r.type === T.defaultPrivileges && p.role === "public") {
      const owner = ownerOf(r.provider, p.owner);
      if ((p.privileges as unknown[]).length > 0) out.push(`${r.name}: default privileges for PUBLIC (${String(p.privileges)})`);
      else if (!owner || !inService(owner, p.database, p.schema)) out.push(`${r.name}: PUBLIC revoke outside a service`);
      continue;
    }
    if (r.type === T.defaultPrivileges) {
      const owner = ownerOf(r.provider, p.owner);
      const grantee = ownerOf(r.provider, p.role);
      if (!owner || !grantee || owner.service !== grantee.service) {
        out.push(`${r.name}: default privileges cross services (${String(p.owner)} -> ${String(p.role)})`);
      } else if (!inService(owner, p.database, p.schema)) {
        out.push(`${r.name}: default privileges outside service ${owner.service.name}`);
      }
    }
    if (r.type === T.role) {
      const member = ownerOf(r.provider, p.name);
      const monitor = p.name === MONITOR || p.name === `${MONITOR}_alt`;
      // The monitoring login joins pg_monitor; its alternate (RDS: its second credential slot) joins it only.
      const expected = p.name === MONITOR ? '["pg_monitor"]' : `["${MONITOR}"]`;
      if (monitor && JSON.stringify(p.roles) !== expected) out.push(`${r.name}: ${String(p.name)} joins ${String(p.roles)}`);
      for (const parent of monitor ? [] : ((p.roles as string[] | undefined) ?? [])) {
        const target = ownerOf(r.provider, parent);
        if (!member || !target || member.service !== target.service) out.push(`${r.name}: ${String(p.name)} is a member of ${parent}`);
      }
      for (const attr of ["superuser", "createDatabase", "createRole", "replication", "bypassRowLevelSecurity"]) {
        if (p[attr] !== false) out.push(`${r.name}: ${attr} is not explicitly false`);
      }
    }
    if (r.type === T.grantRole) {
      // Only the server's admin may join a role, and only a service's owner role.
      const admin = resources.find((x) => x.urn === r.provider)?.props.username;
      const target = ownerOf(r.provider, p.grantRole);
      if (p.role !== admin || !target || target.service.owner.name !== p.grantRole) {
        out.push(`${r.name}: unexpected role membership grant (${String(p.grantRole)} to ${String(p.role)})`);
      }
    }
  }

  // The admin holds every owner role, or its grants on the service's database do nothing.
  for (const s of spec.services.flatMap(placesOf)) {
    const provider = providerOf(resources, s.server);
    const held = resources.some((r) => r.type === T.grantRole && r.provider === provider && r.props.grantRole === s.owner.name);
    if (!held) out.push(`service ${s.name}: the admin is not a member of ${s.owner.name}`);
  }

  // PUBLIC's CONNECT and TEMP are revoked on every database a service uses.
  const databases = new Set(spec.services.flatMap(placesOf).map((s) => `${providerOf(resources, s.server)}|${s.database}`));
  for (const key of databases) {
    const [provider, database] = key.split("|");
    const revoked = resources.some(
      (r) =>
        r.type === T.grant &&
        r.provider === provider &&
        r.props.database === database &&
        r.props.role === "public" &&
        r.props.objectType === "database",
    );
    if (!revoked) out.push(`database ${database}: PUBLIC is not revoked`);
  }
  return out;
}
