/**
 * Files and functions that fit in a head (docs/architecture.md): no source file over 450 lines and
 * no function over 150 (the command definitions of cli/ included), measured on the TypeScript syntax tree.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/synth";

const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 150;
const SOURCE = ["index.ts", "components", "policies", "operations", "cli", "scripts"];

function sourceFiles(): string[] {
  return SOURCE.flatMap((top) => {
    const at = path.join(ROOT, top);
    if (fs.statSync(at).isFile()) return [top];
    return fs
      .readdirSync(at, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .map((f) => path.join(top, f));
  });
}

/** Every function-like node with a body, with its first line and its length in lines. */
function functions(file: string): Array<{ line: number; lines: number }> {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: Array<{ line: number; lines: number }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe("source layout", () => {
  const files = sourceFiles();

  it("reads the source tree", () => {
    expect(files).toContain(path.join("operations", "audit", "analyze.ts"));
    expect(files.length).toBeGreaterThan(50);
  });

  it(`has no source file over ${MAX_FILE_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f, lines: fs.readFileSync(path.join(ROOT, f), "utf8").split("\n").length }))
      .filter((x) => x.lines > MAX_FILE_LINES)
      .map((x) => `${x.f}: ${x.lines} lines`);
    expect(long).toEqual([]);
  });

  it(`has no function over ${MAX_FUNCTION_LINES} lines`, () => {
    const long = files
      .flatMap((f) => functions(f).map((fn) => ({ ...fn, f })))
      .filter((fn) => fn.lines > MAX_FUNCTION_LINES)
      .map((fn) => `${fn.f}:${fn.line}: ${fn.lines} lines`);
    expect(long).toEqual([]);
  });

  it("measures functions the way it claims (a known one)", () => {
    const analyze = functions(path.join("operations", "audit", "analyze.ts"));
    expect(analyze.some((fn) => fn.lines >= 5 && fn.lines <= 20)).toBe(true);
  });
});
