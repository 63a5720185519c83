/**
 * A local stack of its own for an engine test: `Pulumi.<stack>.yaml` with one `local` server on a
 * free port and the given services, its admin password set as a secret, and the LocalPostgres
 * that `db-platform up` starts for it (for SQL behind the platform's back). `cleanup` destroys
 * the stack through the CLI and removes the server, the state and the file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { loadSpec } from "../../components/spec";
import { DEV_PASSPHRASE, localInstances, localRoot, localServers, stackS3 } from "../../operations/local/local";
import { localPoolers } from "../../operations/local/pools";
import type { LocalPostgres } from "../../operations/local/postgres";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { FIXTURE_ADMIN_PASSWORD, removeStack, setStackSecret } from "./appliedDevStack";
import { runCli } from "./cli";
import { freePort } from "./ports";
import { ROOT } from "./synth";

export interface LocalStack {
  readonly file: string;
  /** The first server (`local`). */
  readonly server: LocalPostgres;
  /** Every server by name. */
  readonly servers: Readonly<Record<string, LocalPostgres>>;
  /** The environment the CLI needs for the stack's secrets. */
  readonly env: Record<string, string>;
  cleanup(): Promise<void>;
}

export interface LocalStackOptions {
  /** `db-platform:environment`. @default "dev" */
  readonly environment?: string;
  /** Backups to a local S3 server of the stack's own, on a free port. */
  readonly backups?: boolean;
  /** The local servers' names, each on a free port. @default ["local"] */
  readonly servers?: readonly string[];
  /** The servers' PostgreSQL major. @default "16" */
  readonly version?: string;
  /** A streaming standby `<server>-ro` of the first server, on a free port. */
  readonly standby?: boolean;
}

export async function localStack(stack: string, services: Record<string, unknown>, options: LocalStackOptions = {}): Promise<LocalStack> {
  process.env.PULUMI_CONFIG_PASSPHRASE ??= DEV_PASSPHRASE;
  const env = { PULUMI_CONFIG_PASSPHRASE: DEV_PASSPHRASE };
  const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
  const names = options.servers ?? ["local"];
  const servers: Record<string, unknown> = {};
  for (const name of names)
    servers[name] = { hosting: "local", version: options.version ?? "16", host: "127.0.0.1", port: await freePort() };
  if (options.standby) (servers[names[0]] as Record<string, unknown>).replicas = [{ name: `${names[0]}-ro`, port: await freePort() }];
  fs.writeFileSync(
    file,
    stringify(
      {
        config: {
          "db-platform:environment": options.environment ?? "dev",
          "db-platform:servers": servers,
          "db-platform:services": services,
          ...(options.backups && { "db-platform:backups": { storage: "local", port: await freePort() } }),
        },
      },
      // Services given the same object stay separate entries, not a YAML anchor and its aliases.
      { aliasDuplicateObjects: false },
    ),
  );
  for (const name of names) await setStackSecret(stack, `db-platform:adminPasswords.${name}`, FIXTURE_ADMIN_PASSWORD);
  // The same LocalPostgres `db-platform up` starts for the stack.
  const spec = loadSpec(readConfigFile(file));
  const byName = Object.fromEntries(
    localServers(spec).map((s) => [s.name, localInstances(s, stack, ROOT, FIXTURE_ADMIN_PASSWORD).primary] as const),
  );
  const server = byName[names[0]];
  return {
    file,
    server,
    servers: byName,
    env,
    async cleanup() {
      runCli(["destroy", "--yes", "--stack", stack], env);
      for (const s of localServers(loadSpec(readConfigFile(file)))) {
        const { primary, standbys } = localInstances(s, stack, ROOT, FIXTURE_ADMIN_PASSWORD);
        for (const pooler of localPoolers(s, localRoot(ROOT, stack), ROOT).values()) await pooler.stop();
        for (const standby of standbys) await standby.destroy().catch(() => undefined);
        await primary.destroy().catch(() => undefined);
      }
      if (options.backups) await stackS3(spec, stack, ROOT).destroy();
      await removeStack(stack);
      fs.rmSync(localRoot(ROOT, stack), { recursive: true, force: true });
      fs.rmSync(file, { force: true });
    },
  };
}
