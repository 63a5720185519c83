/** The commands that act through the engine and on local servers: `local`, `up`, `preview`, `destroy`. */
import * as path from "node:path";
import { CommandError } from "@pulumi/pulumi/automation";
import type { Command } from "commander";
import { protectedDataHint } from "../operations/stack/dataProtection";
import { localCommand } from "../operations/local/local";
import { findProjectDir } from "../operations/stack/stackConfig";
import { baselineBackups, describeChanges, destroyStack, formatServiceUrls, previewStack, upStack } from "../operations/stack/stackApply";
import { AwsRotateError, repointChangedEndpoints } from "../operations/rotate/onAws";
import { EXIT_PROBLEMS, type Output, resolveStack, type StackOptions, stackOptions, UsageError, validSpec } from "./common";

export function engineCommands(program: Command, { out, err }: Output): void {
  /** An engine refusal to delete or replace a service's data, explained on stderr before the engine's own words. */
  const explained = async <T>(stack: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      const hint = e instanceof CommandError ? protectedDataHint(e.message, stack) : undefined;
      if (hint) err(hint);
      throw e;
    }
  };

  const local = program
    .command("local")
    .description("the real PostgreSQL servers of a stack's `local` servers (127.0.0.1, data in .db-platform/)");
  for (const action of ["start", "stop", "status"] as const) {
    stackOptions(local.command(action).description(`${action} the stack's local PostgreSQL servers`)).action(async (opts: StackOptions) => {
      const { file, stack } = resolveStack(opts);
      const spec = validSpec(file, out);
      if (!spec) return;
      const ok = await localCommand(action, spec, stack, findProjectDir(path.dirname(file)), out);
      if (!ok) process.exitCode = EXIT_PROBLEMS;
    });
  }

  const applyContext = (opts: StackOptions) => {
    const { file, stack, project } = resolveStack(opts);
    const spec = validSpec(file, out);
    if (!spec) return undefined;
    return {
      spec,
      stack,
      project,
      projectDir: findProjectDir(path.dirname(file)),
      progress: err,
      tty: process.stderr.isTTY === true,
    };
  };
  // Ctrl-C reaches the engine too, which finishes the operations in flight and saves the state;
  // this process waits for it. A second Ctrl-C quits at once (the next `up` then recovers).
  const waitForEngineOnInterrupt = () => {
    let interrupted = false;
    process.on("SIGINT", () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      err("\ninterrupted: the engine finishes what is in flight and saves the state (Ctrl-C again to quit at once)\n");
    });
  };
  stackOptions(
    program
      .command("up")
      .description(
        "start the stack's local servers, apply it through the Pulumi engine with the policy pack, and print each service's connection URLs",
      ),
  )
    .option("--show-secrets", "print the URLs' passwords instead of ****")
    .action(async (opts: StackOptions & { showSecrets?: boolean }) => {
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      waitForEngineOnInterrupt();
      const result = await explained(ctx.stack, () => upStack(ctx));
      out(`stack ${ctx.stack}: ${describeChanges(result.changes)} in ${result.seconds.toFixed(1)} s\n`);
      out(formatServiceUrls(result.outputs, opts.showSecrets === true));
      // A pool turned on or off on an RDS server: the secrets Secrets Manager rotates follow now (docs/rotation.md).
      try {
        for (const line of await repointChangedEndpoints(
          ctx.spec,
          (result.outputs.services?.value ?? {}) as Record<string, { urls?: Record<string, string> }>,
        ))
          out(`${line}\n`);
      } catch (e) {
        if (!(e instanceof AwsRotateError)) throw e;
        err(
          `db-platform up: applied, but a login's secret could not follow its new endpoint: ${e.message}; run db-platform rotate --stack ${ctx.stack} for it\n`,
        );
        process.exitCode = EXIT_PROBLEMS;
      }
      const first = await baselineBackups(ctx);
      for (const b of first) {
        out(
          b.ok
            ? `backups: first backup of ${b.service} (${b.manifest?.id})\n`
            : `backups: first backup of ${b.service} failed: ${b.error}\n`,
        );
      }
      if (first.some((b) => !b.ok)) process.exitCode = EXIT_PROBLEMS;
    });
  stackOptions(
    program.command("preview").description("preview the stack through the Pulumi engine with the policy pack; exit 1 on policy violations"),
  )
    .option("--expect-no-changes", "exit 1 when the preview would change anything")
    .action(async (opts: StackOptions & { expectNoChanges?: boolean }) => {
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      out(`stack ${ctx.stack}: ${describeChanges(await explained(ctx.stack, () => previewStack(ctx, opts.expectNoChanges === true)))}\n`);
    });
  stackOptions(
    program
      .command("destroy")
      .description("delete every resource of the stack through the Pulumi engine (databases, schemas and roles with their data)"),
  )
    .option("--yes", "confirm: the stack's databases and their data are deleted")
    .action(async (opts: StackOptions & { yes?: boolean }) => {
      if (!opts.yes) throw new UsageError("destroy deletes every database of the stack with its data: confirm with --yes");
      const ctx = applyContext(opts);
      if (!ctx) return void (process.exitCode = EXIT_PROBLEMS);
      waitForEngineOnInterrupt();
      out(`stack ${ctx.stack}: ${describeChanges(await destroyStack(ctx))}\n`);
    });
}
