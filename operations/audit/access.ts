/** The access matrix: the strongest access each service (and PUBLIC) has in each area of a server. */
import { type AccessLevel, type DeclaredServer, type LiveObject, PUBLIC } from "./model";
import { type AuditContext, stronger, type Target, WRITE_PRIVILEGES } from "./rules/context";

/** The strongest access each service (and PUBLIC) has in each area, from live ACLs and ownership. */
export function accessLevels(ctx: AuditContext, targets: readonly Target[]): Map<string, Map<string, AccessLevel>> {
  const { declared, isSuper, serviceRoles, reach } = ctx;
  const subjects = new Map<string, string[]>();
  for (const r of serviceRoles) subjects.set(r.service as string, [...(subjects.get(r.service as string) ?? []), r.name]);
  subjects.set(PUBLIC, []);
  const targetsByDb = new Map<string, Target[]>();
  for (const t of targets) {
    const list = targetsByDb.get(t.database) ?? [];
    list.push(t);
    targetsByDb.set(t.database, list);
  }
  const result = new Map<string, Map<string, AccessLevel>>();
  for (const [subject, roles] of subjects) {
    const cells = new Map<string, AccessLevel>();
    const held = new Set([PUBLIC, ...roles.flatMap((r) => [...reach(r)])]);
    const holds = (grantee: string) => held.has(grantee);
    const superuser = roles.some(isSuper);
    for (const area of declared.areas) {
      const label = areaLabel(declared.name, area);
      let level: AccessLevel = superuser ? "owner" : "none";
      for (const t of targetsByDb.get(area.database) ?? []) {
        if (!inArea(t, area)) continue;
        // A shared database's own entries say nothing about one tenant's schemas.
        if (t.kind === "database" && area.schemas) continue;
        if (subject !== PUBLIC && holds(t.owner)) level = stronger(level, t.kind === "database" || t.kind === "schema" ? "owner" : "write");
        for (const e of t.acl) {
          if (!holds(e.grantee) || (t.kind === "function" && e.grantee === PUBLIC)) continue;
          level = stronger(level, accessOf(t.kind, e.privilege));
        }
      }
      cells.set(label, level);
    }
    result.set(subject, cells);
  }
  return result;
}

/** What one privilege on one kind of object gives, on the matrix's scale. */
function accessOf(kind: LiveObject["kind"], privilege: string): AccessLevel {
  const p = privilege.replace(/\(.*/, "");
  if (kind === "database" || kind === "schema") return p === "CREATE" ? "write" : "connect";
  return WRITE_PRIVILEGES.has(p) || (kind === "sequence" && p === "USAGE") ? "write" : "read";
}

function inArea(t: Target, area: DeclaredServer["areas"][number]): boolean {
  if (t.database !== area.database) return false;
  return !area.schemas || t.schema === undefined || area.schemas.includes(t.schema);
}

export function areaLabel(server: string, area: DeclaredServer["areas"][number]): string {
  return area.schemas ? `${server}/${area.database}/${area.schemas.join(",")}` : `${server}/${area.database}`;
}

export function areaLabels(declared: DeclaredServer): Array<{ label: string; service: string }> {
  return declared.areas.map((a) => ({ label: areaLabel(declared.name, a), service: a.service }));
}
