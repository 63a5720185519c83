/**
 * The scheduled backup task: what the backup runner's container runs (`bin/backup-task.js`, the
 * image's entrypoint) and what `db-platform backup run` runs on a terminal. The task is told its
 * stack and server by environment (`DB_PLATFORM_STACK`, `DB_PLATFORM_SERVER`, set by the task
 * definition in components/backups/runner.ts), prints the same JSON summary as `backup run --json`
 * and exits the same way: 0 every service backed up, 1 a backup (or publishing its metrics)
 * failed or the stack file has problems, 2 the task could not run. It imports nothing of `cli/`.
 */
import * as path from "node:path";
import { formatProblem, validateConfig } from "../../components/spec";
import { ConfigFileError, findProjectDir, readConfigFile, stackConfigPath } from "../stack/stackConfig";
import { type BackupContext, BackupCommandError, backupRun, type RunOutcome } from "./command";
import { publishMetrics } from "../cloudwatch";
import { backupMetricData } from "./metrics";
import { ArchiveError } from "../archive/barman";
import { BackupError } from "./runner";
import { BackupStorageError } from "./storage";

/** A stack file read and validated for the backup commands, or its problems (each naming its config path). */
export function loadBackupContext(
  file: string,
  stack: string,
  urls: Readonly<Record<string, string>> = {},
): { ok: true; context: BackupContext } | { ok: false; problems: string[] } {
  const input = readConfigFile(file);
  const result = validateConfig(input);
  if (!result.ok) return { ok: false, problems: result.problems.map(formatProblem) };
  return {
    ok: true,
    context: { spec: result.spec, stack, projectDir: findProjectDir(path.dirname(file)), awsRegion: input.awsRegion, urls },
  };
}

export interface PublishedRun {
  readonly results: RunOutcome[];
  /** Why publishing the CloudWatch metrics failed (the alarms watch them, so the run counts as failed). */
  readonly metricsError?: string;
}

/**
 * Back up the selected services, then, when `DB_PLATFORM_METRICS_NAMESPACE` is set (as in the ECS
 * task), publish each outcome to CloudWatch.
 */
export async function backupRunPublished(
  ctx: BackupContext,
  filter: { service?: string; server?: string },
  progress?: (service: string, bytes: number) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PublishedRun> {
  const results = await backupRun(ctx, filter, progress);
  const namespace = env.DB_PLATFORM_METRICS_NAMESPACE;
  if (!namespace) return { results };
  try {
    await publishMetrics(namespace, backupMetricData(results, ctx.spec.environment), env.AWS_REGION ?? ctx.awsRegion);
    return { results };
  } catch (e) {
    return { results, metricsError: `publishing metrics to CloudWatch ${namespace} failed: ${(e as Error).message}` };
  }
}

/** Exit code of a run: 1 when a service failed or its metrics were not published. */
export const runExitCode = (run: PublishedRun): number => (run.metricsError || run.results.some((r) => !r.ok) ? 1 : 0);

/** Known failures of the backup operations: 1 when a backup failed, 2 when it could not run; undefined for anything else (a bug). */
export function backupFailureCode(e: unknown): 1 | 2 | undefined {
  if (e instanceof BackupError || e instanceof ArchiveError) return 1;
  if (e instanceof BackupCommandError || e instanceof BackupStorageError) return 2;
  return undefined;
}

/** The container's entry: one server's services of one stack, as the task definition's environment says. */
export async function backupTask(
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
  err: (s: string) => void,
  projectDir: string = findProjectDir(),
): Promise<number> {
  const stack = env.DB_PLATFORM_STACK;
  const server = env.DB_PLATFORM_SERVER;
  const missing = [!stack && "DB_PLATFORM_STACK", !server && "DB_PLATFORM_SERVER"].filter(Boolean);
  if (missing.length > 0) {
    err(`db-platform backup task: ${missing.join(" and ")} not set (the task definition sets them: stack name, server name)\n`);
    return 2;
  }
  try {
    const loaded = loadBackupContext(stackConfigPath(stack as string, projectDir), stack as string);
    if (!loaded.ok) {
      for (const p of loaded.problems) err(`${p}\n`);
      return 1;
    }
    const run = await backupRunPublished({ ...loaded.context, env }, { server }, undefined, env);
    out(`${JSON.stringify(run.results, null, 2)}\n`);
    if (run.metricsError) err(`db-platform backup: ${run.metricsError}\n`);
    for (const r of run.results.filter((x) => !x.ok)) err(`db-platform backup: ${r.error}\n`);
    return runExitCode(run);
  } catch (e) {
    const code = e instanceof ConfigFileError ? 2 : backupFailureCode(e);
    if (code === undefined) throw e;
    err(`db-platform backup: ${(e as Error).message}\n`);
    return code;
  }
}
