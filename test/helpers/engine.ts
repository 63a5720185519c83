/**
 * Whether this machine can apply stacks through the real Pulumi engine: the CLI (built by
 * scripts/engine/bootstrap.sh) and the PostgreSQL and random provider plugins at the versions the
 * SDK packages pin. Tests that prove what PostgreSQL ends up allowing need all of it; where a
 * piece is missing they are reported skipped with the reason and the install commands, never
 * passed and never faked.
 */
import { ensureEngine } from "../../operations/local/local";
import { installCommand, missingPlugins, sdkPlugin } from "../../operations/stack/stackApply";
import { ROOT } from "./synth";

export interface EngineReadiness {
  readonly ready: boolean;
  /** Why not, with what to run; empty when ready. */
  readonly reason: string;
}

function check(): EngineReadiness {
  try {
    ensureEngine(ROOT);
  } catch (e) {
    return { ready: false, reason: `the Pulumi engine could not be bootstrapped: ${(e as Error).message.split("\n")[0]}` };
  }
  const missing = missingPlugins([sdkPlugin(ROOT, "postgresql"), sdkPlugin(ROOT, "random")]);
  if (missing.length === 0) return { ready: true, reason: "" };
  return {
    ready: false,
    reason: `provider plugins missing (${missing.map((p) => `${p.name} v${p.version}`).join(", ")}): ${missing.map(installCommand).join(" && ")}`,
  };
}

export const ENGINE: EngineReadiness = check();

/** The name of the test that stands in a skipped suite's place, so the report says why. */
export const SKIPPED_BECAUSE = `needs the real Pulumi engine and provider plugins: ${ENGINE.reason}`;
