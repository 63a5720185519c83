/**
 * `db-platform local start|stop|status`: the real PostgreSQL servers of a stack's `local`
 * servers, with the admin password read from the stack's secret config through the Pulumi
 * engine (decrypted in memory only).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { version as SDK_VERSION } from "@pulumi/pulumi/package.json";
import { SemVer } from "semver";
import type { LocalServerSpec, Spec } from "../../components/spec";
import { disableArchiving, LocalArchive } from "../archive/archive";
import { archiveStatusLine, baseBackupWhenDue } from "../archive/status";
import { announceFirstRun } from "./firstRun";
import { localPoolers } from "./pools";
import { LocalPostgres } from "./postgres";
import { LocalS3 } from "./s3";

/** The passphrase of the dev stack's secrets, documented in the README; other stacks need PULUMI_CONFIG_PASSPHRASE. */
export const DEV_PASSPHRASE = "db-platform-dev";

export class LocalCommandError extends Error {}

/** The bootstrapped engine of each project, once per process (the bootstrap itself spawns Node). */
const engines = new Map<string, string>();
const commands = new Map<string, Promise<PulumiCommand>>();

/**
 * Put the Pulumi CLI on PATH: an accepted installed one, else one built here once
 * (scripts/engine/bootstrap.sh, which says on stderr what it does and how long it takes).
 */
export function ensureEngine(projectDir: string): string {
  let bin = engines.get(projectDir);
  if (!bin) {
    const script = path.join(projectDir, "scripts/engine/bootstrap.sh");
    const r = spawnSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new LocalCommandError(`no Pulumi CLI to run (${r.error?.message ?? "the engine: line above says why"})`);
    bin = r.stdout.trim();
    engines.set(projectDir, bin);
  }
  if (!process.env.PATH?.split(":").includes(bin)) process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;
  return bin;
}

/**
 * The CLI as the Automation API's command for every workspace of this process: the API runs
 * `pulumi version` for each command it makes (about 0.2 s), so it makes one. The SDK's own
 * version is the minimum it checks against (the bootstrap checks the same before choosing).
 */
export function pulumiCommand(projectDir: string): Promise<PulumiCommand> {
  const bin = ensureEngine(projectDir);
  let command = commands.get(bin);
  if (!command) {
    command = PulumiCommand.get({ root: path.dirname(bin), version: new SemVer(SDK_VERSION) });
    commands.set(bin, command);
    command.catch(() => commands.delete(bin));
  }
  return command;
}

/**
 * Engine settings for a stack of this project. The state lives in DB_PLATFORM_BACKEND_URL when
 * set (a team's shared backend, e.g. `s3://bucket?region=…`; docs/engine.md), else in the local
 * file backend under .db-platform/state — never in whatever backend the user's own Pulumi CLI is
 * logged in to.
 */
export function engineEnv(projectDir: string, stack: string): Record<string, string> {
  let backend = process.env.DB_PLATFORM_BACKEND_URL;
  if (!backend) {
    const state = path.join(projectDir, ".db-platform", "state");
    fs.mkdirSync(state, { recursive: true });
    backend = `file://${state}`;
  }
  const passphrase = process.env.PULUMI_CONFIG_PASSPHRASE ?? (stack === "dev" ? DEV_PASSPHRASE : undefined);
  if (passphrase === undefined) throw new LocalCommandError(`stack ${stack}: set PULUMI_CONFIG_PASSPHRASE to read its secrets`);
  return {
    PULUMI_BACKEND_URL: backend,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    PULUMI_SKIP_UPDATE_CHECK: "true",
  };
}

/** The project's workspace in the engine, with `stack` created in the local state when it is new. */
export async function stackWorkspace(projectDir: string, stack: string): Promise<LocalWorkspace> {
  const ws = await workspace(projectDir, stack);
  if (!(await ws.listStacks()).some((s) => s.name === stack)) await ws.createStack(stack);
  return ws;
}

function workspace(projectDir: string, stack: string): Promise<LocalWorkspace> {
  return pulumiCommand(projectDir).then((command) =>
    LocalWorkspace.create({ workDir: projectDir, envVars: engineEnv(projectDir, stack), pulumiCommand: command }),
  );
}

/** The decrypted `db-platform:adminPasswords` of a stack (the stack is created in the backend first if it is not there yet). */
export async function adminPasswords(projectDir: string, stack: string): Promise<Record<string, string>> {
  const read = async (ws: LocalWorkspace) =>
    JSON.parse((await ws.getConfig(stack, "db-platform:adminPasswords")).value) as Record<string, string>;
  try {
    // The stack usually exists: one `pulumi config get`, without listing the backend's stacks first.
    return await read(await workspace(projectDir, stack));
  } catch {
    return read(await stackWorkspace(projectDir, stack));
  }
}

export function localServers(spec: Spec): LocalServerSpec[] {
  return spec.servers.filter((s): s is LocalServerSpec => s.hosting === "local");
}

export function localRoot(projectDir: string, stack: string): string {
  return path.join(projectDir, ".db-platform", "local", stack);
}

/** The stack's local S3-compatible server (backups.storage local), data in `.db-platform/local/<stack>/s3/`. */
export function stackS3(spec: Spec, stack: string, projectDir: string): LocalS3 {
  return new LocalS3({ dir: path.join(localRoot(projectDir, stack), "s3"), port: spec.backups?.port ?? 9400, projectDir });
}

