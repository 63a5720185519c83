/**
 * Recovery time of a point-in-time restore of one service (docs/point-in-time.md) with `GB` of
 * service data, on a local server archiving with barman-cloud into a local MinIO: the same steps
 * as `db-platform restore --to-time` (operations/archive: the scratch cluster recovered to the
 * moment, the service's per-service dump taken out of it, restored into a new database on the
 * live server, compared), timed step by step, twice:
 *   - from a base backup taken before the data was written (every byte replayed from archived WAL),
 *   - from a base backup taken after it (little WAL to replay).
 * Also: the base backups' and the archiving's own times. Usage: npm run bench:pitr [-- <major> <GB>]
 * (defaults: 16 1).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalArchive } from "../../operations/archive/archive";
import { recoverToTime } from "../../operations/archive/recover";
import { FolderStore } from "../../operations/backup/exchange";
import { restoreBackup } from "../../operations/backup/restore";
import { runBackup } from "../../operations/backup/runner";
import { freePort } from "../../operations/local/ports";
import { LocalPostgres, postgresBinDir } from "../../operations/local/postgres";
import { LocalS3 } from "../../operations/local/s3";
import { fillService } from "./serviceData";

const ROOT = path.resolve(__dirname, "../..");
const LOGIN = { user: "svc_owner", password: "bench-owner-password" };
const since = (t: number) => (performance.now() - t) / 1000;

async function restoreAt(archive: LocalArchive, server: LocalPostgres, at: Date, dir: string, label: string): Promise<string> {
  const t0 = performance.now();
  const recovered = await recoverToTime(archive, at, dir, 4 * 3_600_000);
  const recovery = since(t0);
  const store = new FolderStore(fs.mkdtempSync(path.join(dir, "extract-")), "bench");
  const tools = (major: string) => postgresBinDir(major, ROOT);
  try {
    const t1 = performance.now();
    const manifest = await runBackup(
      store,
      {
        service: "svc",
        server: "pg",
        database: "svc",
        schemas: ["svc"],
        serverMajor: server.opts.version,
        connection: { host: recovered.server.socketDir, port: recovered.server.opts.port, user: "postgres" },
        role: LOGIN.user,
        dumpedAs: LOGIN.user,
      },
      { stack: "bench", environment: "bench", clientTools: tools },
    );
    await recovered.server.destroy();
    const extraction = since(t1);
    const t2 = performance.now();
    const r = await restoreBackup(
      store,
      manifest,
      {
        connection: { host: server.socketDir, port: server.opts.port, user: "postgres" },
        database: `svc_at_${label}`,
        ownerRole: LOGIN.user,
      },
      tools,
    );
    const restore = since(t2);
    const mib = (manifest.dump.bytes / 2 ** 20).toFixed(0);
    return `| ${label} | ${recovered.backup.id} | ${recovery.toFixed(1)} | ${extraction.toFixed(1)} (${mib} MiB dump) | ${restore.toFixed(1)} (${r.rows} rows) | ${since(t0).toFixed(1)} |`;
  } finally {
    fs.rmSync(store.dir, { recursive: true, force: true });
    await recovered.server.destroy();
  }
}

async function main(): Promise<void> {
  const [major = "16", size = "1"] = process.argv.slice(2);
  const gb = Number(size);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-pitr-"));
  fs.chmodSync(dir, 0o755);
  const s3 = new LocalS3({ dir: path.join(dir, "s3"), port: await freePort(), projectDir: ROOT });
  const server = new LocalPostgres({
    name: "pg",
    version: major,
    host: "127.0.0.1",
    port: await freePort(),
    adminUser: "platform_admin",
    adminPassword: "bench",
    root: dir,
    projectDir: ROOT,
  });
  const archive = new LocalArchive({
    server,
    s3,
    bucket: "bench-archive",
    environment: "bench",
    spec: { timeoutSeconds: 60, baseBackupHours: 24, recoveryWindowDays: 7 },
    projectDir: ROOT,
  });
  const lines: string[] = [];
  try {
    await s3.start(["bench-archive"]);
    server.beforeStart = async () => void (await archive.configure());
    await server.start();
    let t = performance.now();
    const empty = await archive.baseBackup();
    lines.push(`base backup of the empty cluster: ${since(t).toFixed(1)} s`);
    t = performance.now();
    const rows = await fillService(server, gb, LOGIN);
    const written = since(t);
    t = performance.now();
    await archive.flush(3_600_000);
    lines.push(
      `${gb} GB written (${rows} rows) in ${written.toFixed(1)} s; the archive caught up ${since(t).toFixed(1)} s after the last write`,
    );
    const afterLoad = new Date();
    const table = [
      "| from | base backup | recovery (s) | extraction (s) | restore (s) | RTO (s) |",
      "| --- | --- | --- | --- | --- | --- |",
    ];
    table.push(await restoreAt(archive, server, afterLoad, dir, "wal"));
    const full = await archive.baseBackup();
    lines.push(`base backup with the data: ${full.seconds.toFixed(1)} s (empty: ${empty.seconds.toFixed(1)} s)`);
    table.push(await restoreAt(archive, server, new Date(), dir, "base"));
    console.log(`PostgreSQL ${major}, ${gb} GB, ${os.cpus().length} cores\n${lines.join("\n")}\n\n${table.join("\n")}`);
  } finally {
    await server.destroy().catch(() => undefined);
    await s3.destroy().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
