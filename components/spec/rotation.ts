/**
 * Credential rotation without downtime (docs/rotation.md). PostgreSQL gives a role one password,
 * so each login rotates between two slots, as AWS's alternating-users rotation does: slot a is
 * the login role itself (`<service>_<key>`, which holds every privilege), slot b its alternate
 * `<service>_<key>_alt`, a member of it that holds nothing of its own. Generation N (written by
 * `db-platform rotate` to `services.<name>.credentials.<key>`) gives slot N % 2 a new password and
 * points the login's URL and secret at it; the other slot keeps the password of generation N - 1,
 * so a client that has not re-read its secret yet goes on working until generation N + 1.
 */
import type { RoleSpec, ServerSpec, ServiceSpec } from "./model";

export const ALTERNATE_SUFFIX = "_alt";

/** The tag of a login's Secrets Manager secret naming its login role: what the rotation function rotates. */
export const LOGIN_TAG = "db-platform:login";

/** The environment of an RDS server's login rotation function (operations/rotate/secretsManager.ts). */
export const ROTATION_ENV = {
  host: "DB_PLATFORM_SERVER_HOST",
  port: "DB_PLATFORM_SERVER_PORT",
  sslMode: "DB_PLATFORM_SSLMODE",
  masterSecretArn: "DB_PLATFORM_MASTER_SECRET_ARN",
  environment: "DB_PLATFORM_ENVIRONMENT",
  proxyEndpoints: "DB_PLATFORM_PROXY_ENDPOINTS",
} as const;

/**
 * Tags of a rotated login's secret stating where it connects, kept current by `up`: the secret's
 * value is the rotation function's (`ignoreChanges`), so its next rotation takes the endpoint from
 * them (after a move or a pool change: docs/rotation.md).
 */
/** The tag of a pooled login's secret naming its previous credential's secret, which finishSecret writes (RDS Proxy admits both). */
export const PREVIOUS_SECRET_TAG = "db-platform:previous-secret";

export const ENDPOINT_TAGS = { host: "db-platform:host", port: "db-platform:port", dbname: "db-platform:dbname" } as const;

/**
 * A staging label the first version of a rotated login's secret (the one `up` wrote, which the
 * engine's state tracks) keeps for good. Secrets Manager deletes versions left without a label,
 * and the AWS provider then drops such a version from the state at a refresh, so the next `up`
 * would create it again, with the first password, as AWSCURRENT: an outage for every client
 * (hashicorp/terraform-provider-aws#37302). Labelled, the version is never deprecated.
 */
export const INITIAL_VERSION_STAGE = "DBPLATFORM_INITIAL";

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

/**
 * The slots a login has: slot b exists from its first rotation on, and from the first `up` where
 * Secrets Manager rotates the login (a service on an rds server).
 */
export function slotsOf(login: Pick<RoleSpec, "credential" | "rotatedBy">): CredentialSlot[] {
  return login.rotatedBy || generationOf(login) >= 1 ? ["a", "b"] : ["a"];
}

/** The slot still valid from the previous generation: Secrets Manager's logins have slot b's from the start. */
export function previousSlotOf(login: Pick<RoleSpec, "credential" | "rotatedBy">): CredentialSlot | undefined {
  const n = generationOf(login);
  if (n >= 1) return slotOf(n - 1);
  return login.rotatedBy ? "b" : undefined;
}

/**
 * Services on rds servers: Secrets Manager rotates each login's secret on its schedule with the
 * server's rotation function (components/servers/loginRotation.ts), over both slots.
 */
export function rotatedOnRds(service: ServiceSpec, servers: readonly ServerSpec[]): ServiceSpec {
  if (servers.find((s) => s.name === service.server)?.hosting !== "rds") return service;
  const logins = service.logins.map((l) => ({ ...l, rotatedBy: "secrets-manager" as const }));
  return { ...service, logins };
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
  const slot = previousSlotOf(login);
  return slot && slotRoleName(login, slot);
}

/** Every PostgreSQL role a login is: the login role, and its alternate once it has rotated. */
export function loginRoleNames(login: RoleSpec): string[] {
  return slotsOf(login).map((slot) => slotRoleName(login, slot));
}

/** `90d` → 90. */
export function periodDays(period: string): number {
  return Number(period.slice(0, -1));
}