/** The LocalPostgres of a stack's local server, and of each of its standbys. */
export function localInstances(
  s: LocalServerSpec,
  stack: string,
  projectDir: string,
  adminPassword: string,
): { primary: LocalPostgres; standbys: LocalPostgres[] } {
  const common = {
    version: s.version,
    host: s.host,
    adminUser: s.adminUser,
    adminPassword,
    root: localRoot(projectDir, stack),
    projectDir,
  };
  const primary = new LocalPostgres({ ...common, name: s.name, port: s.port });
  const standbys = s.replicas.map((r) => new LocalPostgres({ ...common, name: r.name, port: r.port, standbyOf: primary }));
  return { primary, standbys };
}

/** The continuous archive of a stack's local server (backups.archive; docs/point-in-time.md), when it has one. */
export function localArchive(spec: Spec, primary: LocalPostgres, stack: string, projectDir: string): LocalArchive | undefined {
  const b = spec.backups;
  if (b?.storage !== "local" || !b.archive) return undefined;
  return new LocalArchive({
    server: primary,
    s3: stackS3(spec, stack, projectDir),
    bucket: b.bucket as string,
    environment: spec.environment,
    spec: b.archive,
    projectDir,
  });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export async function localCommand(
  action: "start" | "stop" | "status",
  spec: Spec,
  stack: string,
  projectDir: string,
  out: (s: string) => void,
): Promise<boolean> {
  const servers = localServers(spec);
  if (servers.length === 0) throw new LocalCommandError(`stack ${stack} declares no server with hosting local`);
  if (action === "start") announceFirstRun(spec, projectDir, out);
  const passwords = action === "start" ? await adminPasswords(projectDir, stack) : {};
  let allRunning = true;
  // The S3 server first: the servers archive into it from their first WAL segment on.
  if (action === "start" && spec.backups?.storage === "local") {
    const s3 = stackS3(spec, stack, projectDir);
    await s3.start([spec.backups.bucket as string]);
    if (spec.backups.archive) await s3.expireOldVersions(spec.backups.bucket as string, `${spec.environment}/_archive/`, 1);
  }
  for (const s of servers) {
    const { primary, standbys } = localInstances(s, stack, projectDir, passwords[s.name] ?? "");
    const data = (p: LocalPostgres) => path.relative(projectDir, p.dataDir);
    const poolers = localPoolers(s, localRoot(projectDir, stack), projectDir);
    const archive = localArchive(spec, primary, stack, projectDir);
    if (action === "start") {
      if (!archive && spec.backups?.storage === "local" && disableArchiving(primary) && (await primary.isRunning())) {
        out(`${s.name}: archiving turned off (backups.archive.enabled: false); it stops at the server's next restart\n`);
        await primary.reload();
      }
      if (archive) {
        primary.beforeStart = async () => void (await archive.configure());
        // Running already: archive_command and archive_timeout take a reload, archive_mode a restart (the status says).
        if ((await primary.isRunning()) && (await archive.configure())) await primary.reload();
      }
      await primary.start();
      for (const standby of standbys) await standby.start();
      for (const pooler of poolers.values()) await pooler.start();
    }
    if (action === "stop") {
      for (const pooler of poolers.values()) await pooler.stop();
      for (const standby of standbys) await standby.stop();
      await primary.stop();
    }
    const running = await primary.isRunning();
    allRunning &&= running;
    // The major that wrote the data, which is what runs (a stack file edit does not change it).
    const onDisk = primary.dataVersion() ?? s.version;
    const says = onDisk === s.version ? "" : `, the stack says ${s.version}`;
    out(`${s.name}: PostgreSQL ${onDisk} ${running ? "running" : "stopped"} on ${s.host}:${s.port} (data ${data(primary)}${says})\n`);
    for (const standby of standbys) {
      const up = await standby.isRunning();
      allRunning &&= up;
      const replication = up && running ? await standby.replicationStatus() : undefined;
      const lag = replication
        ? `, ${replication.state}, lag ${formatBytes(replication.lagBytes)}${replication.replayLagMs === null ? "" : ` (replay ${replication.replayLagMs.toFixed(1)} ms)`}`
        : up
          ? ", not connected to its primary"
          : "";
      out(
        `${standby.opts.name}: standby of ${s.name} ${up ? "running" : "stopped"} on ${s.host}:${standby.opts.port}${lag} (data ${data(standby)})\n`,
      );
    }
    if (archive && running) out(await archiveStatusLine(archive));
    for (const [instance, pooler] of poolers) {
      const up = await pooler.isRunning();
      allRunning &&= up;
      out(`${instance}: pooler (PgBouncer) ${up ? "running" : "stopped"} on 127.0.0.1:${pooler.opts.port}\n`);
    }
    // After the status lines (the server's comes first): a first start's base backup.
    if (action === "start" && archive) await baseBackupWhenDue(archive, out);
  }
  if (spec.backups?.storage === "local") {
    const s3 = stackS3(spec, stack, projectDir);
    const bucket = spec.backups.bucket as string;
    if (action === "stop") await s3.stop();
    const up = await s3.isRunning();
    allRunning &&= up;
    out(
      `backups: S3 (MinIO) ${up ? "running" : "stopped"} on ${s3.endpoint}, bucket ${bucket} (data ${path.relative(projectDir, s3.dataDir)})\n`,
    );
  }
  return action === "stop" || allRunning;
}
