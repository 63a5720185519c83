/** `db-platform stats`: per-service load of the live servers; exit 0, or 3 when it could not run (as `audit`). */
import * as path from "node:path";
import { type Command, Option } from "commander";
import { parseServerUrls, ServerReadError } from "../operations/connect";
import { AUDIT_EXIT } from "../operations/audit/report";
import { renderStats, STATS_FORMATS, type StatsFormat } from "../operations/stats/report";
import { parseSince, runStats, StatsError } from "../operations/stats/run";
import { ConfigFileError, findProjectDir } from "../operations/stack/stackConfig";
import { CONCURRENCY_OPTION, emitReport, type Output, resolveStack, runReport, type StackOptions, stackOptions } from "./common";

interface StatsCliOptions extends StackOptions {
  service?: string;
  format: StatsFormat;
  out?: string;
  since: string;
  serverUrl: string[];
  concurrency?: number;
}

export function statsCommand(program: Command, { out, err }: Output): void {
  stackOptions(
    program
      .command("stats")
      .description("what each service costs its server: connections, queries, latency, slow statements, sizes, index use (docs/stats.md)"),
  )
    .option("--service <name>", "only this service")
    .addOption(new Option("--format <format>", "report format").choices(STATS_FORMATS).default("text"))
    .option("--out <file>", "write the report to a file")
    .option("--since <reset|duration>", "since the statistics were reset, or over a window sampled now (30s, 5m, 1h)", "reset")
    .option(
      "--server-url <server=url>",
      "connect as the monitoring login (the stack output monitoring.<server>; required for servers that are not local)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(...CONCURRENCY_OPTION)
    .action(async (opts: StatsCliOptions) => {
      const { file, stack } = resolveStack(opts);
      const report = await runReport("db-platform stats", [StatsError, ServerReadError, ConfigFileError], AUDIT_EXIT.couldNotRun, err, () =>
        runStats({
          file,
          stack,
          projectDir: findProjectDir(path.dirname(file)),
          service: opts.service,
          serverUrls: parseServerUrls(opts.serverUrl),
          sinceSeconds: parseSince(opts.since),
          concurrency: opts.concurrency,
          onWindowStart: (seconds) => err(`db-platform stats: first snapshot taken, sampling for ${seconds} s\n`),
        }),
      );
      if (report) emitReport(renderStats(report, opts.format), opts.out, `${report.services.length} service(s)`, { out, err });
    });
}
