/**
 * The `backup` command group. Exit codes: 0 success; 1 a backup, restore or drill failed (each
 * failure named on stderr); 2 the command could not run (bad arguments, no backups configured,
 * storage unreachable, no such backup).
 */
import Table from "cli-table3";
import type { Command } from "commander";
import { formatBytes } from "../operations/local/local";
import {
  type BackupContext,
  BackupCommandError,
  backupDrill,
  backupList,
  backupRestore,
  type DrillOutcome,
  parseNamedUrls,
  type RunOutcome,
} from "../operations/backup/command";
import { backupFailureCode, backupRunPublished, loadBackupContext, runExitCode } from "../operations/backup/task";
import { drillToTime, type PointInTimeDrill } from "../operations/archive/pointInTime";
import { baseBackupWhenDue } from "../operations/archive/status";
import { archivedServers } from "../operations/archive/servers";
import { type Output, resolveStack, type StackOptions, stackOptions } from "./common";

export const collect = (v: string, all: string[]) => [...all, v];

/** Progress on stderr for long runs: a line every 10 s (every 1 s, rewritten in place, on a terminal). */
export function progressReporter(err: (s: string) => void, seconds?: number): (service: string, bytes: number) => void {
  const tty = process.stderr.isTTY === true;
  const every = (seconds ?? (tty ? 1 : 10)) * 1000;
  const started = new Map<string, number>();
  let last = 0;
  return (service, bytes) => {
    const now = Date.now();
    if (!started.has(service)) {
      started.set(service, now);
      last = now;
      return;
    }
    if (now - last < every) return;
    last = now;
    const rate = bytes / Math.max(0.001, (now - (started.get(service) ?? now)) / 1000);
    err(`${tty ? "\r" : ""}${service}: ${formatBytes(bytes)} uploaded (${formatBytes(Math.round(rate))}/s)${tty ? "\u001b[K" : "\n"}`);
  };
}

/** The stack's spec and context for the backup-based commands, or undefined after printing its problems (exit 1). */
export function backupContext(
  opts: StackOptions & { url?: string[]; region?: string },
  out: (s: string) => void,
): BackupContext | undefined {
  const { file, stack } = resolveStack(opts);
  const loaded = loadBackupContext(file, stack, parseNamedUrls("--url", opts.url ?? []));
  if (loaded.ok) return opts.region === undefined ? loaded.context : { ...loaded.context, readRegion: opts.region };
  for (const p of loaded.problems) out(`${p}\n`);
  process.exitCode = 1;
  return undefined;
}

/** Known failures end with their message on stderr: exit 1 when the operation failed, 2 when it could not run; anything else is a bug and throws. */
export const guardedBy =
  (err: (s: string) => void, prefix: string) =>
  <T extends unknown[]>(f: (...a: T) => Promise<void>) =>
  async (...a: T) => {
    try {
      await f(...a);
    } catch (e) {
      const code = backupFailureCode(e);
      if (code === undefined) throw e;
      err(`${prefix}: ${(e as Error).message}\n`);
      process.exitCode = code;
    }
  };

