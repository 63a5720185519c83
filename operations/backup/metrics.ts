/**
 * What the backup runner tells CloudWatch after each run (when DB_PLATFORM_METRICS_NAMESPACE is
 * set, as in the ECS task): per service, BackupsCompleted and BackupsFailed (0 or 1), and for a
 * completed backup its size and duration. The stack's alarms (components/backups/backups.ts) fire
 * when a service has no completed backup within its RPO, or on any failed run.
 */
import type { MetricDatum } from "../cloudwatch";
import { BACKUP_METRICS } from "../../components/spec/defaults";
import type { RunOutcome } from "./command";

export function backupMetricData(outcomes: readonly RunOutcome[], environment: string, at = new Date()): MetricDatum[] {
  return outcomes.flatMap((o) => {
    const Dimensions = [
      { Name: "Environment", Value: environment },
      { Name: "Service", Value: o.service },
    ];
    const datum = (MetricName: string, Value: number, Unit: MetricDatum["Unit"]): MetricDatum => ({
      MetricName,
      Dimensions,
      Value,
      Unit,
      Timestamp: at,
    });
    const data = [datum(BACKUP_METRICS.completed, o.ok ? 1 : 0, "Count"), datum(BACKUP_METRICS.failed, o.ok ? 0 : 1, "Count")];
    if (o.ok && o.manifest) data.push(datum("BackupBytes", o.manifest.dump.bytes, "Bytes"), datum("BackupSeconds", o.seconds, "Seconds"));
    return data;
  });
}
