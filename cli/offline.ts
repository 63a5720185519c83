/** The offline commands: `validate`, `synth`, `policy check` (no engine, no server). */
import * as path from "node:path";
import type { Command } from "commander";
import { formatProblem, validateConfig } from "../components/spec";
import { readConfigFile } from "../operations/stack/stackConfig";
import { synth } from "../operations/stack/synth";
import { formatViolations, policyCheck } from "../operations/stack/policyCheck";
import { EXIT_PROBLEMS, type Output, resolveStack, type StackOptions, stackOptions, UsageError, validSpec } from "./common";

export function offlineCommands(program: Command, { out, err }: Output): void {
  stackOptions(
    program.command("validate").description("check a stack's db-platform config; one line per problem, each starting with its config path"),
  ).action((opts: StackOptions) => {
    const { file } = resolveStack(opts);
    const result = validateConfig(readConfigFile(file));
    if (!result.ok) {
      for (const p of result.problems) out(`${formatProblem(p)}\n`);
      err(`${path.basename(file)}: ${result.problems.length} problem(s)\n`);
      process.exitCode = EXIT_PROBLEMS;
      return;
    }
    const { spec } = result;
    err(
      `${path.basename(file)}: valid (environment ${spec.environment}, ${spec.servers.length} server(s), ${spec.services.length} service(s))\n`,
    );
  });

  stackOptions(program.command("synth").description("print the full desired state offline (the real program under the SDK's mocks)"))
    .option("--json", "print a JSON array of { type, name, urn, parent, provider, props, protect? }")
    .action(async (opts: StackOptions & { json?: boolean }) => {
      const { file, stack, project } = resolveStack(opts);
      if (!validSpec(file, out)) return;
      const resources = await synth(readConfigFile(file), project, stack);
      if (opts.json) {
        out(`${JSON.stringify(resources, null, 2)}\n`);
        return;
      }
      const byType = new Map<string, number>();
      for (const r of resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
      for (const [type, n] of [...byType].sort()) out(`${String(n).padStart(5)}  ${type}\n`);
      out(`${String(resources.length).padStart(5)}  resources in stack ${stack}\n`);
    });

  const policy = program.command("policy").description("the policy pack's rules, offline");
  stackOptions(
    policy
      .command("check")
      .description(
        "evaluate the policy pack on a stack export, synth --json output, or a stack synthesized offline; exit 1 on a mandatory violation",
      ),
  )
    .option("--state <file>", "a `pulumi stack export` document or `db-platform synth --json` output")
    .option("--policy-config <file>", "policy config (default: policies/config/<stack>.json when it exists)")
    .option("--json", "print an array of { policy, urn, message, enforcement }")
    .action(async (opts: StackOptions & { state?: string; policyConfig?: string; json?: boolean }) => {
      if (!opts.state && !opts.stack && !opts.config) throw new UsageError("give --state <file>, --stack <name> or --config <file>");
      const result = await policyCheck(opts, resolveStack);
      if (!result.ok) {
        for (const line of result.problems) out(`${line}\n`);
        process.exitCode = EXIT_PROBLEMS;
        return;
      }
      const { violations } = result;
      out(opts.json ? `${JSON.stringify(violations, null, 2)}\n` : formatViolations(violations));
      if (violations.some((v) => v.enforcement === "mandatory")) process.exitCode = EXIT_PROBLEMS;
    });
}
