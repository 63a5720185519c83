/**
 * Secrets Manager's rotation of a service login's secret on AWS (docs/rotation.md, "On AWS"): the
 * four steps of a rotation function, over the same two credential slots `db-platform rotate` uses
 * (components/spec/rotation.ts). The secret names one slot's role; a rotation gives the *other*
 * slot a new password and points the secret at it, so the credential a client holds keeps working
 * until the next rotation, as in AWS's alternating-users rotation:
 *
 * - createSecret: the pending version, the other slot's role with a new generated password, and
 *   the endpoint the stack declares now (the secret's `db-platform:host|port|dbname` tags);
 * - setSecret: that role's password set by the server's master user (from the RDS-managed master
 *   secret), as a SCRAM verifier so no plaintext password reaches the server's logs; only a role of
 *   the login's own slot pair (the login from the secret's `db-platform:login` tag, which the stack
 *   sets), unprivileged, is ever altered;
 * - testSecret: the pending credential logs in to the server directly, as its role;
 * - finishSecret: behind RDS Proxy, the login's `…/previous` secret (named by its
 *   `db-platform:previous-secret` tag) takes the credential that was current, so the proxy admits
 *   both until the next rotation; the pending version becomes current.
 *
 * Each step can be run again (Secrets Manager retries a failed step): it does nothing twice.
 */
import { randomInt } from "node:crypto";
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramVerifier } from "../../components/service/scram";
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { serviceRoleName } from "../../components/spec/naming";
import { ALTERNATE_SUFFIX, ENDPOINT_TAGS, LOGIN_TAG, PREVIOUS_SECRET_TAG, ROTATION_ENV } from "../../components/spec/rotation";

export { LOGIN_TAG };
import { pgConfig } from "../backup/runner";

export const ROTATION_STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/** What Secrets Manager invokes the function with. */
export interface RotationEvent {
  readonly Step: RotationStep;
  readonly SecretId: string;
  readonly ClientRequestToken: string;
}

/** The function's environment: one function per RDS server (components/servers/loginRotation.ts). */
export interface RotationTarget {
  /** The server's own endpoint, never its proxy: setSecret and testSecret connect there. */
  readonly host: string;
  readonly port: number;
  readonly sslMode: string;
  /** The server's RDS-managed master user secret: the login that sets the slots' passwords. */
  readonly masterSecretArn: string;
  /** The stack's environment: only its login secrets (`db-platform/<environment>/…`) are rotated. */
  readonly environment: string;
  /** Behind RDS Proxy: each pooled service's proxy endpoint, the host its logins' secrets name. */
  readonly proxyEndpoints?: Readonly<Record<string, string>>;
}

export class RotationError extends Error {}

/** The standard RDS secret JSON every login secret holds (components/servers/aws.ts). */
interface LoginSecretValue {
  readonly engine: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly dbname: string;
}

const PENDING = "AWSPENDING";
const CURRENT = "AWSCURRENT";
const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function rotationTargetFromEnv(env: NodeJS.ProcessEnv): RotationTarget {
  const read = (name: string) => {
    const v = env[name];
    if (!v) throw new RotationError(`rotation function: environment variable ${name} is not set`);
    return v;
  };
  return {
    host: read(ROTATION_ENV.host),
    port: Number(read(ROTATION_ENV.port)),
    sslMode: read(ROTATION_ENV.sslMode),
    masterSecretArn: read(ROTATION_ENV.masterSecretArn),
    environment: read(ROTATION_ENV.environment),
    proxyEndpoints: proxyEndpointsOf(env[ROTATION_ENV.proxyEndpoints]),
  };
}

/** `{"<service>": "<proxy endpoint>"}`, as the stack sets it; absent on a server without a proxy. */
function proxyEndpointsOf(value: string | undefined): Record<string, string> {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== "string"))
    throw new RotationError(
      `rotation function: environment variable ${ROTATION_ENV.proxyEndpoints} is not a JSON object of service to endpoint`,
    );
  return parsed as Record<string, string>;
}

/**
 * The login a secret's name is for: `db-platform/<env>/<service>/<key>` is `<service>_<key>`'s
 * (components/spec/naming.ts), `db-platform/<env>/servers/<server>/monitor` the monitoring login's.
 */
export function loginOfSecretName(name: string, environment: string): string | undefined {
  const parts = name.split("/");
  if (parts.length < 4 || parts[0] !== "db-platform" || parts[1] !== environment) return undefined;
  if (parts.length === 5 && parts[2] === "servers" && parts[4] === "monitor") return MONITOR_ROLE;
  return parts.length === 4 ? serviceRoleName(parts[2], parts[3]) : undefined;
}

/**
 * Where the login connects, as the stack declares it now: the tags it keeps current, and behind
 * RDS Proxy (no host tag: the proxy reads the secret) the service's proxy endpoint from the
 * function's environment; else as the secret says.
 */
