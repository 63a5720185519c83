/** Docs that describe code must not drift from it. */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { AUDIT_RULE_IDS } from "../operations/audit/model";
import { AUDIT_RULES } from "../operations/audit/rules";
import { backupsSchema } from "../components/spec/schema";
import { ALL_RULES } from "../policies/rules";
import { ROOT } from "./helpers/synth";

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");

describe("docs/policies.md", () => {
  const doc = read("docs/policies.md");
  it.each(ALL_RULES.map((r) => [r.name, r]))("documents %s with its description and defaults", (_n, rule) => {
    const cells = doc
      .split("\n")
      .map((l) => l.split("|").map((c) => c.trim()))
      .find((c) => c[1] === `\`${rule.name}\``);
    expect(cells, rule.name).toBeDefined();
    expect(cells?.[2]).toBe(rule.description);
    expect(cells?.[3]).toBe(rule.alwaysMandatory ? "mandatory, always" : rule.enforcementLevel);
    for (const [prop, schema] of Object.entries(rule.configSchema ?? {}))
      expect(cells?.[4]).toContain(`\`${prop}\` (default \`${JSON.stringify(schema.default)}\`)`);
  });
});

describe("docs/audit.md", () => {
  const doc = read("docs/audit.md");
  const rows = doc
    .split("\n")
    .map((l) => l.split("|").map((c) => c.trim()))
    .filter((c) => /^`[a-z-]+`$/.test(c[1] ?? "") && ["critical", "high", "medium", "low"].includes(c[2]));
  it.each(AUDIT_RULES.map((r) => [r.id, r.severity, r]))("documents rule %s with severity %s and when it reports", (id, _s, rule) => {
    const cells = rows.find((c) => c[1] === `\`${id}\``);
    expect(cells, id).toBeDefined();
    expect(cells?.[2]).toBe(rule.severity);
    expect(cells?.[3]).toBe(rule.reportedWhen);
  });
  it("lists exactly the rules of operations/audit/rules, once each, in their order", () => {
    expect(rows.map((c) => c[1])).toEqual(AUDIT_RULES.map((r) => `\`${r.id}\``));
    expect(AUDIT_RULES.map((r) => r.id).sort()).toEqual([...AUDIT_RULE_IDS].sort());
  });
});

describe("README", () => {
  const readme = read("README.md");
  it("documents every CLI command", () => {
    for (const cmd of [
      "db-platform validate",
      "db-platform synth",
      "db-platform policy check",
      "db-platform local",
      "db-platform audit",
      "db-platform backup run",
      "db-platform backup drill",
      "db-platform export",
      "db-platform import",
      "db-platform rotate",
    ])
      expect(readme).toContain(cmd);
  });
  it("documents every backups key in the config reference", () => {
    for (const key of Object.keys(backupsSchema.shape)) expect(readme, key).toContain(`| \`backups.${key}\``);
  });
  it("documents every npm script", () => {
    const scripts = Object.keys(JSON.parse(read("package.json")).scripts as Record<string, string>);
    for (const s of scripts) expect(readme, s).toMatch(new RegExp(`npm (run )?${s.replace(/[:]/g, "\\:")}\\b`));
  });
});

describe("docs/architecture.md", () => {
  const doc = read("docs/architecture.md");
  const dirs = (at: string) =>
    fs
      .readdirSync(path.join(ROOT, at), { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith(".") && !["node_modules", "dist", "coverage"].includes(e.name))
      .map((e) => (at === "." ? e.name : `${at}/${e.name}`));
  const tracked = (dir: string) => fs.readdirSync(path.join(ROOT, dir)).length > 0;

  it.each(dirs(".").filter(tracked))("names and explains the top-level folder %s", (dir) => {
    expect(doc).toContain(`\`${dir}/\``);
  });

  it.each(["components", "policies", "operations"].flatMap(dirs))("names the folder %s", (dir) => {
    expect(doc).toContain(`${dir}/`);
  });

  it("keeps cli/ to command wiring: nothing outside it imports it", () => {
    const offenders: string[] = [];
    for (const top of ["components", "policies", "operations", "scripts", "test"]) {
      for (const f of fs.readdirSync(path.join(ROOT, top), { recursive: true, encoding: "utf8" })) {
        if (!f.endsWith(".ts")) continue;
        const text = read(path.join(top, f));
        if (/from "(\.\.\/)+cli\//.test(text)) offenders.push(path.join(top, f));
      }
    }
    expect(offenders).toEqual([]);
  });
});
