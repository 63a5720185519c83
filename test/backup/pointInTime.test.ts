/**
 * The parts of a point-in-time restore that need no server (operations/archive): which base
 * backup a moment starts from, the moments refused before anything runs, the new database's
 * name, and the audit's reading of an archive (operations/audit/archives.ts).
 */
import { describe, expect, it } from "vitest";
import { type BaseBackup, confString, walCommands } from "../../operations/archive/barman";
import { databaseAt } from "../../operations/archive/pointInTime";
import { baseBackupFor, checkTargetTime } from "../../operations/archive/recover";
import type { ArchiveReading } from "../../operations/archive/status";
import { archiveProblems } from "../../operations/audit/archives";
import { runCli } from "../helpers/cli";
import { ROOT } from "../helpers/synth";

const backup = (id: string, endTime: string): BaseBackup => ({
  id,
  status: "DONE",
  beginTime: endTime,
  endTime,
  beginWal: "000000010000000000000002",
  endWal: "000000010000000000000002",
  timeline: 1,
  systemId: "1",
  pgVersion: 160000,
});
const BACKUPS = [backup("a", "2026-12-01T03:00:00Z"), backup("b", "2026-12-02T03:00:00Z"), backup("c", "2026-12-03T03:00:00Z")];
const NOW = new Date("2026-12-04T12:00:00Z");

describe("the base backup a moment is recovered from", () => {
  it("is the newest that ended before the moment", () => {
    expect(baseBackupFor(BACKUPS, new Date("2026-12-02T14:02:00Z"), "local").id).toBe("b");
    expect(baseBackupFor(BACKUPS, new Date("2026-12-02T03:00:00Z"), "local").id).toBe("b");
    expect(baseBackupFor(BACKUPS, new Date("2026-12-04T11:00:00Z"), "local").id).toBe("c");
  });

  it("does not exist before the oldest base backup ended, nor without any", () => {
    expect(() => baseBackupFor(BACKUPS, new Date("2026-12-01T02:59:59Z"), "local")).toThrow(
      "2026-12-01T02:59:59.000Z is before the oldest base backup of server local ended (2026-12-01T03:00:00Z): the archive recovers to moments from then on",
    );
    expect(() => baseBackupFor([], NOW, "local")).toThrow(
      "server local has no base backup in its archive yet: take one with db-platform backup base --server local",
    );
  });
});

describe("--to-time", () => {
  it("takes an ISO 8601 time with its zone", () => {
    expect(checkTargetTime("2026-12-04T14:02:00+01:00", new Date("2026-12-04T14:00:00Z")).toISOString()).toBe("2026-12-04T13:02:00.000Z");
    expect(checkTargetTime("2026-12-04 11:02:00.250Z", NOW).toISOString()).toBe("2026-12-04T11:02:00.250Z");
    expect(checkTargetTime("2026-12-04T11:02+0100", NOW).toISOString()).toBe("2026-12-04T10:02:00.000Z");
    expect(checkTargetTime("2024-02-29T00:00:00Z", NOW).toISOString()).toBe("2024-02-29T00:00:00.000Z");
  });

  it.each([
    ["2026-12-04T14:02", "give the time zone (Z for UTC, or +01:00)"],
    ["yesterday", "expected an ISO 8601 time with its zone"],
    ["2026-13-45T09:00:00Z", "not a time of the calendar"],
    ["2026-02-30T10:00:00Z", "not a time of the calendar"],
    ["2026-12-04T24:00:00Z", "not a time of the calendar"],
    ["2026-12-04T10:00:00.123456Z", "give at most milliseconds"],
    ["2026-12-04T12:00:01Z", "is in the future (now 2026-12-04T12:00:00.000Z): nothing to recover yet"],
  ])("refuses %s", (value, message) => {
    expect(() => checkTargetTime(value, NOW)).toThrow(message);
  });

  it("names a new database after the service and the moment, within PostgreSQL's 63 bytes", () => {
    expect(databaseAt("orders", new Date("2026-12-04T14:02:00.5Z"))).toBe("orders_at_20261204t140200");
    expect(databaseAt("sv-sdk", NOW)).toBe("sv_sdk_at_20261204t120000");
    expect(databaseAt("a".repeat(80), NOW)).toHaveLength(63);
  });
});

