/**
 * Backup freshness, when the stack configures backups: each service's latest committed backup
 * (its manifest in the bucket) against the stack's RPO. No backup, a backup older than the RPO,
 * or a bucket the audit cannot read are `backup-freshness` findings (high).
 */
import type { Spec } from "../../components/spec";
import { type BackupContext, openStorage } from "../backup/command";
import type { AuditFinding } from "./model";
import { backupFreshness } from "./rules/backupFreshness";

const HOUR = 3600_000;

export async function backupFindings(ctx: BackupContext, services: Spec["services"], now = new Date()): Promise<AuditFinding[]> {
  const backups = ctx.spec.backups;
  if (!backups) return [];
  const finding = (service: (typeof services)[number], object: string, message: string, fix: string): AuditFinding => ({
    severity: backupFreshness.severity,
    rule: backupFreshness.id,
    server: service.server,
    object,
    services: [service.name],
    message,
    fix,
  });
  const runFix = (service: string) =>
    `db-platform backup run --stack ${ctx.stack} --service ${service} (and check the schedule and the runner's logs)`;
  let storage;
  try {
    storage = await openStorage(ctx);
  } catch (e) {
    return services.map((s) =>
      finding(
        s,
        `backups/${s.name}`,
        `backups of ${s.name} could not be checked: ${(e as Error).message}`,
        "make the backup storage reachable",
      ),
    );
  }
  const out: AuditFinding[] = [];
  try {
    for (const s of services) {
      const object = `s3://${storage.location.bucket}/${storage.prefix(s.name)}`;
      let latest;
      try {
        latest = await storage.latest(s.name);
      } catch (e) {
        out.push(
          finding(
            s,
            object,
            `backups of ${s.name} could not be listed: ${(e as Error).message}`,
            "grant the audit read access to the prefix",
          ),
        );
        continue;
      }
      if (!latest) {
        out.push(finding(s, object, `${s.name} has no backup (no manifest under ${object})`, runFix(s.name)));
        continue;
      }
      const ageHours = (now.getTime() - Date.parse(latest.finishedAt)) / HOUR;
      if (ageHours > backups.rpoHours) {
        out.push(
          finding(
            s,
            `${object}${latest.id}`,
            `the latest backup of ${s.name} (${latest.id}) is ${ageHours.toFixed(1)} h old, older than the RPO of ${backups.rpoHours} h`,
            runFix(s.name),
          ),
        );
      }
    }
  } finally {
    storage.s3.destroy();
  }
  return out;
}
