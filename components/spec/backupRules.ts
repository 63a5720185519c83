/** Backup rules: the `backups` entry checked against the environment and its servers, and built with its defaults. */
import { ARCHIVE_DEFAULTS, backupDefaults, STRICT_LOG_RETENTION_DAYS } from "./defaults";
import type { BackupsSpec } from "./model";
import { accessLogBucketName, backupBucketName, replicaBucketName } from "./naming";
import { type PathSegment, type Problem } from "./problems";
import { type RawBackups, type RawServer } from "./schema";
const S3_ONLY = [
  "schedule",
  "archiveAfterDays",
  "expireAfterDays",
  "noncurrentExpireAfterDays",
  "objectLockDays",
  "logRetentionDays",
  "replicaRegion",
] as const;

/** Where backups go must fit the stack's servers; prod replicates RDS backups to another region. */
export function checkBackups(
  raw: RawBackups,
  ctx: { strict: boolean; environment: string; awsRegion?: string; servers: ReadonlyMap<string, RawServer> },
): Problem[] {
  const out: Problem[] = [];
  const at = (...p: PathSegment[]) => ["backups", ...p];
  const rds = [...ctx.servers].filter(([, s]) => s.hosting === "rds").map(([n]) => n);
  if (raw.storage === "local") {
    if (rds.length > 0) {
      out.push({ path: at("storage"), message: `local is for stacks without rds servers (servers ${rds.join(", ")} are rds): use s3` });
    }
    for (const key of S3_ONLY) if (raw[key] !== undefined) out.push({ path: at(key), message: "only applies to storage s3" });
    return out;
  }
  if (raw.port !== undefined) out.push({ path: at("port"), message: "only applies to storage local" });
  if (raw.archive !== undefined) {
    out.push({
      path: at("archive"),
      message: "only applies to storage local: RDS archives its own WAL (servers.<name>.backupRetentionDays)",
    });
  }
  if (!ctx.awsRegion) out.push({ path: at("storage"), message: "s3 needs aws:region (pulumi config set aws:region …)" });
  const d = backupDefaults(ctx.strict, "");
  const archive = raw.archiveAfterDays ?? d.archiveAfterDays;
  const expire = raw.expireAfterDays ?? d.expireAfterDays;
  if (expire <= archive) {
    out.push({
      path: at("expireAfterDays"),
      message: `must be more than archiveAfterDays (${archive}): dumps would expire before they are archived`,
    });
  }
  const lock = raw.objectLockDays ?? d.objectLockDays;
  if (lock >= expire) out.push({ path: at("objectLockDays"), message: `must be less than expireAfterDays (${expire})` });
  if (ctx.strict && raw.logRetentionDays !== undefined && raw.logRetentionDays < STRICT_LOG_RETENTION_DAYS) {
    out.push({
      path: at("logRetentionDays"),
      message: `must be at least ${STRICT_LOG_RETENTION_DAYS} in strict environments: the runner's logs and the bucket's access logs are kept a year`,
    });
  }
  if (ctx.strict && rds.length > 0 && raw.replicaRegion === undefined) {
    out.push({
      path: at("replicaRegion"),
      message: "required in strict environments: RDS automated backups are replicated to another region",
    });
  }
  if (raw.replicaRegion !== undefined && raw.replicaRegion === ctx.awsRegion) {
    out.push({ path: at("replicaRegion"), message: `must differ from aws:region (${ctx.awsRegion})` });
  }
  if (raw.replicaRegion !== undefined) out.push(...checkReplicaNames(raw.bucket, ctx.environment, raw.replicaRegion));
  return out;
}

/** The buckets made in the replica region (components/backups/replica.ts) must have names S3 accepts: at most 63 characters. */
function checkReplicaNames(bucket: string | undefined, environment: string, region: string): Problem[] {
  const account = "0".repeat(12);
  const names = [
    {
      name: replicaBucketName(bucket ?? backupBucketName(environment, account), region),
      shorter: bucket ? "backups.bucket" : "environment name",
    },
    { name: accessLogBucketName(environment, account, region), shorter: "environment name" },
  ];
  return names
    .filter((n) => n.name.length > 63)
    .map((n) => ({
      path: n.shorter === "backups.bucket" ? ["backups", "bucket"] : ["backups", "replicaRegion"],
      message: `a bucket in ${region} would be named ${n.name} (${n.name.length} characters with the 12-digit account id): S3 allows 63; choose a shorter ${n.shorter}`,
    }));
}

export function buildBackups(raw: RawBackups, strict: boolean, environment: string): BackupsSpec {
  const d = backupDefaults(strict, environment);
  return {
    storage: raw.storage,
    bucket: raw.bucket ?? (raw.storage === "local" ? d.bucket : undefined),
    rpoHours: raw.rpoHours ?? d.rpoHours,
    schedule: raw.schedule ?? d.schedule,
    archiveAfterDays: raw.archiveAfterDays ?? d.archiveAfterDays,
    expireAfterDays: raw.expireAfterDays ?? d.expireAfterDays,
    noncurrentExpireAfterDays: raw.noncurrentExpireAfterDays ?? d.noncurrentExpireAfterDays,
    objectLockDays: raw.storage === "local" ? 0 : (raw.objectLockDays ?? d.objectLockDays),
    logRetentionDays: raw.logRetentionDays ?? d.logRetentionDays,
    replicaRegion: raw.replicaRegion,
    port: raw.port ?? d.port,
    archive:
      raw.storage === "local" && raw.archive?.enabled !== false
        ? {
            timeoutSeconds: raw.archive?.timeoutSeconds ?? ARCHIVE_DEFAULTS.timeoutSeconds,
            baseBackupHours: raw.archive?.baseBackupHours ?? ARCHIVE_DEFAULTS.baseBackupHours,
            recoveryWindowDays: raw.archive?.recoveryWindowDays ?? (strict ? 14 : ARCHIVE_DEFAULTS.recoveryWindowDays),
          }
        : undefined,
  };
}
