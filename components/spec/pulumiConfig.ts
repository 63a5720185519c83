import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { NAMESPACE } from "./naming";
import type { ConfigInput } from "./validate";

// Exported by the SDK's runtime but missing from its type declarations.
const isConfigSecret = (runtimeConfig as unknown as { isConfigSecret(key: string): boolean }).isConfigSecret;

/** Pulumi hands structured config to programs as JSON strings; scalars stay strings. */
export function parseConfigValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The `db-platform:*` config of the running stack, read once from the Pulumi runtime. */
export function configFromPulumi(): ConfigInput {
  const all = pulumi.runtime.allConfig();
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(`${NAMESPACE}:`)) continue;
    const short = key.slice(NAMESPACE.length + 1);
    values[short] = parseConfigValue(value);
    if (isConfigSecret(key)) secretKeys.add(short);
  }
  return { values, secretKeys, awsRegion: all["aws:region"] };
}