/** The `backup` group (returned: `backup base` joins it from restore.ts). */
export function backupCommands(program: Command, { out, err }: Output): Command {
  const group = program.command("backup").description("logical per-service backups to S3: run, list, restore, drill (docs/backups.md)");

  const context = (opts: StackOptions & { url?: string[]; region?: string }) => backupContext(opts, out);
  const guarded = guardedBy(err, "db-platform backup");

  stackOptions(
    group.command("run").description("dump each service (or one) with its read-only login, stream it to S3, write its manifest last"),
  )
    .option("--service <name>", "only this service")
    .option("--server <name>", "only the services on this server (what each scheduled ECS task runs)")
    .option("--url <service=url>", "the service's read-only login URL (repeatable; required for servers that are not local)", collect, [])
    .option("--progress <seconds>", "seconds between progress lines on stderr (default 10; 1 on a terminal)", (v: string) => {
      const n = Number(v);
      if (!(n > 0)) throw new BackupCommandError(`--progress ${v}: expected a positive number of seconds`);
      return n;
    })
    .option("--json", "print a JSON summary")
    .action(
      guarded(async (opts: StackOptions & { service?: string; server?: string; url: string[]; progress?: number; json?: boolean }) => {
        const ctx = context(opts);
        if (!ctx) return;
        const run = await backupRunPublished(ctx, { service: opts.service, server: opts.server }, progressReporter(err, opts.progress));
        if (run.metricsError) err(`db-platform backup: ${run.metricsError}\n`);
        if (opts.json) out(`${JSON.stringify(run.results, null, 2)}\n`);
        else for (const r of run.results) out(runLine(r));
        for (const r of run.results.filter((x) => !x.ok)) err(`db-platform backup: ${r.error}\n`);
        if (runExitCode(run) !== 0) process.exitCode = 1;
        // The scheduled run also keeps each archived local server's base backups current.
        if (!opts.service) for (const archive of archivedServers(ctx, opts.server)) await baseBackupWhenDue(archive, err);
      }),
    );

  stackOptions(group.command("list").description("committed backups (those with a manifest), oldest first"))
    .option("--service <name>", "only this service")
    .option("--region <region>", "read the backups from the bucket's replica in this region alone (backups.replicaRegion; docs/backups.md)")
    .option("--json", "print the manifests")
    .action(
      guarded(async (opts: StackOptions & { service?: string; region?: string; json?: boolean }) => {
        const ctx = context(opts);
        if (!ctx) return;
        const manifests = await backupList(ctx, opts.service);
        if (opts.json) {
          out(`${JSON.stringify(manifests, null, 2)}\n`);
          return;
        }
        const t = new Table({
          head: ["service", "backup", "finished", "size", "tables", "rows", "dumped as"],
          style: { head: [], border: [] },
        });
        for (const m of manifests) {
          t.push([
            m.service,
            m.id,
            m.finishedAt,
            formatBytes(m.dump.bytes),
            String(m.tables.length),
            String(m.tables.reduce((n, x) => n + x.rows, 0)),
            m.dumpedAs,
          ]);
        }
        out(`${t.toString()}\n${manifests.length} backup(s)\n`);
      }),
    );

  stackOptions(
    group
      .command("restore")
      .description(
        "restore one service's backup into a new or empty database, checked against its manifest (sha256, row counts, schema hash)",
      ),
  )
    .requiredOption("--service <name>", "the service")
    .option("--backup <id>", "a backup id from `backup list`")
    .option("--latest", "the latest backup (the default)")
    .requiredOption("--target <url>", "postgresql://user:password@host:port/database to restore into (created when missing)")
    .option("--overwrite", "drop the service's schemas in the target first when it is not empty")
    .option("--region <region>", "read the backups from the bucket's replica in this region alone (backups.replicaRegion; docs/backups.md)")
    .option("--json", "print a JSON summary")
    .action(
      guarded(
        async (
          opts: StackOptions & {
            service: string;
            backup?: string;
            latest?: boolean;
            target: string;
            overwrite?: boolean;
            region?: string;
            json?: boolean;
          },
        ) => {
          if (opts.backup && opts.latest) throw new BackupCommandError("give --backup <id> or --latest, not both");
          const ctx = context(opts);
          if (!ctx) return;
          const r = await backupRestore(ctx, {
            service: opts.service,
            backup: opts.backup,
            target: opts.target,
            overwrite: opts.overwrite,
          });
          out(
            opts.json
              ? `${JSON.stringify(r, null, 2)}\n`
              : `${r.service}: restored backup ${r.backup} into ${r.database} as ${r.restoredAs}: ${r.tables} table(s), ${r.rows} row(s), row counts and schema hash match the manifest (${r.seconds.toFixed(1)} s)\n`,
          );
        },
      ),
    );

  stackOptions(
    group
      .command("drill")
      .description("restore each service's latest backup into a scratch database, compare it with its manifest, report the RTO, drop it"),
  )
    .option("--service <name>", "only this service")
    .option(
      "--scratch-url <server=url>",
      "a login that may create databases on that server (repeatable; required for servers that are not local)",
      collect,
      [],
    )
    .option(
      "--to-time <time>",
      "drill a point-in-time restore to this moment instead (local servers' archives, RDS instances; docs/point-in-time.md)",
    )
    .option("--region <region>", "read the backups from the bucket's replica in this region alone (backups.replicaRegion; docs/backups.md)")
    .option("--json", "print a JSON summary")
    .action(
      guarded(async (opts: StackOptions & { service?: string; scratchUrl: string[]; toTime?: string; region?: string; json?: boolean }) => {
        const ctx = context(opts);
        if (!ctx) return;
        if (opts.toTime) {
          if (opts.region)
            throw new BackupCommandError("--to-time recovers a server's own archive, not the bucket's replica: drop --region");
          const drilled = await drillToTime(ctx, opts.service, opts.toTime, parseNamedUrls("--scratch-url", opts.scratchUrl));
          out(opts.json ? `${JSON.stringify(drilled, null, 2)}\n` : pointInTimeDrillTable(drilled));
          for (const r of drilled.filter((x) => !x.ok)) err(`db-platform backup drill: ${r.service}: ${r.error}\n`);
          if (drilled.some((r) => !r.ok)) process.exitCode = 1;
          return;
        }
        const results = await backupDrill(ctx, opts.service, parseNamedUrls("--scratch-url", opts.scratchUrl));
        out(opts.json ? `${JSON.stringify(results, null, 2)}\n` : drillTable(results));
        for (const r of results.filter((x) => !x.ok)) err(`db-platform backup drill: ${r.service}: ${r.error}\n`);
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      }),
    );
  return group;
}

