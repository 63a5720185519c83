/**
 * Credential rotation without downtime (docs/rotation.md). PostgreSQL gives a role one password,
 * so each login rotates between two slots, as AWS's alternating-users rotation does: slot a is
 * the login role itself (`<service>_<key>`, which holds every privilege), slot b its alternate
 * `<service>_<key>_alt`, a member of it that holds nothing of its own. Generation N (written by
 * `db-platform rotate` to `services.<name>.credentials.<key>`) gives slot N % 2 a new password and
 * points the login's URL and secret at it; the other slot keeps the password of generation N - 1,
 * so a client that has not re-read its secret yet goes on working until generation N + 1.
 */
import type { RoleSpec } from "./model";

export const ALTERNATE_SUFFIX = "_alt";

export type CredentialSlot = "a" | "b";

/** The alternate login role of a login. */
export function alternateRoleName(loginName: string): string {
  return `${loginName}${ALTERNATE_SUFFIX}`;
}

/** The login's current generation: 0 until its first rotation. */
export function generationOf(login: Pick<RoleSpec, "credential">): number {
  return login.credential?.generation ?? 0;
}

/** The slot a generation's credential is in. */
export function slotOf(generation: number): CredentialSlot {
  return generation % 2 === 0 ? "a" : "b";
}

/** The slots a login has: slot b exists from its first rotation on. */
export function slotsOf(login: Pick<RoleSpec, "credential">): CredentialSlot[] {
  return generationOf(login) >= 1 ? ["a", "b"] : ["a"];
}

/** The role name of a slot. */
export function slotRoleName(login: Pick<RoleSpec, "name">, slot: CredentialSlot): string {
  return slot === "a" ? login.name : alternateRoleName(login.name);
}

/**
 * The generation whose password a slot holds: the latest generation ≤ the current one in that
 * slot (slot b: undefined before the first rotation).
 */
export function slotGeneration(login: Pick<RoleSpec, "credential">, slot: CredentialSlot): number | undefined {
  const n = generationOf(login);
  const parity = slot === "a" ? 0 : 1;
  const g = n % 2 === parity ? n : n - 1;
  return g >= 0 ? g : undefined;
}

/** The role a login's URL and secret name now: the current generation's slot. */
export function currentRoleName(login: RoleSpec): string {
  return slotRoleName(login, slotOf(generationOf(login)));
}

/** The previous generation's role, still valid until the next rotation; undefined before the first. */
export function previousRoleName(login: RoleSpec): string | undefined {
  const n = generationOf(login);
  return n >= 1 ? slotRoleName(login, slotOf(n - 1)) : undefined;
}

/** Every PostgreSQL role a login is: the login role, and its alternate once it has rotated. */
export function loginRoleNames(login: RoleSpec): string[] {
  return slotsOf(login).map((slot) => slotRoleName(login, slot));
}

/** `90d` → 90. */
export function periodDays(period: string): number {
  return Number(period.slice(0, -1));
}
