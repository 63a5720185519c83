/**
 * Read a stack's config offline, from `Pulumi.<stack>.yaml` or any file in that format, without
 * the engine and without decrypting secrets: secure values become "[secret]" and their keys are
 * marked secret, which is all validation and synthesis need.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, parseDocument } from "yaml";
import type { ConfigInput } from "../../components/spec";
import { NAMESPACE } from "../../components/spec/naming";

export const SECRET_PLACEHOLDER = "[secret]";

export class ConfigFileError extends Error {}

/** The directory holding Pulumi.yaml, searched upward from `start`. */
export function findProjectDir(start = process.cwd()): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new ConfigFileError(`no Pulumi.yaml found in ${start} or any parent directory`);
    dir = up;
  }
}

export function projectName(projectDir: string): string {
  const doc = parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as { name?: string };
  return doc?.name ?? "db-platform";
}

export function stackConfigPath(stack: string, projectDir = findProjectDir()): string {
  return path.join(projectDir, `Pulumi.${stack}.yaml`);
}

function isSecure(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

/** Replace `{ secure: … }` leaves with the placeholder; report whether any was found. */
function stripSecure(v: unknown): { value: unknown; secret: boolean } {
  if (isSecure(v)) return { value: SECRET_PLACEHOLDER, secret: true };
  if (Array.isArray(v)) {
    const items = v.map(stripSecure);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (v !== null && typeof v === "object") {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) {
      const r = stripSecure(item);
      out[k] = r.value;
      secret ||= r.secret;
    }
    return { value: out, secret };
  }
  return { value: v, secret: false };
}

export function readConfigFile(file: string): ConfigInput {
  if (!fs.existsSync(file)) throw new ConfigFileError(`${file}: no such file`);
  let doc: unknown;
  try {
    doc = parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigFileError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  const config = (doc as { config?: Record<string, unknown> } | null)?.config;
  if (!config || typeof config !== "object") throw new ConfigFileError(`${file}: has no "config:" map`);
  const values: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  let awsRegion: string | undefined;
  for (const [key, raw] of Object.entries(config)) {
    if (key === "aws:region" && typeof raw === "string") awsRegion = raw;
    if (!key.startsWith(`${NAMESPACE}:`)) continue;
    const short = key.slice(NAMESPACE.length + 1);
    const { value, secret } = stripSecure(raw);
    values[short] = value;
    if (secret) secretKeys.add(short);
  }
  return { values, secretKeys, awsRegion };
}

/**
 * Change a stack file in place, keeping its comments and layout: `edit` works on the YAML
 * document; the file is replaced whole (written beside it, then renamed).
 */
export function editConfigFile(file: string, edit: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(fs.readFileSync(file, "utf8"));
  if (doc.errors.length > 0) throw new ConfigFileError(`${file}: not valid YAML: ${doc.errors[0].message}`);
  edit(doc);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, doc.toString());
  fs.renameSync(tmp, file);
}
