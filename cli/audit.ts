/** `db-platform audit`: exit 2 on a critical finding, 1 on high, 3 when it could not run. */
import * as path from "node:path";
import { type Command, Option } from "commander";
import { AuditError, parseServerUrls, runAudit } from "../operations/audit/run";
import { AUDIT_EXIT, exitCodeOf, REPORT_FORMATS, type ReportFormat, render } from "../operations/audit/report";
import { ConfigFileError, findProjectDir } from "../operations/stack/stackConfig";
import { StateFormatError } from "../policies/engine/sources";
import {
  CONCURRENCY_OPTION,
  emitReport,
  type Output,
  resolveStack,
  runReport,
  type StackOptions,
  stackOptions,
  UsageError,
} from "./common";

export function auditCommand(program: Command, { out, err }: Output): void {
  stackOptions(
    program
      .command("audit")
      .description(
        "compare what the databases really allow with what the stack declares; exit 2 on a critical finding, 1 on high, 3 when it could not run",
      ),
  )
    .option("--service <name>", "only findings that concern this service, and only its server")
    .addOption(new Option("--format <format>", "report format").choices(REPORT_FORMATS).default("text"))
    .option("--out <file>", "write the report to a file (a one-line summary goes to stderr)")
    .option("--state <file>", "read the declared side from a `pulumi stack export` document or synth --json output")
    .option(
      "--server-url <server=url>",
      "connect to a server with this PostgreSQL URL (repeatable; required for rds, container and external servers)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--password-max-age <days>", "report logins whose password is valid longer than this (low)", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--password-max-age ${v}: expected a positive whole number of days`);
      return n;
    })
    .option(...CONCURRENCY_OPTION)
    .option("--no-backups", "skip the backup freshness check (each service's latest backup against the RPO)")
    .action(
      async (
        opts: StackOptions & {
          service?: string;
          format: ReportFormat;
          out?: string;
          state?: string;
          serverUrl: string[];
          passwordMaxAge?: number;
          concurrency?: number;
          backups: boolean;
        },
      ) => {
        const { file, stack, project } = resolveStack(opts);
        const report = await runReport(
          "db-platform audit",
          [AuditError, ConfigFileError, StateFormatError],
          AUDIT_EXIT.couldNotRun,
          err,
          () =>
            runAudit({
              file,
              stack,
              project,
              projectDir: findProjectDir(path.dirname(file)),
              state: opts.state,
              service: opts.service,
              serverUrls: parseServerUrls(opts.serverUrl),
              passwordMaxAgeDays: opts.passwordMaxAge,
              concurrency: opts.concurrency,
              backups: opts.backups,
            }),
        );
        if (!report) return;
        const s = report.summary;
        const summary = `${report.findings.length} finding(s) (${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low)`;
        emitReport(render(report, opts.format), opts.out, summary, { out, err });
        process.exitCode = exitCodeOf(report);
      },
    );
}
