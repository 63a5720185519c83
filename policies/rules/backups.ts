/**
 * The baseline for S3 buckets that hold backups: versioning, SSE-KMS, all four public-access
 * blocks, a TLS-only bucket policy and a lifecycle. Related resources are matched to their
 * bucket by the bucket name they configure.
 */
import { anyUnknown, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";

export const S3 = {
  bucket: "aws:s3/bucket:Bucket",
  bucketV2: "aws:s3/bucketV2:BucketV2",
  versioning: "aws:s3/bucketVersioning:BucketVersioning",
  encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  publicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  policy: "aws:s3/bucketPolicy:BucketPolicy",
  lifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  replication: "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
  logging: "aws:s3/bucketLogging:BucketLogging",
} as const;

function buckets(graph: StackGraph): PolicyInputResource[] {
  return [...graph.ofType(S3.bucket), ...graph.ofType(S3.bucketV2)];
}

/** A rule over every bucket: `test` gets the bucket's configuration resources of `type`. */
function bucketRule(
  name: string,
  description: string,
  type: string,
  test: (related: PolicyInputResource[]) => boolean,
  requirement: string,
): Rule {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    check(graph) {
      const out: Finding[] = [];
      const all = graph.ofType(type);
      for (const b of buckets(graph)) {
        const bucketName = b.props.bucket;
        const related = all.filter((x) => x.props.bucket === bucketName || x.props.bucket === b.urn);
        if (anyUnknown(bucketName) || all.some((x) => anyUnknown(x.props.bucket))) {
          out.push({
            urn: b.urn,
            message: `bucket ${b.name}: cannot verify ${name} during preview (bucket name unknown)`,
            unverifiable: true,
          });
        } else if (!test(related)) {
          out.push({ urn: b.urn, message: `bucket "${String(bucketName)}" must ${requirement}` });
        }
      }
      return out;
    },
  };
}

export const bucketVersioning = bucketRule(
  "backup-bucket-versioning",
  "Backup buckets must have versioning enabled.",
  S3.versioning,
  (rel) => rel.some((r) => (r.props.versioningConfiguration as { status?: string } | undefined)?.status === "Enabled"),
  "have versioning enabled (aws.s3.BucketVersioning with status Enabled)",
);

export const bucketSseKms = bucketRule(
  "backup-bucket-sse-kms",
  "Backup buckets must encrypt objects with SSE-KMS by default.",
  S3.encryption,
  (rel) =>
    rel.some((r) =>
      ((r.props.rules as Array<{ applyServerSideEncryptionByDefault?: { sseAlgorithm?: string; kmsMasterKeyId?: string } }>) ?? []).some(
        (rule) =>
          rule.applyServerSideEncryptionByDefault?.sseAlgorithm === "aws:kms" &&
          Boolean(rule.applyServerSideEncryptionByDefault.kmsMasterKeyId),
      ),
    ),
  "encrypt with SSE-KMS and a customer-managed key by default",
);

export const bucketPublicAccessBlock = bucketRule(
  "backup-bucket-public-access-block",
  "Backup buckets must turn on all four public-access blocks.",
  S3.publicAccessBlock,
  (rel) =>
    rel.some((r) =>
      ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every((k) => r.props[k] === true),
    ),
  "block public access (blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true)",
);

export const bucketTlsOnly = bucketRule(
  "backup-bucket-tls-only",
  "Backup buckets must deny requests that do not use TLS.",
  S3.policy,
  (rel) =>
    rel.some((r) => {
      try {
        const doc = JSON.parse(String(r.props.policy)) as {
          Statement?: Array<{ Effect?: string; Condition?: Record<string, Record<string, unknown>> }>;
        };
        return (doc.Statement ?? []).some((s) => s.Effect === "Deny" && String(s.Condition?.Bool?.["aws:SecureTransport"]) === "false");
      } catch {
        return false;
      }
    }),
  'have a bucket policy that denies requests with aws:SecureTransport "false"',
);

export const bucketLifecycle = bucketRule(
  "backup-bucket-lifecycle",
  "Backup buckets must have a lifecycle configuration.",
  S3.lifecycle,
  (rel) => rel.some((r) => Array.isArray(r.props.rules) && r.props.rules.length > 0),
  "have a lifecycle configuration (archive, expiry, noncurrent versions)",
);

interface ReplicationRule {
  status?: string;
  destination?: { bucket?: string; encryptionConfiguration?: { replicaKmsKeyId?: string } };
}

/**
 * Backups survive the loss of a region: every bucket that is neither a replica (a replication
 * destination) nor a log bucket (a logging target) replicates, under a customer-managed key of
 * the destination's region. Advisory; mandatory where the policy config says so (prod).
 */
export const bucketReplication: Rule = {
  name: "backup-bucket-replication",
  description: "Backup buckets must replicate to a bucket in another region, encrypted there with a customer-managed key.",
  enforcementLevel: "advisory",
  check(graph: StackGraph) {
    const out: Finding[] = [];
    const replications = graph.ofType(S3.replication);
    const exempt = new Set<unknown>([
      ...graph.ofType(S3.logging).map((l) => l.props.targetBucket),
      ...replications.flatMap((r) => ((r.props.rules as ReplicationRule[] | undefined) ?? []).map((rule) => rule.destination?.bucket)),
    ]);
    for (const b of buckets(graph)) {
      const name = b.props.bucket;
      if (anyUnknown(name) || [...exempt].some((x) => anyUnknown(x))) {
        out.push({
          urn: b.urn,
          message: `bucket ${b.name}: cannot verify backup-bucket-replication during preview (bucket name unknown)`,
          unverifiable: true,
        });
        continue;
      }
      if (exempt.has(name) || exempt.has(`arn:aws:s3:::${String(name)}`)) continue;
      const rules = replications
        .filter((r) => r.props.bucket === name)
        .flatMap((r) => (r.props.rules as ReplicationRule[] | undefined) ?? [])
        .filter((rule) => rule.status === "Enabled");
      if (rules.length === 0)
        out.push({
          urn: b.urn,
          message: `bucket "${String(name)}" must replicate to a bucket in another region (aws.s3.BucketReplicationConfig)`,
        });
      else if (!rules.every((rule) => Boolean(rule.destination?.encryptionConfiguration?.replicaKmsKeyId)))
        out.push({
          urn: b.urn,
          message: `bucket "${String(name)}" must encrypt its replicas with a customer-managed key (destination.encryptionConfiguration.replicaKmsKeyId)`,
        });
    }
    return out;
  },
};

export const BACKUP_RULES: readonly Rule[] = [
  bucketVersioning,
  bucketSseKms,
  bucketPublicAccessBlock,
  bucketTlsOnly,
  bucketLifecycle,
  bucketReplication,
];
