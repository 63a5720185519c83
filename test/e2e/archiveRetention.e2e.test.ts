/**
 * The archive's retention for real (docs/point-in-time.md, "Base backups"): on the dev stack
 * applied through the real engine and plugins, with its MinIO, each `backup base` has
 * barman-cloud-backup-delete apply the recovery window. A window of days cannot pass in a test,
 * so two base backups are aged by rewriting the times in their `backup.info` (what barman reads
 * their age from); the next `backup base` then deletes the older one and the WAL only it needed,
 * keeps the newest one before the window (the one a recovery to the window's first moment
 * starts from), and a restore inside the window still works. PostgreSQL 16.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localArchive } from "../../operations/local/local";
import type { BaseBackup } from "../../operations/archive/barman";
import { type AppliedStack, startAppliedDevStack } from "../helpers/appliedDevStack";
import { runCli } from "../helpers/cli";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { ROOT } from "../helpers/synth";

const BUCKET = "db-platform-dev-backups";
const DAY = 86_400_000;

if (!ENGINE.ready) {
  describe.skip("archive retention", () => {
    it(SKIPPED_BECAUSE, () => undefined);
  });
}

describe.runIf(ENGINE.ready)("archive retention on PostgreSQL 16: base backups and WAL past the recovery window deleted", () => {
  let stack: AppliedStack;
  let s3: S3Client;
  const cli = (args: string[]) => runCli([...args, "--stack", stack.stack]);
  const backups = async (): Promise<BaseBackup[]> => localArchive(stack.ctx.spec, stack.server, stack.stack, ROOT)!.baseBackups();
  const keys = async (part: "base" | "wals") => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "dev/_archive/", ContinuationToken: token }));
      out.push(...(listed.Contents ?? []).map((o) => o.Key as string).filter((k) => k.includes(`/${part}/`)));
      token = listed.NextContinuationToken;
    } while (token);
    return out.sort();
  };
  /** barman's `YYYY-MM-DD HH:MM:SS.ffffff+00:00`, `days` ago. */
  const daysAgo = (days: number) => `${new Date(Date.now() - days * DAY).toISOString().replace("T", " ").replace("Z", "000+00:00")}`;
  /** Rewrite a base backup's begin and end times as `days` ago. */
  async function age(id: string, days: number): Promise<void> {
    const key = (await keys("base")).find((k) => k.endsWith(`/base/${id}/backup.info`)) as string;
    expect(key).toBeTruthy();
    const info = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
    const aged = info.replace(
      /^(begin_time|end_time)=.*$/gm,
      (_, field: string) => `${field}=${daysAgo(field === "begin_time" ? days + 0.001 : days)}`,
    );
    expect(aged).not.toBe(info);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: aged }));
  }

  beforeAll(async () => {
    stack = await startAppliedDevStack("retention-16", { s3: true, version: "16" });
    s3 = new S3Client(stack.s3!.clientConfig());
  }, 300_000);

  afterAll(async () => {
    s3?.destroy();
    await stack?.cleanup();
  }, 120_000);

  it("deletes the base backup older than the newest one before the window, and the WAL before that one", async () => {
    await stack.sql("orders_db", "INSERT INTO orders.orders (item) SELECT g FROM generate_series(1, 50) g");
    const second = cli(["backup", "base"]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/base backup \d{8}T\d{6} .*; 0 past the recovery window deleted/);
    const [oldest, older] = await backups();
    expect(older).toBeTruthy();
    // The recovery window is 7 days (dev): one 40 days old, one 30.
    await age(oldest.id, 40);
    await age(older.id, 30);
    const walsBefore = await keys("wals");
    const segment = (k: string) => (/([0-9A-F]{24})(\.gz)?$/.exec(k) ?? [])[1] ?? "";
    expect(walsBefore.some((k) => segment(k) !== "" && segment(k) < older.beginWal)).toBe(true);

    await stack.sql("orders_db", "INSERT INTO orders.orders (item) VALUES (51)");
    const third = cli(["backup", "base"]);
    expect([third.code, third.stderr]).toEqual([0, ""]);
    expect(third.stdout).toMatch(/base backup \d{8}T\d{6} .*; 1 past the recovery window deleted/);
    const ids = (await backups()).map((b) => b.id);
    expect(ids).not.toContain(oldest.id);
    expect(ids).toContain(older.id);
    expect(ids).toHaveLength(2);
    expect((await keys("base")).some((k) => k.includes(`/base/${oldest.id}/`))).toBe(false);
    // The WAL only the deleted backup needed is gone; from the kept one's first segment on, it stays.
    const walsAfter = (await keys("wals")).map(segment).filter((s) => s !== "");
    expect(walsAfter.filter((s) => s < older.beginWal)).toEqual([]);
    expect(walsAfter.length).toBeGreaterThan(0);

    // What the window promises still holds: a moment after the kept backup is recovered.
    const restored = cli(["restore", "--service", "orders", "--to-time", new Date().toISOString(), "--json"]);
    expect([restored.code, restored.stderr]).toEqual([0, ""]);
    const r = JSON.parse(restored.stdout) as { into: string; restore: { rows: number } };
    expect(r.restore.rows).toBe(51);
    await stack.sql("postgres", `DROP DATABASE ${r.into} WITH (FORCE)`);
  });
});
