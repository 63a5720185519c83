/**
 * The dev stack's S3: a real S3-compatible server (MinIO, scripts/s3/minio.sh) on 127.0.0.1,
 * objects on disk under the stack's local folder, root credentials generated once per stack and
 * kept in a 0600 file beside the data with MinIO's KMS key. The backup bucket is created with
 * versioning on and default encryption (SSE-S3), like the AWS one. Backups reach it through the same S3 client code as AWS.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { isAlive } from "./processes";

export class LocalS3Error extends Error {}

export interface LocalS3Options {
  /** Folder holding `data/`, `credentials.json`, `minio.log` and `minio.pid`. */
  readonly dir: string;
  readonly port: number;
  readonly projectDir: string;
}

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** MinIO's static KMS key (32 random bytes, base64): objects are encrypted at rest with it (SSE-S3). */
  readonly kmsKey?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalS3 {
  readonly dataDir: string;
  readonly logFile: string;
  private readonly pidFile: string;
  private readonly credentialsFile: string;

  constructor(readonly opts: LocalS3Options) {
    this.dataDir = path.join(opts.dir, "data");
    this.logFile = path.join(opts.dir, "minio.log");
    this.pidFile = path.join(opts.dir, "minio.pid");
    this.credentialsFile = path.join(opts.dir, "credentials.json");
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.opts.port}`;
  }

  /** S3 client settings for this server (path-style addressing, its root credentials). */
  clientConfig(): S3ClientConfig {
    return { endpoint: this.endpoint, region: "us-east-1", forcePathStyle: true, credentials: this.credentials() };
  }

  /** The root access key (what S3 clients sign with). */
  credentials(): { accessKeyId: string; secretAccessKey: string } {
    const { accessKeyId, secretAccessKey } = this.stored();
    return { accessKeyId, secretAccessKey };
  }

  private stored(): Credentials {
    if (!fs.existsSync(this.credentialsFile)) {
      throw new LocalS3Error(`no credentials in ${this.credentialsFile}: the local S3 server was never started`);
    }
    return JSON.parse(fs.readFileSync(this.credentialsFile, "utf8")) as Credentials;
  }

  pid(): number | undefined {
    if (!fs.existsSync(this.pidFile)) return undefined;
    const pid = Number(fs.readFileSync(this.pidFile, "utf8").trim());
    return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
  }

  async isRunning(): Promise<boolean> {
    return this.pid() !== undefined && (await this.healthy());
  }

  private async healthy(): Promise<boolean> {
    try {
      const r = await fetch(`${this.endpoint}/minio/health/live`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    } catch {
      return false;
    }
  }

  /** Start (first time: generate credentials), wait until it answers, make sure `buckets` exist versioned. */
  async start(buckets: readonly string[] = []): Promise<void> {
    if (!(await this.isRunning())) {
      const binary = this.binary();
      fs.mkdirSync(this.dataDir, { recursive: true });
      if (!fs.existsSync(this.credentialsFile)) {
        const creds: Credentials = {
          accessKeyId: `dbp-${randomBytes(6).toString("hex")}`,
          secretAccessKey: randomBytes(24).toString("base64url"),
        };
        fs.writeFileSync(this.credentialsFile, JSON.stringify(creds), { mode: 0o600 });
      }
      // A server first started before objects were encrypted gets its key now (older objects stay readable).
      if (!this.stored().kmsKey) {
        fs.writeFileSync(this.credentialsFile, JSON.stringify({ ...this.stored(), kmsKey: randomBytes(32).toString("base64") }), {
          mode: 0o600,
        });
      }
      const { accessKeyId, secretAccessKey, kmsKey } = this.stored();
      const log = fs.openSync(this.logFile, "a");
      const child = spawn(binary, ["server", this.dataDir, "--address", `127.0.0.1:${this.opts.port}`, "--quiet"], {
        detached: true,
        stdio: ["ignore", log, log],
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          MINIO_ROOT_USER: accessKeyId,
          MINIO_ROOT_PASSWORD: secretAccessKey,
          MINIO_KMS_SECRET_KEY: `db-platform:${kmsKey}`,
          MINIO_BROWSER: "off",
          MINIO_UPDATE: "off",
        },
      });
      fs.closeSync(log);
      child.unref();
      fs.writeFileSync(this.pidFile, String(child.pid));
      const deadline = Date.now() + 30_000;
      while (!(await this.healthy())) {
        if (child.exitCode !== null || !isAlive(child.pid as number)) {
          const last = this.tail().trim().split("\n").pop() ?? "";
          throw new LocalS3Error(
            `MinIO (${binary}) exited at start: ${last || "no output"} (log: ${this.logFile}); fix it, or set DB_PLATFORM_MINIO to another minio binary (or to build, for the pinned one)`,
          );
        }
        if (Date.now() > deadline) throw new LocalS3Error(`MinIO did not answer on ${this.endpoint} within 30 s; see ${this.logFile}`);
        await sleep(100);
      }
    }
    const s3 = new S3Client(this.clientConfig());
    try {
      for (const bucket of buckets) {
        try {
          await s3.send(new CreateBucketCommand({ Bucket: bucket }));
        } catch (e) {
          if (!(e instanceof BucketAlreadyOwnedByYou)) throw e;
        }
        await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }));
        // Every object encrypted at rest by default, as the AWS bucket is (SSE-S3 with MinIO's key).
        await s3.send(
          new PutBucketEncryptionCommand({
            Bucket: bucket,
            ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
          }),
        );
      }
    } finally {
      s3.destroy();
    }
  }

  /**
   * Objects under `prefix` that were deleted or overwritten (older versions, delete markers) are
   * removed after `days`: the archive's retention deletes base backups and WAL in a versioned bucket,
   * and its space is given back (MinIO's lifecycle scanner does it).
   */
  async expireOldVersions(bucket: string, prefix: string, days: number): Promise<void> {
    const s3 = new S3Client(this.clientConfig());
    try {
      await s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: bucket,
          LifecycleConfiguration: {
            Rules: [
              {
                ID: "db-platform-archive-retention",
                Status: "Enabled",
                Filter: { Prefix: prefix },
                NoncurrentVersionExpiration: { NoncurrentDays: days },
                Expiration: { ExpiredObjectDeleteMarker: true },
              },
            ],
          },
        }),
      );
    } finally {
      s3.destroy();
    }
  }

  /** Stop it (objects stay on disk). */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(pid)) process.kill(pid, "SIGKILL");
    fs.rmSync(this.pidFile, { force: true });
  }

  /** Stop it and delete its objects and credentials. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.opts.dir, { recursive: true, force: true });
  }

  /** The MinIO binary: DB_PLATFORM_MINIO, an installed one, else the pinned build (scripts/s3/minio.sh says on stderr what it does). */
  private binary(): string {
    const r = spawnSync("bash", [path.join(this.opts.projectDir, "scripts/s3/minio.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (r.status !== 0) throw new LocalS3Error(`no MinIO to run (${r.error?.message ?? "the minio: line above says why"})`);
    return r.stdout.trim();
  }

  private tail(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-10).join("\n");
    } catch {
      return "";
    }
  }
}