describe("the audit's reading of an archive", () => {
  const healthy: ArchiveReading = {
    server: "local",
    url: "s3://b/dev/_archive",
    baseBackupHours: 24,
    recoveryWindowDays: 7,
    baseBackups: 2,
    newestBaseBackup: { id: "c", endTime: "2026-12-04T03:00:00Z" },
    health: {
      server: "local",
      archiveMode: "on",
      pendingRestart: false,
      archived: 40,
      failed: 0,
      lastArchivedWal: "00000001000000000000002A",
      lastArchivedAt: "2026-12-04T11:59:00Z",
      secondsSinceArchived: 60,
      timeoutSeconds: 60,
      failing: false,
    },
  };
  const withHealth = (h: Partial<NonNullable<ArchiveReading["health"]>>): ArchiveReading => ({
    ...healthy,
    health: { ...healthy.health!, ...h },
  });

  it("finds nothing wrong with an archive that keeps up and a fresh base backup", () => {
    expect(archiveProblems(healthy, "00000001000000000000002B", NOW.getTime())).toEqual([]);
    // The last file archived can be a backup label or a timeline history: no position to compare.
    expect(archiveProblems(withHealth({ lastArchivedWal: "00000002.history" }), "00000002000000000000002B", NOW.getTime())).toEqual([]);
    expect(
      archiveProblems(
        withHealth({ lastArchivedWal: "00000001000000000000002A.00000028.backup" }),
        "00000001000000000000002B",
        NOW.getTime(),
      ),
    ).toEqual([]);
  });

  it.each<[string, ArchiveReading, string, string]>([
    ["off", withHealth({ archiveMode: "off" }), "00000001000000000000002B", "archiving is off (archive_mode off)"],
    [
      "waiting for a restart",
      withHealth({ archiveMode: "off", pendingRestart: true }),
      "00000001000000000000002B",
      "archiving is configured but waits for a restart of the server",
    ],
    [
      "failing",
      withHealth({ failing: true, lastFailedWal: "00000001000000000000002B", lastFailedAt: "2026-12-04T11:59:30Z" }),
      "00000001000000000000002C",
      "archiving fails: the last attempt, of 00000001000000000000002B, failed at 2026-12-04T11:59:30Z",
    ],
    [
      "behind (across a log boundary)",
      withHealth({ lastArchivedWal: "0000000100000000000000FE" }),
      "000000010000000100000002",
      "3 completed WAL segment(s) wait unarchived (last archived 0000000100000000000000FE, current 000000010000000100000002)",
    ],
    [
      "without a base backup",
      { ...healthy, newestBaseBackup: undefined, baseBackups: 0 },
      "00000001000000000000002B",
      "it has no base backup",
    ],
    [
      "with a stale base backup",
      { ...healthy, newestBaseBackup: { id: "a", endTime: "2026-12-02T03:00:00Z" } },
      "00000001000000000000002B",
      "its newest base backup a is 57.0 h old (a base backup is due every 24 h)",
    ],
    [
      "unreadable",
      { ...healthy, health: undefined, error: "connection refused" },
      "00000001000000000000002B",
      "its archiver could not be read: connection refused",
    ],
  ])("reports an archive %s", (_what, reading, current, problem) => {
    expect(archiveProblems(reading, current, NOW.getTime())).toEqual([problem]);
  });
});

describe("archive_command and restore_command", () => {
  it("quote every word for the shell and double a % that is not PostgreSQL's placeholder", () => {
    const l = {
      url: "s3://b/dev/_archive",
      serverName: "local-1",
      endpoint: "http://127.0.0.1:9400",
      credentialsDir: "/data/50%'s/archive",
    };
    const { archive, restore } = walCommands(l, ROOT);
    expect(archive).toContain(`AWS_SHARED_CREDENTIALS_FILE='/data/50%%'"'"'s/archive/aws-credentials'`);
    expect(archive.endsWith(" 's3://b/dev/_archive' 'local-1' %p")).toBe(true);
    expect(restore.endsWith(" 's3://b/dev/_archive' 'local-1' %f %p")).toBe(true);
    expect(confString(String.raw`a'b\c`)).toBe(String.raw`'a''b\\c'`);
  });
});

describe("db-platform restore --to-time, refused before anything runs", () => {
  it.each([
    [
      ["--stack", "prod", "--service", "orders", "--to-time", "2026-01-01T00:00:00Z"],
      "server main (hosting rds): give --server-url main=postgresql://<admin>@<host>:<port>/postgres for a login that may act as orders_owner",
    ],
    [["--stack", "dev", "--service", "nope", "--to-time", "2026-01-01T00:00:00Z"], "nope"],
    [
      ["--stack", "dev", "--service", "orders", "--to-time", "2026-01-01T00:00:00Z", "--in-place", "--target", "postgresql://a@b/c"],
      "give --in-place or --target <url>, not both",
    ],
  ])("%j", (args, message) => {
    const r = runCli(["restore", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
