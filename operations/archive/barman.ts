/**
 * barman-cloud, the tool of a local server's continuous archive (docs/point-in-time.md): its
 * commands from a pinned virtual environment (scripts/archive/requirements.txt, made once by
 * scripts/clients/venv.sh), run as the server's user with the stack's S3 credentials in files
 * beside the server's data, never in its data folder (a base backup copies that folder).
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { asServerUser } from "../local/postgres";

const run = promisify(execFile);

export class ArchiveError extends Error {}

let binDir: string | undefined;

/** The bin folder of barman-cloud's environment (made on first use, about 10 s). */
export function barmanBinDir(projectDir: string): string {
  if (binDir) return binDir;
  try {
    binDir = execFileSync("bash", [path.join(projectDir, "scripts/clients/venv.sh"), "--quiet", "scripts/archive/requirements.txt"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (e) {
    throw new ArchiveError(
      `barman-cloud could not be installed: ${String((e as { stderr?: string }).stderr || (e as Error).message).trim()}`,
    );
  }
  return binDir;
}

/** Where a server's archive is, and how barman-cloud reaches it. */
export interface ArchiveLocation {
  /** `s3://<bucket>/<environment>/_archive`: barman's source URL, the server's folder below it. */
  readonly url: string;
  /** barman's server name: `<server>-<system identifier>`, so a re-created cluster never mixes its WAL with the old one's. */
  readonly serverName: string;
  readonly endpoint: string;
  /** The folder holding `aws-credentials` and `aws-config` (0600, the server's user). */
  readonly credentialsDir: string;
}

/** The S3 credential files barman-cloud reads (boto3's shared files), written when they differ. */
export function writeCredentials(dir: string, key: { accessKeyId: string; secretAccessKey: string }): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: Array<[string, string]> = [
    ["aws-credentials", `[default]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`],
    ["aws-config", "[default]\nregion = us-east-1\n"],
  ];
  for (const [name, text] of files) {
    const file = path.join(dir, name);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue;
    fs.writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  }
  if (asServerUser().length > 0) execFileSync("chown", ["-R", "postgres:postgres", dir]);
}

const credentialEnv = (l: ArchiveLocation) => [
  `AWS_SHARED_CREDENTIALS_FILE=${path.join(l.credentialsDir, "aws-credentials")}`,
  `AWS_CONFIG_FILE=${path.join(l.credentialsDir, "aws-config")}`,
];
const common = (l: ArchiveLocation) => ["--cloud-provider", "aws-s3", "--endpoint-url", l.endpoint];

/**
 * A shell-quoted word (archive_command and restore_command run through the shell), with `%`
 * doubled: PostgreSQL expands `%p`, `%f`… in those commands and takes `%%` for a `%`.
 */
const sh = (s: string) => `'${s.replace(/'/g, `'"'"'`).replace(/%/g, "%%")}'`;

/**
 * archive_command and restore_command: barman-cloud-wal-archive (gzip, SSE-S3 at rest) and
 * barman-cloud-wal-restore, with the credential files named in their environment. Returned as
 * shell text; the caller quotes it as a setting.
 */
/** A value for postgresql.conf: single-quoted, quotes doubled, backslashes (escapes there) doubled. */
export const confString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

export function walCommands(l: ArchiveLocation, projectDir: string): { archive: string; restore: string } {
  const bin = barmanBinDir(projectDir);
  const prefix = `${credentialEnv(l)
    .map((e) => e.replace(/=(.*)$/, (_, v: string) => `=${sh(v)}`))
    .join(" ")}`;
  const args = [...common(l), l.url, l.serverName].map(sh).join(" ");
  return {
    archive: `${prefix} ${sh(path.join(bin, "barman-cloud-wal-archive"))} --gzip -e AES256 ${args} %p`,
    restore: `${prefix} ${sh(path.join(bin, "barman-cloud-wal-restore"))} ${args} %f %p`,
  };
}

/** One of barman-cloud's commands on this location, as the server's user; its stdout. */
export async function barman(
  projectDir: string,
  l: ArchiveLocation,
  tool: string,
  args: readonly string[],
  timeoutMs = 600_000,
): Promise<string> {
  const [cmd, ...prefix] = [...asServerUser(), "env", ...credentialEnv(l), path.join(barmanBinDir(projectDir), tool)];
  try {
    const { stdout } = await run(cmd, [...prefix, ...common(l), ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    // barman logs "ERROR: …" lines; a Python traceback's last line otherwise.
    const lines = (err.stderr || err.message).trim().split("\n");
    const errors = lines.filter((x) => / ERROR: /.test(x)).map((x) => x.replace(/^.*? ERROR: /, ""));
    const why = errors.length ? errors.slice(0, 3).join("; ") : lines.slice(-3).join(" ");
    throw new ArchiveError(`${tool} failed for ${l.url}/${l.serverName}: ${why}`);
  }
}

/** A base backup in the archive, as barman-cloud-backup-list reports it. */
export interface BaseBackup {
  readonly id: string;
  readonly status: string;
  readonly beginTime: string;
  readonly endTime: string;
  readonly beginWal: string;
  readonly endWal: string;
  readonly timeline: number;
  readonly systemId: string;
  readonly pgVersion: number;
}

interface ListedBackup {
  backup_id: string;
  status: string;
  begin_time_iso: string;
  end_time_iso: string;
  begin_wal: string;
  end_wal: string;
  timeline: number;
  systemid: string;
  version: number;
}

/** The archive's base backups, oldest first; DONE ones only unless `all`. */
export async function listBaseBackups(projectDir: string, l: ArchiveLocation, all = false): Promise<BaseBackup[]> {
  const text = await barman(projectDir, l, "barman-cloud-backup-list", ["--format", "json", l.url, l.serverName], 120_000);
  const listed = (JSON.parse(text) as { backups_list: ListedBackup[] }).backups_list;
  return listed
    .map((b) => ({
      id: b.backup_id,
      status: b.status,
      beginTime: b.begin_time_iso,
      endTime: b.end_time_iso,
      beginWal: b.begin_wal,
      endWal: b.end_wal,
      timeline: b.timeline,
      systemId: b.systemid,
      pgVersion: b.version,
    }))
    .filter((b) => all || b.status === "DONE")
    .sort((a, b) => Date.parse(a.endTime) - Date.parse(b.endTime));
}
