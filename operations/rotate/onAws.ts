/**
 * `db-platform rotate` for the logins Secrets Manager rotates (services on rds servers,
 * docs/rotation.md "On AWS"): the rotation is Secrets Manager's, with the server's rotation
 * function, so `rotate` asks it to rotate now and waits until the new version is current. Nothing
 * goes through the engine and nothing is written to the stack file: Secrets Manager keeps the
 * rotation's state (the pending version) and retries a failed step itself. Run again after a
 * kill, `rotate` waits for the rotation in progress instead of starting another; one that does
 * not finish is reported with how to have Secrets Manager attempt it again.
 */
import { DescribeSecretCommand, GetSecretValueCommand, RotateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type ServiceSpec, type Spec, servingPlace } from "../../components/spec";
import { loginSecretName } from "../../components/spec/naming";
import { BackupError } from "../backup/runner";

/** A Secrets Manager rotation did not finish: the secret is named, with where it stands. */
export class AwsRotateError extends BackupError {}

export interface AwsLogin {
  readonly service: string;
  readonly login: string;
  /** The region of the login's server. */
  readonly region: string;
}

export interface AwsRotateOptions {
  readonly environment: string;
  /** @default 600 000 (the function's four steps, each retried by Secrets Manager) */
  readonly timeoutMs?: number;
  /** @default 2000 */
  readonly pollMs?: number;
  /** Tests: a client of their own (an emulator's). */
  readonly client?: (region: string) => SecretsManagerClient;
}

const PENDING = "AWSPENDING";
const CURRENT = "AWSCURRENT";

async function username(sm: SecretsManagerClient, secretId: string): Promise<string> {
  const { SecretString } = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: CURRENT }));
  return String((JSON.parse(SecretString ?? "{}") as { username?: unknown }).username);
}

/** Rotate one login's secret now (or wait for the rotation in progress); one line saying what happened. */
export async function rotateWithSecretsManager(l: AwsLogin, opts: AwsRotateOptions): Promise<string> {
  const started = performance.now();
  const sm = opts.client?.(l.region) ?? new SecretsManagerClient({ region: l.region });
  const secretId = loginSecretName(opts.environment, l.service, l.login);
  const where = `${l.service} ${l.login} (secret ${secretId})`;
  try {
    const before = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
    if (!before.RotationEnabled)
      throw new AwsRotateError(`${where}: Secrets Manager rotation is not enabled: apply the stack (db-platform up) first`);
    const from = await username(sm, secretId);
    const inProgress = Object.entries(before.VersionIdsToStages ?? {}).find(([, s]) => s.includes(PENDING) && !s.includes(CURRENT))?.[0];
    const version = inProgress ?? (await sm.send(new RotateSecretCommand({ SecretId: secretId, RotateImmediately: true }))).VersionId;
    if (!version) throw new AwsRotateError(`${where}: Secrets Manager started no rotation`);
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    for (;;) {
      const now = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
      if (now.VersionIdsToStages?.[version]?.includes(CURRENT)) break;
      if (Date.now() > deadline)
        throw new AwsRotateError(
          `${where}: version ${version} is not current after ${Math.round((opts.timeoutMs ?? 600_000) / 1000)} s; Secrets Manager retries the rotation function's steps (see its log group): run rotate again to wait for it, or have Secrets Manager attempt it again with aws secretsmanager rotate-secret --secret-id ${secretId}`,
        );
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 2000));
    }
    const to = await username(sm, secretId);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    return `${where}: rotated by Secrets Manager${inProgress ? " (the rotation in progress, waited for)" : ""} in ${seconds} s: its secret now names ${to} (version ${version}); ${from === to ? "the same slot" : from} keeps the previous credential until the next rotation`;
  } catch (e) {
    if (e instanceof AwsRotateError) throw e;
    throw new AwsRotateError(`${where}: ${(e as Error).message}`);
  } finally {
    if (!opts.client) sm.destroy();
  }
}

/**
 * After an `up` that changed where a place's rotated logins connect — a move's switch to its
 * target, or back — each login's secret is rotated now: the function's new version takes the
 * endpoint from the secret's tags (which that `up` set) and the password of a role on the server
 * that now serves (docs/rotation.md). Nothing for logins Secrets Manager does not rotate.
 */
export async function repointRotatedLogins(
  spec: Pick<Spec, "environment" | "servers">,
  place: ServiceSpec,
  opts: Omit<AwsRotateOptions, "environment"> = {},
): Promise<string[]> {
  const server = spec.servers.find((s) => s.name === place.server);
  if (server?.hosting !== "rds") return [];
  const out: string[] = [];
  for (const login of place.logins.filter((l) => l.rotatedBy === "secrets-manager"))
    out.push(
      `re-pointed: ${await rotateWithSecretsManager({ service: place.name, login: login.key, region: server.region }, { ...opts, environment: spec.environment })}`,
    );
  return out;
}

/** A login's endpoint as a URL names it. */
function endpointOfUrl(url: string): { host: string; port: number; dbname: string } | undefined {
  try {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port || 5432), dbname: decodeURIComponent(u.pathname.slice(1)) };
  } catch {
    return undefined;
  }
}

/**
 * After an `up`: each login Secrets Manager rotates whose secret's current value names another
 * endpoint than the stack's URL of it now — a pool turned on or off on its server, an endpoint
 * replaced — is rotated now, so its secret follows at once instead of at its next scheduled
 * rotation (the function's new version takes the endpoint the stack declares). The comparison
 * reads each secret, so an `up` run again after a kill finds the same difference and does it then.
 */
export async function repointChangedEndpoints(
  spec: Pick<Spec, "environment" | "servers" | "services">,
  urls: Readonly<Record<string, { readonly urls?: Readonly<Record<string, string>> }>>,
  opts: Omit<AwsRotateOptions, "environment"> = {},
): Promise<string[]> {
  const out: string[] = [];
  const clients = new Map<string, SecretsManagerClient>();
  try {
    for (const service of spec.services) {
      const place = servingPlace(service);
      const server = spec.servers.find((s) => s.name === place.server);
      if (server?.hosting !== "rds") continue;
      for (const login of place.logins.filter((l) => l.rotatedBy === "secrets-manager")) {
        const declared = endpointOfUrl(urls[service.name]?.urls?.[login.key] ?? "");
        if (!declared) continue;
        const sm = opts.client?.(server.region) ?? clients.get(server.region) ?? new SecretsManagerClient({ region: server.region });
        if (!opts.client) clients.set(server.region, sm);
        const secretId = loginSecretName(spec.environment, service.name, login.key);
        let now: { host?: string; port?: number | string; dbname?: string };
        try {
          const { SecretString } = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: CURRENT }));
          now = JSON.parse(SecretString ?? "{}") as typeof now;
        } catch (e) {
          throw new AwsRotateError(
            `${service.name} ${login.key} (secret ${secretId}): cannot read where it points: ${(e as Error).message}`,
          );
        }
        if (now.host === declared.host && Number(now.port) === declared.port && now.dbname === declared.dbname) continue;
        const rotated = await rotateWithSecretsManager(
          { service: service.name, login: login.key, region: server.region },
          { ...opts, environment: spec.environment },
        );
        out.push(
          `re-pointed from ${now.host}:${now.port}/${now.dbname} to ${declared.host}:${declared.port}/${declared.dbname}: ${rotated}`,
        );
      }
    }
  } finally {
    for (const c of clients.values()) c.destroy();
  }
  return out;
}
