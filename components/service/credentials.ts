/**
 * A login's credentials on a server (docs/rotation.md): its password per slot and its login
 * roles. Slot a is the login role itself, which every grant of the service names; slot b, from
 * the login's first rotation on, is its alternate `<login>_alt`: a member of it (INHERIT) with the
 * same connection limit and settings, holding nothing of its own, so both credentials reach
 * exactly what the login reaches and nothing else. A rotation replaces the password of one slot
 * only (its generation is the password's keeper), so the other slot's stays valid.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { RoleSpec } from "../spec";
import { type CredentialSlot, generationOf, previousSlotOf, slotGeneration, slotOf, slotRoleName, slotsOf } from "../spec/rotation";
import { scramVerifier } from "./scram";

/** Attributes every service role states explicitly, so the policy pack sees them. */
export const UNPRIVILEGED = {
  superuser: false,
  createDatabase: false,
  createRole: false,
  replication: false,
  bypassRowLevelSecurity: false,
} as const;

/** Where a service's resources are named (the service's own names, or a move's target's). */
export interface ResourceNames {
  name(suffix: string): string;
  opts(suffix: string): pulumi.CustomResourceOptions;
}

/** A login's generated password per slot. */
export type SlotPasswords = Partial<Record<CredentialSlot, random.RandomPassword>>;

/**
 * The login's passwords: slot a's resource is the one every login had before rotation existed
 * (no keeper until its first re-generation, so nothing changes for a login never rotated).
 */
export function loginPasswords(name: string, login: RoleSpec, parent: pulumi.Resource): SlotPasswords {
  const out: SlotPasswords = {};
  for (const slot of slotsOf(login)) {
    const generation = slotGeneration(login, slot) ?? 0;
    out[slot] = new random.RandomPassword(
      slot === "a" ? `${name}-${login.key}-password` : `${name}-${login.key}-alt-password`,
      { length: 40, special: false, ...(generation > 0 && { keepers: { generation: String(generation) } }) },
      { parent },
    );
  }
  return out;
}

/** The slot the login's URL and secret use now, and the one still valid from the previous generation. */
export function servingSlots(login: RoleSpec): { current: CredentialSlot; previous?: CredentialSlot } {
  const previous = previousSlotOf(login);
  return { current: slotOf(generationOf(login)), ...(previous && { previous }) };
}

export interface LoginRoleArgs {
  readonly login: RoleSpec;
  readonly owner: postgresql.Role;
  readonly schemas: readonly string[];
  readonly passwords: SlotPasswords;
  /** A pooled login's roles get the SCRAM verifier their pooler holds too (components/service/scram.ts). */
  readonly pooled: boolean;
}

/** The login's roles: the login role (slot a) and, once it has rotated, its alternate. */
export function createLoginRoles(
  names: ResourceNames,
  a: LoginRoleArgs,
  opts: pulumi.CustomResourceOptions,
): { role: postgresql.Role; alternate?: postgresql.Role } {
  const { login } = a;
  const isMigrator = login.kind === "migrator";
  const password = (slot: CredentialSlot) => {
    const p = (a.passwords[slot] as random.RandomPassword).result;
    return a.pooled ? pulumi.secret(p.apply((v) => scramVerifier(v, slotRoleName(login, slot)))) : p;
  };
  const settings = {
    login: true,
    inherit: true,
    connectionLimit: login.connectionLimit,
    // Unqualified names resolve to the service's own schemas.
    searchPaths: isMigrator ? [...a.schemas] : [...login.read],
    // The migrator works as the owner, so every object it creates is owned by the owner role
    // and picks up the default privileges.
    assumeRole: isMigrator ? a.owner.name : undefined,
    ...UNPRIVILEGED,
  };
  // Secrets Manager's rotation function owns the passwords once it has run: `up` sets only the first ones.
  const owned = login.rotatedBy ? { ignoreChanges: ["password"] } : {};
  const role = new postgresql.Role(
    names.name(login.key),
    { name: login.name, password: password("a"), roles: isMigrator ? [a.owner.name] : [], ...settings },
    { ...opts, ...names.opts(login.key), ...owned },
  );
  if (!a.passwords.b) return { role };
  const suffix = `${login.key}-alt`;
  const alternate = new postgresql.Role(
    names.name(suffix),
    { name: slotRoleName(login, "b"), password: password("b"), roles: [role.name], ...settings },
    { ...opts, ...names.opts(suffix), ...owned },
  );
  return { role, alternate };
}
