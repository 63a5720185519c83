/**
 * The continuous archive of each local server (docs/point-in-time.md): a server whose archiving
 * stopped, fails or falls behind, or whose base backups are stale, cannot be recovered to a recent
 * moment: an `archive-health` finding (high).
 */
import type { Spec } from "../../components/spec";
import { localArchive, localInstances, localServers } from "../local/local";
import { type ArchiveReading, readArchive } from "../archive/status";
import type { AuditFinding } from "./model";
import { archiveHealth } from "./rules/archiveHealth";

/** A segment's position: its log and segment numbers (16 MB segments, 256 to a log). */
const position = (wal: string) => parseInt(wal.slice(8, 16), 16) * 256 + parseInt(wal.slice(16, 24), 16);

/** What is wrong with one archive reading, if anything (`current`: the server's current WAL segment). */
export function archiveProblems(a: ArchiveReading, current: string | undefined, now = Date.now()): string[] {
  const h = a.health;
  if (!h) return [`its archiver could not be read: ${a.error}`];
  const out: string[] = [];
  if (h.archiveMode !== "on") {
    out.push(
      h.pendingRestart
        ? "archiving is configured but waits for a restart of the server"
        : `archiving is off (archive_mode ${h.archiveMode})`,
    );
  }
  if (h.failing) out.push(`archiving fails: the last attempt, of ${h.lastFailedWal}, failed at ${h.lastFailedAt}`);
  // Segment names only (a .history or .backup file names no position).
  const segment = (w?: string) => (w && /^[0-9A-F]{24}/.test(w) ? w.slice(0, 24) : undefined);
  if (segment(current) && h.archiveMode === "on" && (segment(h.lastArchivedWal) || !h.lastArchivedWal)) {
    const waiting = position(current as string) - (h.lastArchivedWal ? position(h.lastArchivedWal) : 0) - 1;
    if (waiting > 1)
      out.push(`${waiting} completed WAL segment(s) wait unarchived (last archived ${h.lastArchivedWal ?? "none"}, current ${current})`);
  }
  const newest = a.newestBaseBackup;
  if (a.error) out.push(`its base backups could not be listed: ${a.error}`);
  else if (!newest) out.push("it has no base backup");
  else if (now - Date.parse(newest.endTime) > 2 * a.baseBackupHours * 3_600_000) {
    out.push(
      `its newest base backup ${newest.id} is ${((now - Date.parse(newest.endTime)) / 3_600_000).toFixed(1)} h old (a base backup is due every ${a.baseBackupHours} h)`,
    );
  }
  return out;
}

export async function archiveFindings(
  spec: Spec,
  stack: string,
  projectDir: string,
  services: Spec["services"],
  now = Date.now(),
): Promise<AuditFinding[]> {
  const out: AuditFinding[] = [];
  for (const server of localServers(spec)) {
    const concerned = services.filter((s) => s.server === server.name).map((s) => s.name);
    if (concerned.length === 0) continue;
    const { primary } = localInstances(server, stack, projectDir, "");
    const archive = localArchive(spec, primary, stack, projectDir);
    if (!archive || !(await primary.isRunning())) continue;
    const reading = await readArchive(archive);
    let current: string | undefined;
    try {
      const c = await primary.superuserClient();
      try {
        current = (await c.query<{ w: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS w")).rows[0].w;
      } finally {
        await c.end();
      }
    } catch {
      // the reading says why
    }
    for (const problem of archiveProblems(reading, current, now)) {
      out.push({
        severity: archiveHealth.severity,
        rule: archiveHealth.id,
        server: server.name,
        object: `${archive.url}/${server.name}`,
        services: concerned,
        message: `server ${server.name} cannot be recovered to a recent moment: ${problem}`,
        fix: problem.includes("restart")
          ? `db-platform local stop --stack ${stack}, then db-platform local start --stack ${stack}`
          : /could not|fails|unarchived/.test(problem)
            ? `make the stack's S3 server reachable (db-platform local start --stack ${stack}) and read ${primary.logFile}`
            : `db-platform backup base --stack ${stack} --server ${server.name} (and schedule db-platform backup run)`,
      });
    }
  }
  return out;
}