function endpointOf(
  tags: Record<string, string | undefined>,
  current: LoginSecretValue,
  proxyEndpoint: string | undefined,
): Pick<LoginSecretValue, "host" | "port" | "dbname"> {
  return {
    host: tags[ENDPOINT_TAGS.host] || (tags[PREVIOUS_SECRET_TAG] ? proxyEndpoint : undefined) || current.host,
    port: Number(tags[ENDPOINT_TAGS.port]) || current.port,
    dbname: tags[ENDPOINT_TAGS.dbname] || current.dbname,
  };
}

/** `db-platform/<env>/<service>/<key>` is service `<service>`'s login secret. */
function serviceOfSecretName(name: string | undefined): string {
  return name?.split("/")[2] ?? "";
}

/** The other slot of a login's slot pair: `<login>` ↔ `<login>_alt`. */
export function otherSlotRole(username: string): string {
  return username.endsWith(ALTERNATE_SUFFIX) ? username.slice(0, -ALTERNATE_SUFFIX.length) : `${username}${ALTERNATE_SUFFIX}`;
}

/** 40 characters of [A-Za-z0-9], as the logins' generated passwords are. */
export function generatePassword(length = 40): string {
  return Array.from({ length }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join("");
}

/** One step of a rotation of the login secret `event.SecretId`. */
export async function rotationStep(event: RotationEvent, target: RotationTarget, sm: SecretsManagerClient): Promise<void> {
  const { SecretId: secretId, ClientRequestToken: token, Step: step } = event;
  if (!ROTATION_STEPS.includes(step)) throw new RotationError(`secret ${secretId}: unknown rotation step ${String(step)}`);
  const described = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  if (!described.RotationEnabled) throw new RotationError(`secret ${secretId}: rotation is not enabled`);
  const stages = described.VersionIdsToStages?.[token];
  if (stages?.includes(CURRENT)) return; // this rotation is already finished
  // Secrets Manager makes the token's version (labelled pending) before it invokes createSecret.
  if (stages ? !stages.includes(PENDING) : step !== "createSecret")
    throw new RotationError(`secret ${secretId}: version ${token} is not pending rotation`);
  // The login comes from the secret's tag, which the stack sets, never from its value: a value
  // naming another login's role (another service's) is refused, not rotated. And the tag must be
  // the login the secret's name is for, so a secret made elsewhere cannot claim another login.
  const tags = Object.fromEntries((described.Tags ?? []).map((t) => [t.Key, t.Value]));
  const login = tags[LOGIN_TAG];
  if (!login || !ROLE_NAME.test(login)) throw new RotationError(`secret ${secretId}: no ${LOGIN_TAG} tag naming its login`);
  const expected = loginOfSecretName(String(described.Name), target.environment);
  if (expected !== login)
    throw new RotationError(
      `secret ${secretId}: its name ${described.Name} is not the secret of login ${login} in environment ${target.environment}`,
    );
  const slots = [login, `${login}${ALTERNATE_SUFFIX}`];
  const read = async (version: { VersionId?: string; VersionStage: string }) => {
    const value = await readSecret(sm, secretId, version);
    if (!slots.includes(value.username))
      throw new RotationError(
        `secret ${secretId} (${version.VersionStage}) names ${value.username}, not a slot of login ${login} (${slots.join(", ")})`,
      );
    return value;
  };
  const current = await read({ VersionStage: CURRENT });
  switch (step) {
    case "createSecret":
      return createSecret(sm, secretId, token, {
        ...current,
        ...endpointOf(tags, current, target.proxyEndpoints?.[serviceOfSecretName(described.Name)]),
      });
    case "setSecret":
      return setSecret(sm, target, current, await read({ VersionId: token, VersionStage: PENDING }));
    case "testSecret":
      return testSecret(target, await read({ VersionId: token, VersionStage: PENDING }));
    case "finishSecret":
      return finishSecret(sm, secretId, token, described, current, tags);
  }
}

async function readSecret(
  sm: SecretsManagerClient,
  secretId: string,
  version: { VersionId?: string; VersionStage: string },
): Promise<LoginSecretValue> {
  const { SecretString: text } = await sm.send(new GetSecretValueCommand({ SecretId: secretId, ...version }));
  let value: Partial<LoginSecretValue>;
  try {
    value = JSON.parse(text ?? "") as Partial<LoginSecretValue>;
  } catch {
    throw new RotationError(`secret ${secretId} (${version.VersionStage}): not the RDS secret JSON of a login`);
  }
  for (const key of ["host", "port", "username", "password", "dbname"] as const)
    if (value[key] === undefined || value[key] === "") throw new RotationError(`secret ${secretId} (${version.VersionStage}): no ${key}`);
  if (!ROLE_NAME.test(String(value.username)))
    throw new RotationError(`secret ${secretId}: username ${String(value.username)} is not a service login's role name`);
  return value as LoginSecretValue;
}

async function createSecret(sm: SecretsManagerClient, secretId: string, token: string, current: LoginSecretValue): Promise<void> {
  try {
    await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: token, VersionStage: PENDING }));
    return; // made by an earlier attempt of this step
  } catch (e) {
    if (!(e instanceof ResourceNotFoundException)) throw e;
  }
  const pending: LoginSecretValue = { ...current, username: otherSlotRole(current.username), password: generatePassword() };
  await sm.send(
    new PutSecretValueCommand({
      SecretId: secretId,
      ClientRequestToken: token,
      SecretString: JSON.stringify(pending),
      VersionStages: [PENDING],
    }),
  );
}

