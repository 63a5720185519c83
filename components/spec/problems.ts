/**
 * Problems found in a stack config, each tied to the config path a person would edit.
 */
import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";

export type PathSegment = string | number;

export interface Problem {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

/** `servers.main.replicas[1].region`: dots between keys, brackets around list indexes. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out === "" ? "(config)" : out;
}

export function formatProblem(p: Problem): string {
  return `${formatPath(p.path)}: ${p.message}`;
}

/** Thrown when a stack config is invalid; nothing has been registered when it is. */
export class SpecError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(`invalid db-platform config:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "SpecError";
  }

  /** One line per problem, each starting with its config path. */
  lines(): string[] {
    return this.problems.map(formatProblem);
  }
}

/** "(did you mean "services"?)" when a close enough candidate exists. */
export function suggestion(word: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return "";
  const best = closest(word, candidates as string[]);
  const limit = Math.max(2, Math.floor(best.length / 3));
  return distance(word, best) <= limit ? ` (did you mean "${best}"?)` : "";
}

/**
 * Turn zod issues into problems under `prefix`. Unknown keys get one problem each, with the
 * closest valid key suggested from `knownKeys(path)`.
 */
export function fromZod(
  error: z.ZodError,
  prefix: readonly PathSegment[],
  knownKeys: (path: readonly PathSegment[]) => readonly string[],
): Problem[] {
  const out: Problem[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...(issue.path as PathSegment[])];
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(path);
      for (const key of issue.keys) {
        out.push({
          path: [...path, key],
          message: `unknown key${suggestion(key, known) || (known.length ? ` (valid: ${known.join(", ")})` : "")}`,
        });
      }
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}
