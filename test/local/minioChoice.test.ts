/**
 * Which MinIO the dev stack's S3 runs (scripts/s3/minio.sh): DB_PLATFORM_MINIO, else a `minio`
 * on PATH, else the pinned build; an installed one is used as it is and nothing is built. The
 * stand-ins (test/helpers/fakeTools.ts) answer only `--version`; the real MinIO, put on PATH,
 * starts and answers S3 at the end.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalS3, LocalS3Error } from "../../operations/local/s3";
import { fakeTool, minimalPath, removeFakeTools, runScript, SCRIPT_TOOLS, scratchDir } from "../helpers/fakeTools";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const SCRIPT = path.join(ROOT, "scripts/s3/minio.sh");
afterAll(removeFakeTools);
const minio = (env: Record<string, string | undefined>) =>
  runScript(SCRIPT, [], { DB_PLATFORM_MINIO: undefined, XDG_CACHE_HOME: scratchDir("cache"), ...env });

describe("scripts/s3/minio.sh", () => {
  it("uses a minio on PATH as it is and builds nothing", () => {
    const cache = scratchDir("cache");
    const installed = fakeTool("minio", "--version", "minio version RELEASE.2025-09-07T16-13-09Z (commit-id=07c3a429bfed)");
    const r = minio({ XDG_CACHE_HOME: cache, PATH: `${installed.dir}:${process.env.PATH}` });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(installed.file);
    expect(r.stderr).toBe("");
    expect(fs.readdirSync(cache)).toEqual([]);
  });

  it("takes DB_PLATFORM_MINIO before PATH", () => {
    const onPath = fakeTool("minio", "--version", "minio version RELEASE.2025-09-07T16-13-09Z");
    const named = fakeTool("minio", "--version", "minio version RELEASE.2025-10-15T17-29-55Z");
    expect(minio({ DB_PLATFORM_MINIO: named.file, PATH: `${onPath.dir}:${process.env.PATH}` }).stdout).toBe(named.file);
  });

  it("refuses, in one line, a named file that is not there and a minio that does not run", () => {
    const missing = minio({ DB_PLATFORM_MINIO: "/nowhere/minio" });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(
      "minio: DB_PLATFORM_MINIO=/nowhere/minio is not an executable file: point it at a minio binary, set it to build, or unset it",
    );
    const broken = fakeTool("minio", "--nothing", "", 1);
    const r = minio({ PATH: `${broken.dir}:${process.env.PATH}` });
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^minio: .*\/minio does not run \(`.*\/minio --version` failed\): reinstall it \(brew install minio\/stable\/minio, .*\), or set DB_PLATFORM_MINIO=build/,
    );
  });

  it("keeps Go's output of a build in a log, and shows its end when the build fails", () => {
    const go = fakeTool("go", "version", "go version go1.26.8 linux/amd64");
    fs.writeFileSync(go.file, "#!/bin/sh\necho 'go: downloading example.com/x v1.0.0' >&2\necho 'build failed: disk full' >&2\nexit 1\n");
    const r = minio({ DB_PLATFORM_MINIO: "build", PATH: `${go.dir}:${minimalPath(SCRIPT_TOOLS)}` });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("minio: building MinIO v0.0.0-");
    expect(r.stderr).toContain("build failed: disk full");
    expect(r.stderr).toMatch(/minio: the MinIO build failed \(above; whole log: .*minio-v0\.0\.0-.*\.tmp\.log\)$/);
  });

  it("without a minio and without Go, names the normal install", () => {
    const r = minio({ PATH: minimalPath(SCRIPT_TOOLS) });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "minio: no MinIO found: install it (brew install minio/stable/minio, or the binary from https://dl.min.io/server/minio/release/), or install Go to have the pinned one built here",
    );
  });
});

describe("the local S3 server with an installed MinIO", () => {
  const saved = { minio: process.env.DB_PLATFORM_MINIO, path: process.env.PATH };
  afterAll(() => {
    if (saved.minio === undefined) delete process.env.DB_PLATFORM_MINIO;
    else process.env.DB_PLATFORM_MINIO = saved.minio;
    process.env.PATH = saved.path;
  });

  it("says in one line which minio did not start and what to do", async () => {
    const bad = fakeTool("minio", "--version", "minio version RELEASE.2025-09-07T16-13-09Z");
    fs.writeFileSync(
      bad.file,
      `#!/bin/sh\n[ "$1" = --version ] && { echo 'minio version RELEASE.2025-09-07T16-13-09Z'; exit 0; }\necho 'FATAL Unable to use the drive: permission denied' >&2\nexit 1\n`,
    );
    process.env.DB_PLATFORM_MINIO = bad.file;
    const s3 = new LocalS3({ dir: scratchDir("s3"), port: await freePort(), projectDir: ROOT });
    const err = await s3.start(["b"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalS3Error);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^MinIO \\(${bad.file}\\) exited at start: FATAL Unable to use the drive: permission denied \\(log: .*\\); fix it, or set DB_PLATFORM_MINIO`,
      ),
    );
  });

  it("runs the real MinIO from PATH: it starts, answers S3 and stops", async () => {
    delete process.env.DB_PLATFORM_MINIO;
    const real = runScript(SCRIPT, ["--quiet"], {}).stdout;
    const onPath = scratchDir("bin");
    fs.symlinkSync(real, path.join(onPath, "minio"));
    process.env.PATH = `${onPath}:${saved.path}`;
    expect(runScript(SCRIPT, [], {}).stdout).toBe(path.join(onPath, "minio"));
    const s3 = new LocalS3({ dir: scratchDir("s3"), port: await freePort(), projectDir: ROOT });
    try {
      await s3.start(["backups"]);
      expect(await s3.isRunning()).toBe(true);
    } finally {
      await s3.destroy();
    }
    expect(s3.pid()).toBeUndefined();
  }, 60_000);
});
