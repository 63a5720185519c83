/**
 * What the first start of a local stack on this machine fetches or builds, said before any of
 * it starts: each script answers `--plan` with one line (or nothing when it has what it needs:
 * an installed tool, or one fetched or built before), and the steps then say how they progress
 * themselves (scripts/lib/progress.sh).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import type { Spec } from "../../components/spec";

/** The `--plan` lines of the engine, of each local server's PostgreSQL major, of MinIO, of PgBouncer and of barman-cloud. */
export function firstRunSteps(spec: Spec, projectDir: string): string[] {
  const plan = (script: string, ...args: string[]) =>
    spawnSync("bash", [path.join(projectDir, script), "--plan", ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).stdout?.trim() ?? "";
  const majors = [...new Set(spec.servers.filter((s) => s.hosting === "local").map((s) => s.version))];
  return [
    plan("scripts/engine/bootstrap.sh"),
    ...majors.map((major) => plan("scripts/postgres/install.sh", major)),
    spec.backups?.storage === "local" ? plan("scripts/s3/minio.sh") : "",
    spec.servers.some((s) => s.hosting === "local" && s.pooler) ? plan("scripts/pooler/pgbouncer.sh") : "",
    spec.backups?.archive ? plan("scripts/clients/venv.sh", "scripts/archive/requirements.txt") : "",
  ].filter(Boolean);
}

/** One line before a first run's downloads and builds; nothing on a machine that has them. */
export function announceFirstRun(spec: Spec, projectDir: string, out: (s: string) => void): void {
  const steps = firstRunSteps(spec, projectDir);
  if (steps.length === 0) return;
  out(`first run on this machine, once (cached for every later run): ${steps.join("; ")}\n`);
}
