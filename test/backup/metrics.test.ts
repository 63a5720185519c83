import { describe, expect, it } from "vitest";
import type { RunOutcome } from "../../operations/backup/command";
import { backupMetricData } from "../../operations/backup/metrics";
import type { BackupManifest } from "../../operations/backup/storage";

describe("backup metrics for the CloudWatch alarms", () => {
  it("counts a completed and a failed service, with size and duration for the completed one", () => {
    const at = new Date("2026-11-24T03:00:00Z");
    const manifest = { dump: { bytes: 1234 } } as BackupManifest;
    const outcomes: RunOutcome[] = [
      { service: "inventory", ok: true, manifest, seconds: 12.5 },
      { service: "orders", ok: false, error: "pg_dump exited with code 1", seconds: 3 },
    ];
    const d = (service: string, MetricName: string, Value: number, Unit: string) => ({
      MetricName,
      Dimensions: [
        { Name: "Environment", Value: "prod" },
        { Name: "Service", Value: service },
      ],
      Value,
      Unit,
      Timestamp: at,
    });
    expect(backupMetricData(outcomes, "prod", at)).toEqual([
      d("inventory", "BackupsCompleted", 1, "Count"),
      d("inventory", "BackupsFailed", 0, "Count"),
      d("inventory", "BackupBytes", 1234, "Bytes"),
      d("inventory", "BackupSeconds", 12.5, "Seconds"),
      d("orders", "BackupsCompleted", 0, "Count"),
      d("orders", "BackupsFailed", 1, "Count"),
    ]);
  });
});
