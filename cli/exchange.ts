/**
 * `db-platform export` and `import`: one service's data between the stacks of two environments
 * (operations/backup/exchange.ts, docs/data-moves.md). Exit codes as `backup`: 0 done; 1 the
 * import or export failed or was refused for the target's data (nothing written, or rolled
 * back); 2 it could not run (bad arguments, no confirmation, an unreadable export).
 */
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { formatBytes } from "../operations/local/local";
import { BackupCommandError, parseNamedUrls } from "../operations/backup/command";
import {
  exportService,
  type ImportPlan,
  type ImportResult,
  importService,
  parseLocation,
  readImportPlan,
} from "../operations/backup/exchange";
import { backupContext, collect, guardedBy, progressReporter } from "./backup";
import { type Output, type StackOptions, stackOptions } from "./common";

interface ExportOptions extends StackOptions {
  service: string;
  to: string;
  s3Endpoint?: string;
  reason?: string;
  url: string[];
  json?: boolean;
}

interface ImportOptions extends StackOptions {
  service: string;
  from: string;
  s3Endpoint?: string;
  confirm?: string;
  replace?: boolean;
  adminUrl: string[];
  json?: boolean;
}

export function planText(p: ImportPlan, replace: boolean): string {
  const s = p.source;
  const t = p.target;
  return [
    `import export ${s.export} of service ${s.service} (stack ${s.stack}, environment ${s.environment}, taken ${s.finishedAt}${s.exportedBy ? ` by ${s.exportedBy}` : ""}${s.reason ? `: "${s.reason}"` : ""})`,
    `  ${s.tables} table(s), ${s.rows} row(s), ${formatBytes(s.bytes)}`,
    `into service ${t.service} of stack ${t.stack} (environment ${t.environment}): server ${t.server}, database ${t.database}, schema(s) ${t.schemas.join(", ")}, as ${t.ownerRole}`,
    replace ? "  its current data is backed up, then replaced" : "  refused if it already has data",
    "",
  ].join("\n");
}

function resultText(r: ImportResult): string {
  const x = r.restore;
  const kept = r.backupBeforeReplace ? `; its previous data is backup ${r.backupBeforeReplace}` : "";
  return `${r.plan.target.service}: imported export ${x.backup} into ${r.plan.target.stack}/${x.database} as ${x.restoredAs}: ${x.tables} table(s), ${x.rows} row(s), row counts and schema hash match the manifest (${x.seconds.toFixed(1)} s)${kept}\n`;
}

/** On a terminal, without --confirm: show the plan and ask for the target's name. */
async function askConfirmation(plan: ImportPlan, replace: boolean, err: (s: string) => void): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  err(planText(plan, replace));
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`type ${plan.confirmation} to import: `)).trim();
  } finally {
    rl.close();
  }
}

export function exchangeCommands(program: Command, { out, err }: Output): void {
  const guarded = guardedBy(err, "db-platform");

  stackOptions(
    program
      .command("export")
      .description("one service's data, with its read-only login, to a folder or S3 location another environment's stack imports from"),
  )
    .requiredOption("--service <name>", "the service")
    .requiredOption("--to <folder|s3://bucket/prefix>", "where the dump and its manifest go (never a stack's backup bucket)")
    .option("--s3-endpoint <url>", "an S3-compatible server (path-style) instead of AWS")
    .option("--reason <text>", "why, recorded in the manifest")
    .option("--url <service=url>", "the service's read-only login URL (required for servers that are not local)", collect, [])
    .option("--json", "print the manifest and where it is")
    .action(
      guarded(async (opts: ExportOptions) => {
        const to = parseLocation("--to", opts.to, opts.s3Endpoint);
        const ctx = backupContext(opts, out);
        if (!ctx) return;
        const r = await exportService(ctx, { service: opts.service, to, reason: opts.reason, progress: progressReporter(err) });
        if (opts.json) {
          out(`${JSON.stringify({ location: r.location, manifest: r.manifest }, null, 2)}\n`);
          return;
        }
        const m = r.manifest;
        const rows = m.tables.reduce((n, t) => n + t.rows, 0);
        out(
          `${m.service}: exported ${m.tables.length} table(s), ${rows} row(s), ${formatBytes(m.dump.bytes)} from stack ${m.stack} (environment ${m.environment}) in ${r.seconds.toFixed(1)} s\n` +
            `  manifest: ${r.location}\n` +
            `  import:   npx db-platform import --stack <target stack> --service ${m.service} --from ${r.location}${opts.s3Endpoint ? ` --s3-endpoint ${opts.s3Endpoint}` : ""}\n`,
        );
      }),
    );

  stackOptions(
    program
      .command("import")
      .description("an export into a service of this stack: confirmed, as the service's owner role, checked against the manifest"),
  )
    .requiredOption("--service <name>", "the target service in this stack")
    .requiredOption("--from <manifest|s3://bucket/key>", "the export's manifest (<service>-<environment>-<id>.manifest.json)")
    .option("--s3-endpoint <url>", "an S3-compatible server (path-style) instead of AWS")
    .option("--confirm <stack/service>", "the target, exactly: required unless typed at the prompt on a terminal")
    .option("--replace", "replace the service's data when it has some (backed up first)")
    .option(
      "--admin-url <server=url>",
      "a login that may act as the service's owner role (required for servers that are not local)",
      collect,
      [],
    )
    .option("--json", "print the plan and the result")
    .action(
      guarded(async (opts: ImportOptions) => {
        const from = parseLocation("--from", opts.from, opts.s3Endpoint);
        const adminUrls = parseNamedUrls("--admin-url", opts.adminUrl);
        const ctx = backupContext(opts, out);
        if (!ctx) return;
        let confirm = opts.confirm;
        if (confirm === undefined) {
          confirm = await askConfirmation(await readImportPlan(ctx, { service: opts.service, from }), opts.replace === true, err);
          if (confirm === "") throw new BackupCommandError("not confirmed: nothing was imported");
        }
        const r = await importService(ctx, { service: opts.service, from, confirm, replace: opts.replace, adminUrls });
        out(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${planText(r.plan, opts.replace === true)}${resultText(r)}`);
      }),
    );
}
