/**
 * The scratch server of a point-in-time restore on AWS (docs/point-in-time.md "On RDS"): RDS's
 * own point-in-time restore of the service's instance to the moment, into the instance's private
 * subnets and security groups — not publicly accessible, single-AZ, no automated backups or
 * deletion protection of its own, tagged as db-platform's scratch — with a master password RDS
 * manages in a new secret; deleted afterwards with no final snapshot. The moment is checked first
 * against the instance's restore window (its automated backups' earliest restorable time, its
 * latest restorable time), so a refused moment creates nothing. A journal (`rds.<server>.json`
 * in the work folder) names the scratch instance: a killed run's is reused by a run to the same
 * moment, and deleted by any other.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  type DBInstance,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
  type RestoreDBInstanceToPointInTimeCommandInput,
} from "@aws-sdk/client-rds";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { Client, escapeIdentifier } from "pg";
import type { RdsServerSpec } from "../../components/spec";
import { awsServerName } from "../../components/spec/naming";
import { type Connection, pgConfig } from "../backup/runner";
import { ArchiveError } from "./barman";

export interface RdsScratchOptions {
  /** Tests: clients of their own (a local AWS API emulator's). */
  readonly rds?: (region: string) => RDSClient;
  readonly secrets?: (region: string) => SecretsManagerClient;
  /**
   * Tests: where the scratch instance is reached. An emulator's instance runs no PostgreSQL, so
   * a test points its endpoint at a local server and gives that server the master login the
   * emulator's secret names.
   */
  readonly reach?: (
    endpoint: { host: string; port: number },
    master: { username: string; password: string },
  ) => Promise<{ host: string; port: number }>;
  /** @default 30 000 */
  readonly pollMs?: number;
  /** @default 7 200 000 (RDS restores a large instance in tens of minutes) */
  readonly timeoutMs?: number;
  readonly now?: () => Date;
}

/** A server recovered to a moment, reached by an admin that can read what each service's read-only role reads. */
export interface RdsScratch {
  readonly identifier: string;
  readonly connection: Connection;
  /** The restore window the moment was checked against. */
  readonly window: { readonly earliest: string; readonly latest: string };
  /** Seconds from the request until the instance answered. */
  readonly seconds: number;
  /** Before a service is dumped as its read-only role: the master is given that role, on the scratch instance only. */
  prepare(readonlyRole: string, database: string): Promise<void>;
  /** Delete the instance (no final snapshot, its automated backups with it) and the journal. */
  destroy(): Promise<void>;
}

interface Journal {
  readonly identifier: string;
  readonly toTime: string;
}

/** The scratch instance failed to start: it is deleted, and nothing else was changed. */
class ScratchFailed extends ArchiveError {}

const journalFile = (dir: string, server: string) => path.join(dir, `rds.${server}.json`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An AWS API's refusal (access denied, throttling, no network) as the command's failure, saying what it was doing. */
function awsFailure(e: unknown, doing: string): Error {
  if (e instanceof ArchiveError) return e;
  const name = (e as { name?: string }).name;
  return new ArchiveError(`${doing}: ${name && name !== "Error" ? `${name}: ` : ""}${(e as Error).message}`);
}

/** `<source>-pitr-<yyyymmddhhmmss>`: an RDS identifier (63 characters at most, no trailing or double hyphen). */
export function scratchIdentifier(source: string, at: Date): string {
  const suffix = `-pitr-${at.toISOString().replace(/[-:T]/g, "").slice(0, 14)}`;
  return `${source
    .slice(0, 63 - suffix.length)
    .replace(/-+/g, "-")
    .replace(/-$/, "")}${suffix}`;
}

async function describe(rds: RDSClient, identifier: string): Promise<DBInstance | undefined> {
  try {
    return (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }))).DBInstances?.[0];
  } catch (e) {
    if ((e as { name?: string }).name === "DBInstanceNotFoundFault") return undefined;
    throw e;
  }
}

