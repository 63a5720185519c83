/**
 * The backup runner image's tag: `pg<major>-<content hash>`. The ECR repository's tags are
 * immutable, so an image is never replaced under a tag a task definition names: a change to
 * anything the image copies (the build context's allow-list in .dockerignore, the Dockerfile)
 * or to the major makes a new tag.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** The paths `.dockerignore` lets into the build context (`*` first, then `!path` lines). */
export function contextAllowList(root: string): string[] {
  const lines = fs.readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n");
  return lines
    .map((l) => l.trim())
    .filter((l) => l.startsWith("!"))
    .map((l) => l.slice(1).replace(/\/$/, ""));
}

function filesOf(root: string, pattern: string): string[] {
  if (pattern.includes("*")) {
    const dir = path.dirname(pattern);
    const re = new RegExp(`^${path.basename(pattern).replace(/[.]/g, "\\.").replace(/\*/g, "[^/]*")}$`);
    return fs
      .readdirSync(path.join(root, dir))
      .filter((f) => re.test(f))
      .map((f) => path.join(dir, f));
  }
  const full = path.join(root, pattern);
  if (!fs.existsSync(full)) return [];
  if (!fs.statSync(full).isDirectory()) return [pattern];
  return fs
    .readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** `pg<major>-` and the first 12 hex digits of a SHA-256 over the Dockerfile and every file the image copies, by path. */
export function runnerImageTag(major: string, dockerfile: string, root: string = process.cwd()): string {
  const files = [...new Set([dockerfile, ...contextAllowList(root).flatMap((p) => filesOf(root, p))])].sort();
  const hash = createHash("sha256").update(`PG_MAJOR=${major}\n`);
  for (const f of files) hash.update(`${f}\n`).update(fs.readFileSync(path.join(root, f)));
  return `pg${major}-${hash.digest("hex").slice(0, 12)}`;
}