async function connect(target: RotationTarget, user: string, password: string, database: string): Promise<Client> {
  const config = pgConfig({ host: target.host, port: target.port, user, password, sslMode: target.sslMode }, database);
  const client = new Client({ ...config, application_name: "db-platform-rotation", connectionTimeoutMillis: 15_000 });
  await client.connect();
  return client;
}

async function logsIn(target: RotationTarget, login: LoginSecretValue): Promise<boolean> {
  try {
    const client = await connect(target, login.username, login.password, login.dbname);
    await client.end();
    return true;
  } catch {
    return false;
  }
}

async function setSecret(
  sm: SecretsManagerClient,
  target: RotationTarget,
  current: LoginSecretValue,
  pending: LoginSecretValue,
): Promise<void> {
  if (pending.username === current.username) throw new RotationError(`pending credential names the current slot ${current.username}`);
  if (await logsIn(target, pending)) return; // set by an earlier attempt of this step
  const { SecretString: masterText } = await sm.send(new GetSecretValueCommand({ SecretId: target.masterSecretArn }));
  const master = JSON.parse(masterText ?? "{}") as { username?: string; password?: string };
  if (!master.username || !master.password) throw new RotationError(`master secret ${target.masterSecretArn}: no username or password`);
  const client = await connect(target, master.username, master.password, "postgres");
  try {
    await checkSlotRole(client, pending.username);
    await client.query(
      `ALTER ROLE ${escapeIdentifier(pending.username)} WITH PASSWORD ${escapeLiteral(scramVerifier(pending.password, pending.username))}`,
    );
  } finally {
    await client.end();
  }
}

/** Only an unprivileged login role of a slot pair (the login, or its alternate that is a member of it) is ever altered. */
async function checkSlotRole(client: Client, role: string): Promise<void> {
  const { rows } = await client.query<{ unprivileged: boolean; slot: boolean }>(
    `SELECT rolcanlogin AND NOT (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls) AS unprivileged,
            $2 = '' OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                                WHERE m.member = r.oid AND b.rolname = $2) AS slot
       FROM pg_roles r WHERE rolname = $1`,
    [role, role.endsWith(ALTERNATE_SUFFIX) ? otherSlotRole(role) : ""],
  );
  if (rows.length === 0) throw new RotationError(`role ${role} does not exist on the server (has the stack been applied?)`);
  if (!rows[0].unprivileged) throw new RotationError(`role ${role} is not an unprivileged login: its password is not rotated`);
  if (!rows[0].slot) throw new RotationError(`role ${role} is not a member of ${otherSlotRole(role)}: not an alternate login`);
}

async function testSecret(target: RotationTarget, pending: LoginSecretValue): Promise<void> {
  let client: Client;
  try {
    client = await connect(target, pending.username, pending.password, pending.dbname);
  } catch (e) {
    throw new RotationError(`pending credential of ${pending.username} does not log in to ${pending.dbname}: ${(e as Error).message}`);
  }
  try {
    const { rows } = await client.query<{ who: string }>("SELECT current_user AS who");
    if (rows[0]?.who !== pending.username)
      throw new RotationError(`pending credential logs in as ${rows[0]?.who}, not ${pending.username}`);
  } finally {
    await client.end();
  }
}

async function finishSecret(
  sm: SecretsManagerClient,
  secretId: string,
  token: string,
  described: { Name?: string; VersionIdsToStages?: Record<string, string[]> },
  current: LoginSecretValue,
  tags: Record<string, string | undefined>,
): Promise<void> {
  // Behind RDS Proxy the previous credential has a secret of its own, which the proxy logs in
  // with (named by the stack in a tag, never probed for): written first, with this rotation's
  // token so a retry writes nothing new, as the step ends once current moves.
  const previous = tags[PREVIOUS_SECRET_TAG];
  if (previous && previous !== `${described.Name}/previous`)
    throw new RotationError(`secret ${secretId}: its ${PREVIOUS_SECRET_TAG} tag names ${previous}, not ${described.Name}/previous`);
  if (previous)
    await sm.send(new PutSecretValueCommand({ SecretId: previous, ClientRequestToken: token, SecretString: JSON.stringify(current) }));
  const currentVersion = Object.entries(described.VersionIdsToStages ?? {}).find(([, s]) => s.includes(CURRENT))?.[0];
  await sm.send(
    new UpdateSecretVersionStageCommand({
      SecretId: secretId,
      VersionStage: CURRENT,
      MoveToVersionId: token,
      RemoveFromVersionId: currentVersion,
    }),
  );
}