/** The instance's restore window: from its automated backups' earliest restorable time to its latest restorable time. */
export async function restoreWindow(
  rds: RDSClient,
  source: string,
  server: RdsServerSpec,
  now: Date,
): Promise<{ instance: DBInstance; earliest: Date; latest: Date }> {
  const instance = await describe(rds, source);
  if (!instance) {
    throw new ArchiveError(
      `server ${server.name}: RDS instance ${source} is not in ${server.region}: is the stack applied (db-platform up)?`,
    );
  }
  if (!instance.BackupRetentionPeriod) {
    throw new ArchiveError(
      `server ${server.name}: RDS instance ${source} keeps no automated backups (retention 0 days), so RDS has no point-in-time recovery of it: set servers.${server.name}.backupRetentionDays`,
    );
  }
  if (!instance.LatestRestorableTime) {
    throw new ArchiveError(
      `server ${server.name}: RDS reports no restorable time of ${source} yet: its first automated backup is not done`,
    );
  }
  const { DBInstanceAutomatedBackups: backups = [] } = await rds.send(
    new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: source }),
  );
  const active = backups.find((b) => b.DBInstanceIdentifier === source && b.Status === "active");
  // Without a reported window: nothing before the instance existed, nor past the retention.
  const retained = new Date(now.getTime() - instance.BackupRetentionPeriod * 86_400_000);
  const created = instance.InstanceCreateTime ?? retained;
  const earliest = active?.RestoreWindow?.EarliestTime ?? (created > retained ? created : retained);
  return { instance, earliest, latest: instance.LatestRestorableTime };
}

/** Refuse a moment outside the window, before anything is created. */
export function checkInWindow(at: Date, window: { earliest: Date; latest: Date }, source: string): void {
  if (at < window.earliest) {
    throw new ArchiveError(
      `${at.toISOString()} is before the earliest restorable time of RDS instance ${source} (${window.earliest.toISOString()}): its automated backups recover moments from then on`,
    );
  }
  if (at > window.latest) {
    throw new ArchiveError(
      `${at.toISOString()} is after the latest restorable time of RDS instance ${source} (${window.latest.toISOString()}): RDS uploads its transaction logs every five minutes; wait until that time is past the moment`,
    );
  }
}

/** What the restore asks of RDS: the source's network, groups and class; nothing reachable from outside. */
export function restoreInput(
  instance: DBInstance,
  identifier: string,
  at: Date,
  tags: Readonly<Record<string, string>>,
): RestoreDBInstanceToPointInTimeCommandInput {
  return {
    SourceDBInstanceIdentifier: instance.DBInstanceIdentifier,
    TargetDBInstanceIdentifier: identifier,
    RestoreTime: at,
    DBInstanceClass: instance.DBInstanceClass,
    DBSubnetGroupName: instance.DBSubnetGroup?.DBSubnetGroupName,
    VpcSecurityGroupIds: (instance.VpcSecurityGroups ?? []).flatMap((g) => (g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [])),
    DBParameterGroupName: instance.DBParameterGroups?.[0]?.DBParameterGroupName,
    PubliclyAccessible: false,
    MultiAZ: false,
    DeletionProtection: false,
    BackupRetentionPeriod: 0,
    AutoMinorVersionUpgrade: false,
    CopyTagsToSnapshot: false,
    ManageMasterUserPassword: true,
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

async function waitAvailable(rds: RDSClient, identifier: string, opts: RdsScratchOptions): Promise<DBInstance> {
  const timeoutMs = opts.timeoutMs ?? 7_200_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await describe(rds, identifier);
    if (!now) throw new ArchiveError(`scratch RDS instance ${identifier} is gone while it was restored`);
    if (now.DBInstanceStatus === "available" && now.Endpoint?.Address) return now;
    if (["failed", "incompatible-restore", "incompatible-parameters", "incompatible-network"].includes(now.DBInstanceStatus ?? "")) {
      throw new ScratchFailed(
        `scratch RDS instance ${identifier} cannot start: status ${now.DBInstanceStatus} (its events in the RDS console say why); it is deleted, nothing was restored`,
      );
    }
    if (Date.now() > deadline) {
      throw new ArchiveError(
        `scratch RDS instance ${identifier} is not available after ${Math.round(timeoutMs / 1000)} s (status ${now.DBInstanceStatus}): run the same restore again to go on waiting`,
      );
    }
    await sleep(opts.pollMs ?? 30_000);
  }
}

/** The master login of the scratch instance, from the secret RDS made for it. */
async function masterLogin(
  sm: SecretsManagerClient,
  instance: DBInstance,
  opts: RdsScratchOptions,
): Promise<{ username: string; password: string }> {
  const arn = instance.MasterUserSecret?.SecretArn;
  if (!arn) throw new ArchiveError(`scratch RDS instance ${instance.DBInstanceIdentifier} has no managed master secret`);
  const deadline = Date.now() + (opts.timeoutMs ?? 7_200_000);
  for (;;) {
    try {
      const { SecretString } = await sm.send(new GetSecretValueCommand({ SecretId: arn }));
      const s = JSON.parse(SecretString ?? "{}") as { username?: string; password?: string };
      if (s.username && s.password) return { username: s.username, password: s.password };
    } catch (e) {
      if ((e as { name?: string }).name !== "ResourceNotFoundException" || Date.now() > deadline) throw e;
    }
    await sleep(opts.pollMs ?? 30_000);
  }
}

async function deleteInstance(rds: RDSClient, identifier: string): Promise<void> {
  const del = () =>
    rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: identifier, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }));
  try {
    await del();
  } catch (e) {
    const name = (e as { name?: string }).name;
    if (name === "DBInstanceNotFoundFault") return;
    // Protection turned on after the restore (an account rule that enforces it, say): the instance is the run's own.
    if (name !== "InvalidParameterCombination" || !/deletion protection/i.test((e as Error).message)) throw e;
    await rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: identifier, DeletionProtection: false, ApplyImmediately: true }));
    await del();
  }
}

