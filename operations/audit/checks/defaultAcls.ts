/** Default privileges: what objects created later will grant, against the stack. */
import { type LiveDatabase, PUBLIC } from "../model";
import { type AuditContext, areaServices, q, sorted } from "./context";

export function checkDefaultAcls(ctx: AuditContext, db: LiveDatabase): void {
  const { add, scoped, holders } = ctx;
  const here = scoped(db.name);
  const declaredHere = here.defaultPrivileges;
  const key = (owner: string, schema: string | null | undefined, type: string, grantee: string) =>
    [owner, schema ?? "", type, grantee].join("|");
  const expected = new Map<string, Set<string>>();
  for (const d of declaredHere) expected.set(key(d.owner, d.schema, d.objectType, d.grantee), new Set(d.privileges));
  const seen = new Map<string, Set<string>>();
  for (const da of db.defaultAcls) {
    for (const e of da.acl) {
      if (e.grantee === da.owner) continue;
      const k = key(da.owner, da.schema, da.objectType, e.grantee);
      seen.set(k, (seen.get(k) ?? new Set()).add(e.privilege));
    }
  }
  for (const [k, privileges] of seen) {
    const [owner, schema, type, grantee] = k.split("|");
    const extra = [...privileges].filter((p) => !expected.get(k)?.has(p)).sort();
    if (extra.length === 0) continue;
    // Functions get EXECUTE for PUBLIC by default; only a global default ACL can say so explicitly.
    if (grantee === PUBLIC && type === "function" && extra.every((p) => p === "EXECUTE")) continue;
    const area = schema ? areaServices(here, db.name, schema) : new Set<string>();
    const label = `${db.name}/${schema || "*"} default privileges of ${owner} on new ${type}s`;
    const intruders = area.size > 0 ? holders(grantee).filter((r) => !area.has(r.service as string)) : [];
    add({
      rule: grantee === PUBLIC ? "public-access" : intruders.length > 0 ? "cross-service-access" : "drift",
      object: label,
      subject: grantee,
      services: sorted([...area, ...intruders.map((r) => r.service as string)]),
      message: `new ${type}s created by ${owner}${schema ? ` in ${db.name}/${schema}` : ` anywhere in ${db.name}`} will grant ${extra.join(", ")} to ${grantee}, which the stack does not declare`,
      fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(owner)}${schema ? ` IN SCHEMA ${q(schema)}` : ""} REVOKE ${extra.join(", ")} ON ${type.toUpperCase()}S FROM ${grantee === PUBLIC ? "PUBLIC" : q(grantee)};`,
    });
  }
  for (const [k, privileges] of expected) {
    const missing = [...privileges].filter((p) => !seen.get(k)?.has(p)).sort();
    if (missing.length === 0) continue;
    const [owner, schema, type, grantee] = k.split("|");
    add({
      rule: "drift",
      object: `${db.name}/${schema || "*"} default privileges of ${owner} on new ${type}s`,
      subject: grantee,
      services: sorted(areaServices(here, db.name, schema)),
      message: `new ${type}s created by ${owner} in ${db.name}/${schema} are declared to grant ${missing.join(", ")} to ${grantee}, but will not`,
      fix: `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(owner)} IN SCHEMA ${q(schema)} GRANT ${missing.join(", ")} ON ${type.toUpperCase()}S TO ${q(grantee)}; or run pulumi up`,
    });
  }
}