function runLine(r: RunOutcome): string {
  if (!r.ok || !r.manifest)
    return `${r.service}: FAILED after ${r.seconds.toFixed(1)} s (no manifest written; earlier backups unchanged)\n`;
  const m = r.manifest;
  const rows = m.tables.reduce((n, t) => n + t.rows, 0);
  return `${r.service}: backup ${m.id}: ${m.tables.length} table(s), ${rows} row(s), ${formatBytes(m.dump.bytes)} in ${r.seconds.toFixed(1)} s (${m.dump.key}, sha256 ${m.dump.sha256.slice(0, 12)}…)\n`;
}

function drillTable(results: readonly DrillOutcome[]): string {
  const t = new Table({ head: ["service", "backup", "age", "RTO", "tables", "rows", "result"], style: { head: [], border: [] } });
  for (const r of results) {
    t.push([
      r.service,
      r.backup ?? "",
      r.ageHours === undefined ? "" : `${r.ageHours.toFixed(1)} h (RPO ${r.rpoHours} h)`,
      r.rtoSeconds === undefined ? "" : `${r.rtoSeconds.toFixed(1)} s`,
      r.tables === undefined ? "" : String(r.tables),
      r.rows === undefined ? "" : String(r.rows),
      r.ok ? "restored, row counts and schema hash match" : "FAILED",
    ]);
  }
  const failed = results.filter((r) => !r.ok).length;
  return `${t.toString()}\n${results.length - failed} of ${results.length} service(s) restored and verified\n`;
}

function pointInTimeDrillTable(results: readonly PointInTimeDrill[]): string {
  const t = new Table({
    head: ["service", "to time", "base backup", "last transaction", "RTO", "tables", "rows", "result"],
    style: { head: [], border: [] },
  });
  for (const r of results) {
    t.push([
      r.service,
      r.toTime,
      r.baseBackup ?? "",
      r.lastTransactionAt ?? "",
      r.rtoSeconds === undefined ? "" : `${r.rtoSeconds.toFixed(1)} s`,
      r.tables === undefined ? "" : String(r.tables),
      r.rows === undefined ? "" : String(r.rows),
      r.ok ? "recovered, restored, row counts and schema hash match" : "FAILED",
    ]);
  }
  const failed = results.filter((r) => !r.ok).length;
  return `${t.toString()}\n${results.length - failed} of ${results.length} service(s) recovered to the moment and verified\n`;
}
