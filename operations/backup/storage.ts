/**
 * Where backups live: one S3 bucket (AWS, or the project's local S3-compatible server), one
 * prefix per environment and service, a dump object and, written last as the commit marker, its
 * manifest. A dump without a manifest is not a backup: `list`, `restore` and `drill` never see it.
 *
 *   <environment>/<service>/<id>.dump            pg_dump custom format
 *   <environment>/<service>/<id>.manifest.json   what was dumped, with sha256, row counts, schema hash
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Readable } from "node:stream";

// The SDK warns on every Node 20 process that versions published after January 2027 need Node 22;
// this one is pinned, so the warning would only bury the command's own messages on stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export const MANIFEST_FORMAT = "db-platform-backup/1";
/** An export (`db-platform export`): the same content, made to cross to another environment's stack. */
export const EXPORT_FORMAT = "db-platform-export/1";

export interface TableCount {
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
}

export interface BackupManifest {
  readonly format: typeof MANIFEST_FORMAT | typeof EXPORT_FORMAT;
  readonly id: string;
  readonly stack: string;
  readonly environment: string;
  readonly service: string;
  readonly server: string;
  readonly database: string;
  readonly schemas: readonly string[];
  /** The PostgreSQL server's version, and pg_dump's. */
  readonly serverVersion: string;
  readonly pgDumpVersion: string;
  /** The login whose privileges the dump ran with. */
  readonly dumpedAs: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly dump: { readonly key: string; readonly bytes: number; readonly sha256: string; readonly versionId?: string };
  /** Exact row counts per table, read in the dump's own snapshot. */
  readonly tables: readonly TableCount[];
  /** sha256 of the canonical schema description (docs/backups.md), read in the same snapshot. */
  readonly schemaHash: string;
  /**
   * The same description in the form two PostgreSQL majors give alike (views by their columns,
   * functions by result type and source; docs/upgrades.md), to compare a service across a major
   * upgrade. Absent in manifests written before it was recorded.
   */
  readonly schemaHashAcrossMajors?: string;
  /** Exports only: who exported it (`user@host`), and why, as they said. */
  readonly exportedBy?: string;
  readonly reason?: string;
}

/**
 * Where a dump and its manifest are written and read: the backup bucket (BackupStorage), or the
 * file or S3 location an export goes to (exchange.ts).
 */
export interface DumpStore {
  /** Where the dump of this service's backup or export `id` goes. */
  dumpKey(service: string, id: string): string;
  uploadDump(key: string, body: Readable, onProgress?: (bytes: number) => void): Promise<{ versionId?: string }>;
  /** The commit marker, written last. */
  putManifest(manifest: BackupManifest): Promise<void>;
  deleteQuietly(key: string): Promise<void>;
  openDump(manifest: BackupManifest): Promise<Readable>;
  /** Something to name the store in messages (`s3://bucket/prefix/`, a folder). */
  describe(key: string): string;
  /** What to try when a dump does not match its manifest. */
  readonly whenCorrupted: string;
}

/** A manifest's JSON, checked for one of the accepted formats; `where` names it in errors. */
export function parseManifest(text: string, where: string, formats: readonly string[]): BackupManifest {
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(text) as BackupManifest;
  } catch {
    throw new BackupStorageError(`${where} is not a manifest (not JSON)`);
  }
  if (!formats.includes(manifest?.format)) {
    throw new BackupStorageError(`${where}: unknown manifest format ${String(manifest?.format)} (expected ${formats.join(" or ")})`);
  }
  return manifest;
}

export class BackupStorageError extends Error {}

export interface StorageLocation {
  readonly bucket: string;
  readonly environment: string;
  /** S3 client settings: endpoint and credentials for the local server, nothing for AWS. */
  readonly client: S3ClientConfig;
}