/** A killed run's scratch instance: the same moment's is reused; any other is deleted. */
async function settleJournal(rds: RDSClient, dir: string, server: string, identifier: string): Promise<void> {
  let previous: Journal | undefined;
  try {
    previous = JSON.parse(fs.readFileSync(journalFile(dir, server), "utf8")) as Journal;
  } catch {
    return;
  }
  if (previous.identifier !== identifier) await deleteInstance(rds, previous.identifier);
  fs.rmSync(journalFile(dir, server), { force: true });
}

/**
 * Restore the server's RDS instance to `at` into a scratch instance and log in to it as its
 * master. `dir` holds the journal; `tags` mark the instance (stack, service).
 */
export async function rdsScratchAt(
  environment: string,
  server: RdsServerSpec,
  at: Date,
  dir: string,
  tags: Readonly<Record<string, string>>,
  opts: RdsScratchOptions = {},
): Promise<RdsScratch> {
  const started = performance.now();
  const rds = opts.rds?.(server.region) ?? new RDSClient({ region: server.region });
  const sm = opts.secrets?.(server.region) ?? new SecretsManagerClient({ region: server.region });
  const source = awsServerName(environment, server.name);
  const identifier = scratchIdentifier(source, at);
  const close = () => {
    if (!opts.rds) rds.destroy();
    if (!opts.secrets) sm.destroy();
  };
  try {
    const { instance, earliest, latest } = await restoreWindow(rds, source, server, opts.now?.() ?? new Date());
    checkInWindow(at, { earliest, latest }, source);
    await settleJournal(rds, dir, server.name, identifier);
    fs.writeFileSync(journalFile(dir, server.name), `${JSON.stringify({ identifier, toTime: at.toISOString() } satisfies Journal)}\n`, {
      mode: 0o600,
    });
    if (!(await describe(rds, identifier))) {
      await rds.send(
        new RestoreDBInstanceToPointInTimeCommand(
          restoreInput(instance, identifier, at, { "db-platform:scratch": "point-in-time", ...tags }),
        ),
      );
    }
    const ready = await waitAvailable(rds, identifier, opts);
    const master = await masterLogin(sm, ready, opts);
    const endpoint = { host: ready.Endpoint?.Address as string, port: ready.Endpoint?.Port ?? 5432 };
    const reached = opts.reach ? await opts.reach(endpoint, master) : endpoint;
    const connection: Connection = { ...reached, user: master.username, password: master.password, sslMode: server.sslMode };
    const destroy = async () => {
      try {
        await deleteInstance(rds, identifier);
        fs.rmSync(journalFile(dir, server.name), { force: true });
      } catch (e) {
        throw awsFailure(e, `deleting scratch RDS instance ${identifier} (delete it by hand: it is tagged db-platform:scratch)`);
      } finally {
        close();
      }
    };
    return {
      identifier,
      connection,
      window: { earliest: earliest.toISOString(), latest: latest.toISOString() },
      seconds: (performance.now() - started) / 1000,
      prepare: async (readonlyRole, database) => {
        const c = new Client(pgConfig(connection, database));
        await c.connect();
        try {
          await c.query(`GRANT ${escapeIdentifier(readonlyRole)} TO CURRENT_USER`);
        } finally {
          await c.end();
        }
      },
      destroy,
    };
  } catch (e) {
    if (e instanceof ScratchFailed) {
      await deleteInstance(rds, identifier).catch(() => undefined);
      fs.rmSync(journalFile(dir, server.name), { force: true });
    }
    close();
    throw awsFailure(e, `the point-in-time restore of RDS instance ${source}`);
  }
}
