/**
 * Which Pulumi CLI db-platform runs (scripts/engine/bootstrap.sh): an installed one of a version
 * the SDK's Automation API accepts is used as it is and nothing is built; one below the minimum,
 * of another major, or missing without Go is a one-line error saying what was found and what to
 * do. The version checks are the SDK's own (parseAndValidatePulumiVersion, PulumiCommand.get);
 * the installed CLIs here answer only `version` (test/helpers/fakeTools.ts) — the real CLI runs
 * in the engine and end-to-end suites.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PulumiCommand } from "@pulumi/pulumi/automation";
import { version as SDK_VERSION } from "@pulumi/pulumi/package.json";
import { SemVer } from "semver";
import { afterAll, describe, expect, it } from "vitest";
import { fakeTool, minimalPath, removeFakeTools, runScript, SCRIPT_TOOLS, scratchDir } from "../helpers/fakeTools";
import { ROOT } from "../helpers/synth";

const BOOTSTRAP = path.join(ROOT, "scripts/engine/bootstrap.sh");
const cacheDir = () => scratchDir("engine-cache");
afterAll(removeFakeTools);
const bootstrap = (env: Record<string, string | undefined>) => runScript(BOOTSTRAP, [], { DB_PLATFORM_PULUMI: undefined, ...env });

describe("the SDK's version check (scripts/engine/accepts.cjs)", () => {
  const accepts = (found: string) => spawnSync("node", ["scripts/engine/accepts.cjs", found], { cwd: ROOT, encoding: "utf8" });

  it.each([`v${SDK_VERSION}`, "v3.240.0", "v3.300.1", "v3.233.0-alpha.1764+g1a2b3c4"])("accepts %s", (found) => {
    expect(accepts(found).status).toBe(0);
  });

  it.each([
    ["v3.231.9", "Minimum version requirement failed"],
    [`v${SDK_VERSION}-alpha.1`, "Minimum version requirement failed"],
    ["v3.2.0", "Minimum version requirement failed"],
    ["v4.0.0", "Major version mismatch"],
    ["not a version", "Failed to parse Pulumi CLI version"],
  ])("refuses %s", (found, reason) => {
    const r = accepts(found);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(reason);
  });

  it("is the check PulumiCommand.get runs with the SDK's version as the minimum", async () => {
    const old = fakeTool("pulumi", "version", "v3.100.0");
    const root = path.join(old.dir, "root");
    fs.mkdirSync(path.join(root, "bin"), { recursive: true });
    fs.symlinkSync(old.file, path.join(root, "bin", "pulumi"));
    await expect(PulumiCommand.get({ root, version: new SemVer(SDK_VERSION) })).rejects.toThrow(/Minimum version requirement failed/);
    const newer = fakeTool("pulumi", "version", "v3.240.0");
    fs.rmSync(path.join(root, "bin", "pulumi"));
    fs.symlinkSync(newer.file, path.join(root, "bin", "pulumi"));
    expect(String((await PulumiCommand.get({ root, version: new SemVer(SDK_VERSION) })).version)).toBe("3.240.0");
  });
});

describe("scripts/engine/bootstrap.sh", () => {
  it("uses an accepted installed CLI on PATH as it is and builds nothing", () => {
    const cache = cacheDir();
    const cli = fakeTool("pulumi", "version", "v3.240.0");
    const started = Date.now();
    const r = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${cli.dir}:${process.env.PATH}` });
    expect(r.status).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.stdout).toBe(path.join(cache, "installed", "bin"));
    expect(fs.realpathSync(path.join(r.stdout, "pulumi"))).toBe(fs.realpathSync(cli.file));
    expect(fs.existsSync(path.join(r.stdout, "pulumi-analyzer-policy-nodejs"))).toBe(true);
    expect(fs.readdirSync(cache)).toEqual(["installed"]);
    expect(r.stderr).toContain(`using ${fs.realpathSync(cli.file)} (v3.240.0; this project accepts v${SDK_VERSION} or newer within v3)`);
    // A second run says nothing; an upgrade of the installed CLI is seen at the next run.
    expect(bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${cli.dir}:${process.env.PATH}` }).stderr).toBe("");
    const upgraded = fakeTool("pulumi", "version", "v3.250.0");
    const again = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${upgraded.dir}:${process.env.PATH}` });
    expect(fs.realpathSync(path.join(again.stdout, "pulumi"))).toBe(fs.realpathSync(upgraded.file));
  });

  it("skips its own links and builds on PATH when looking for an installed CLI", () => {
    const cache = cacheDir();
    const cli = fakeTool("pulumi", "version", "v3.240.0");
    const first = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${cli.dir}:${process.env.PATH}` });
    const r = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${first.stdout}:${cli.dir}:${process.env.PATH}` });
    expect(fs.readlinkSync(path.join(r.stdout, "pulumi"))).toBe(fs.realpathSync(cli.file));
  });

  it.each([
    ["v3.100.0", "Minimum version requirement failed"],
    ["v4.1.0", "Major version mismatch"],
  ])("refuses an installed %s in one line saying what to do", (found, reason) => {
    const cli = fakeTool("pulumi", "version", found);
    const r = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cacheDir(), PATH: `${cli.dir}:${process.env.PATH}` });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`engine: ${fs.realpathSync(cli.dir)}/pulumi is Pulumi ${found}, not accepted: ${reason}`);
    expect(r.stderr).toContain(`Install v${SDK_VERSION} or newer within v3`);
    expect(r.stderr).toContain("DB_PLATFORM_PULUMI=build");
  });

  it("falls back to a CLI it built before when the installed one is too old, and says so", () => {
    const cache = cacheDir();
    const built = path.join(cache, `pulumi-v${SDK_VERSION}`, "bin");
    fs.mkdirSync(built, { recursive: true });
    fs.copyFileSync(fakeTool("pulumi", "version", `v${SDK_VERSION}`).file, path.join(built, "pulumi"));
    const old = fakeTool("pulumi", "version", "v3.100.0");
    const r = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cache, PATH: `${old.dir}:${process.env.PATH}` });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(built);
    expect(r.stderr).toContain(`ignoring ${fs.realpathSync(old.dir)}/pulumi (v3.100.0: Minimum version requirement failed`);
  });

  it("takes DB_PLATFORM_PULUMI before PATH, checked the same way", () => {
    const onPath = fakeTool("pulumi", "version", "v3.240.0");
    const named = fakeTool("pulumi", "version", "v3.245.0");
    const env = { DB_PLATFORM_ENGINE_CACHE: cacheDir(), PATH: `${onPath.dir}:${process.env.PATH}` };
    const r = bootstrap({ ...env, DB_PLATFORM_PULUMI: named.file });
    expect(fs.realpathSync(path.join(r.stdout, "pulumi"))).toBe(fs.realpathSync(named.file));
    const missing = bootstrap({ ...env, DB_PLATFORM_PULUMI: "/nowhere/pulumi" });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      `engine: DB_PLATFORM_PULUMI=/nowhere/pulumi is not an executable file: point it at a Pulumi CLI v${SDK_VERSION} or newer, set it to build, or unset it`,
    );
    const broken = fakeTool("pulumi", "version", "v3.240.0");
    fs.writeFileSync(broken.file, "#!/bin/sh\nexit 3\n");
    expect(bootstrap({ ...env, DB_PLATFORM_PULUMI: broken.file }).stderr).toContain(
      `${broken.file} does not run (\`${broken.file} version\` failed)`,
    );
  });

  it("without an installed CLI and without Go, names the normal install command", () => {
    const r = bootstrap({ DB_PLATFORM_ENGINE_CACHE: cacheDir(), PATH: minimalPath(SCRIPT_TOOLS) });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `engine: no Pulumi CLI found: install it (curl -fsSL https://get.pulumi.com | sh, or brew install pulumi/tap/pulumi; v${SDK_VERSION} or newer within v3), or install Go to have it built here`,
    );
  });
});