/** Backup ids sort by time: `20261124T090512Z-3f9a`. */
export function newBackupId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-${Math.random().toString(16).slice(2, 6)}`;
}

const message = (e: unknown) => (e instanceof Error ? e.message || e.name : String(e));

export class BackupStorage implements DumpStore {
  readonly s3: S3Client;

  /** `formats`: the manifest formats this store's readers accept (an export location reads exports). */
  constructor(
    readonly location: StorageLocation,
    private readonly formats: readonly string[] = [MANIFEST_FORMAT],
  ) {
    // A dead or unreachable endpoint fails the run within seconds instead of hanging it.
    this.s3 = new S3Client({ maxAttempts: 3, requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 }, ...location.client });
  }

  prefix(service: string): string {
    return `${this.location.environment}/${service}/`;
  }

  describe(key: string): string {
    return `s3://${this.location.bucket}/${key}`;
  }

  get whenCorrupted(): string {
    return this.formats.includes(MANIFEST_FORMAT)
      ? "the bucket is versioned: an earlier version may be intact"
      : "export it again from its stack";
  }

  dumpKey(service: string, id: string): string {
    return `${this.prefix(service)}${id}.dump`;
  }

  manifestKey(service: string, id: string): string {
    return `${this.prefix(service)}${id}.manifest.json`;
  }

  /**
   * Stream `body` to the dump key as a multipart upload: 8 MiB parts, at most 4 in flight (so
   * memory stays flat whatever the size), each part's CRC32 checked by S3 (zlib's, native: the
   * whole dump's SHA-256 is computed once, by the runner, for the manifest). On any error the
   * upload is aborted and no object is left.
   */
  async uploadDump(key: string, body: Readable, onProgress?: (bytes: number) => void): Promise<{ versionId?: string }> {
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.location.bucket, Key: key, Body: body, ContentType: "application/octet-stream", ChecksumAlgorithm: "CRC32" },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    if (onProgress) upload.on("httpUploadProgress", (p) => p.loaded !== undefined && onProgress(p.loaded));
    try {
      const out = await upload.done();
      return { versionId: out.VersionId };
    } catch (e) {
      await upload.abort().catch(() => undefined);
      throw new BackupStorageError(`upload of s3://${this.location.bucket}/${key} failed: ${message(e)}`);
    }
  }

  /** The commit marker: once it exists, the backup does. */
  async putManifest(manifest: BackupManifest): Promise<void> {
    const key = this.manifestKey(manifest.service, manifest.id);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: key,
          Body: `${JSON.stringify(manifest, null, 2)}\n`,
          ContentType: "application/json",
          ChecksumAlgorithm: "SHA256",
        }),
      );
    } catch (e) {
      throw new BackupStorageError(`writing the manifest s3://${this.location.bucket}/${key} failed: ${message(e)}`);
    }
  }

  /** Best effort: a dump whose manifest was never written is garbage (and invisible anyway). */
  async deleteQuietly(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: key })).catch(() => undefined);
  }

  /** The manifest keys of a service, oldest first (ids sort by time). Lists keys only: no object is read. */
  async manifestKeys(service: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.prefix(service), ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key?.endsWith(".manifest.json")) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (e) {
      throw new BackupStorageError(`listing s3://${this.location.bucket}/${this.prefix(service)} failed: ${message(e)}`);
    }
    return keys.sort();
  }

  /** Every committed backup of a service, oldest first. */
  async list(service: string): Promise<BackupManifest[]> {
    const manifests: BackupManifest[] = [];
    for (const key of await this.manifestKeys(service)) manifests.push(await this.readManifest(key));
    return manifests;
  }

  /** The newest committed backup of a service (one manifest read), or undefined. */
  async latest(service: string): Promise<BackupManifest | undefined> {
    const last = (await this.manifestKeys(service)).at(-1);
    return last === undefined ? undefined : this.readManifest(last);
  }

  async readManifest(key: string): Promise<BackupManifest> {
    let text: string;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: key }));
      text = (await out.Body?.transformToString()) ?? "";
    } catch (e) {
      throw new BackupStorageError(`reading the manifest s3://${this.location.bucket}/${key} failed: ${message(e)}`);
    }
    return parseManifest(text, `s3://${this.location.bucket}/${key}`, this.formats);
  }

  /** The dump object as a stream. */
  async openDump(manifest: BackupManifest): Promise<Readable> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: manifest.dump.key }));
      return out.Body as Readable;
    } catch (e) {
      throw new BackupStorageError(`reading s3://${this.location.bucket}/${manifest.dump.key} failed: ${message(e)}`);
    }
  }
}
