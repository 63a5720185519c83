/**
 * `db-platform restore --to-time` (one service as it was at a moment, from its server's archive)
 * and `db-platform backup base` (a base backup of each local server's archive now): docs/point-in-time.md.
 */
import type { Command } from "commander";
import { archivedServers } from "../operations/archive/servers";
import { baseBackupWhenDue } from "../operations/archive/status";
import { BackupCommandError } from "../operations/backup/command";
import { type PointInTimeResult, restoreToTime } from "../operations/archive/pointInTime";
import { parseServerUrls } from "../operations/connect";
import { backupContext, collect, guardedBy } from "./backup";
import { type Output, type StackOptions, stackOptions } from "./common";

export function restoreCommand(program: Command, { out, err }: Output): void {
  const guarded = guardedBy(err, "db-platform restore");
  stackOptions(
    program
      .command("restore")
      .description(
        "put one service back as it was at a moment: its server's archive recovered in a scratch server, the service taken out and restored as its owner role, neighbours untouched (docs/point-in-time.md)",
      ),
  )
    .requiredOption("--service <name>", "the service")
    .requiredOption("--to-time <time>", "the moment, ISO 8601 with its zone (2026-12-04T14:02:00Z)")
    .option(
      "--target <url>",
      "postgresql://user:password@host:port/database to restore into (default: <service>_at_<time> on its own server)",
    )
    .option("--in-place", "replace the service's data in its own database (backed up first); needs --confirm")
    .option("--confirm <stack/service>", "for --in-place: the stack and service, as <stack>/<service>")
    .option(
      "--server-url <server=url>",
      "RDS: the master user's URL of the service's server, to restore as the service's owner role (local servers: their socket)",
      collect,
      [],
    )
    .option(
      "--url <service=url>",
      "RDS: a service's read-only login URL (repeatable; the service and its neighbours, else their DB_PLATFORM_LOGIN_* secrets)",
      collect,
      [],
    )
    .option("--json", "print a JSON summary")
    .action(
      guarded(
        async (
          opts: StackOptions & {
            service: string;
            toTime: string;
            target?: string;
            inPlace?: boolean;
            confirm?: string;
            serverUrl: string[];
            url: string[];
            json?: boolean;
          },
        ) => {
          const ctx = backupContext(opts, out);
          if (!ctx) return;
          const r = await restoreToTime(ctx, { ...opts, serverUrls: parseServerUrls(opts.serverUrl) });
          out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : restoreSummary(r));
        },
      ),
    );
}

function restoreSummary(r: PointInTimeResult): string {
  const rows = r.neighbours.reduce((n, x) => n + x.rows, 0);
  return [
    r.recoveredBy === "rds"
      ? `${r.service}: recovered to ${r.toTime} by RDS into ${r.baseBackup} in ${r.recoverySeconds.toFixed(1)} s (deleted since)`
      : `${r.service}: recovered to ${r.toTime} from base backup ${r.baseBackup} in ${r.recoverySeconds.toFixed(1)} s (last transaction replayed: ${r.lastTransactionAt ?? "none after the base backup"})`,
    `${r.service}: restored into ${r.into}${r.inPlace ? " (in place)" : ""} as ${r.restore.restoredAs}: ${r.restore.tables} table(s), ${r.restore.rows} row(s), row counts and schema hash match what was extracted`,
    ...(r.backupBeforeReplace ? [`${r.service}: its data before the restore is backup ${r.backupBeforeReplace}`] : []),
    `neighbours on the server: ${r.neighbours.length === 0 ? "none" : `${r.neighbours.map((n) => n.service).join(", ")} unchanged (${rows} row(s), row counts and schema hash as before)`}`,
    `done in ${r.seconds.toFixed(1)} s`,
    "",
  ].join("\n");
}

/** `backup base`: a base backup of each archived local server now, and the recovery window applied. */
export function baseBackupCommand(group: Command, { out, err }: Output): void {
  const guarded = guardedBy(err, "db-platform backup base");
  stackOptions(
    group
      .command("base")
      .description("a base backup of each local server's archive now (barman-cloud), older ones past the recovery window deleted"),
  )
    .option("--server <name>", "only this server")
    .option("--if-due", "only when the newest is older than backups.archive.baseBackupHours")
    .action(
      guarded(async (opts: StackOptions & { server?: string; ifDue?: boolean }) => {
        const ctx = backupContext(opts, out);
        if (!ctx) return;
        const archives = archivedServers(ctx, opts.server);
        if (archives.length === 0)
          throw new BackupCommandError(`stack ${ctx.stack} has no archived local server (backups.storage local, backups.archive)`);
        for (const archive of archives) {
          if (opts.ifDue) await baseBackupWhenDue(archive, out);
          else {
            const r = await archive.baseBackup();
            out(
              `${archive.opts.server.opts.name}: base backup ${r.backup.id} in ${r.seconds.toFixed(1)} s (WAL ${r.backup.beginWal}–${r.backup.endWal}); ${r.deleted} past the recovery window deleted\n`,
            );
          }
        }
      }),
    );
}
