/**
 * Where a point-in-time run works (`.db-platform/local/<stack>/recovery/`): its scratch clusters
 * `recovery.<server>.<stamp>`, its extracted dumps `extract.<service>.<stamp>` (a service's data:
 * private, removed afterwards), one lock per server, and an in-place restore's journal
 * `<service>.json`. Names are dotted: a server or service name has no dot, so one never matches
 * another's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BackupCommandError, type BackupContext } from "../backup/command";
import { localRoot } from "../local/local";
import type { LocalPostgres } from "../local/postgres";
import { isAlive } from "../local/processes";

export function workDir(ctx: BackupContext): string {
  const dir = path.join(localRoot(ctx.projectDir, ctx.stack), "recovery");
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** A folder for one service's extracted dump (0700). */
export function extractDir(dir: string, service: string): string {
  const out = path.join(dir, `extract.${service}.${Date.now().toString(36)}`);
  fs.mkdirSync(out, { mode: 0o700 });
  return out;
}

/**
 * Hold the server's recovery lock for this process: a second restore or drill of the same server
 * would remove this one's scratch cluster as a leftover. A lock whose process is gone is taken over.
 */
export function lockServer(dir: string, server: string): () => void {
  const file = path.join(dir, `recovery.${server}.lock`);
  try {
    const pid = Number(fs.readFileSync(file, "utf8").trim());
    if (pid !== process.pid && isAlive(pid)) {
      throw new BackupCommandError(`another restore or drill of server ${server} is running (pid ${pid}): wait for it, or stop it first`);
    }
  } catch (e) {
    if (e instanceof BackupCommandError) throw e;
  }
  fs.writeFileSync(file, String(process.pid), { mode: 0o600 });
  return () => fs.rmSync(file, { force: true });
}

/** What a killed run of this server left: its scratch clusters (stopped) and extracted dumps (an RDS server: its dumps only). */
export async function clearLeftovers(
  dir: string,
  server: string,
  live: LocalPostgres | undefined,
  services: readonly string[],
): Promise<void> {
  for (const entry of fs.readdirSync(dir)) {
    const scratch = entry.startsWith(`recovery.${server}.`) && !entry.endsWith(".lock");
    const dump = services.some((s) => entry.startsWith(`extract.${s}.`));
    if (!scratch && !dump) continue;
    const data = path.join(dir, entry, "data");
    if (scratch && live && fs.existsSync(path.join(data, "postmaster.pid"))) {
      await live.tool("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w"]).catch(() => undefined);
    }
    fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}
