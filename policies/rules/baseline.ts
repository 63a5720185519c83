/**
 * The AWS baseline an independent IaC security scanner checks on what the platform declares
 * beside the databases (docs/policies.md): the backup runner's ECR repository, its CloudWatch log
 * group, the EventBridge Scheduler schedules, and server access logging of every bucket that is
 * not itself a log target. Advisory by default; the strict environments' policy config
 * (`all: mandatory`, policies/config/prod.json) makes them mandatory, so CI refuses a regression.
 */
import { anyUnknown, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";
import { S3 } from "./backups";

export const AWS_BASELINE = {
  repository: "aws:ecr/repository:Repository",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  schedule: "aws:scheduler/schedule:Schedule",
  logging: "aws:s3/bucketLogging:BucketLogging",
  loggingV2: "aws:s3/bucketLoggingV2:BucketLoggingV2",
} as const;

const hasValue = (v: unknown) => typeof v === "string" && v.length > 0;

/** A rule over every resource of one type: `props` unknown in preview make it unverifiable. */
function resourceRule(
  name: string,
  description: string,
  type: string,
  props: readonly string[],
  test: (r: PolicyInputResource, config: Readonly<Record<string, unknown>>) => string | undefined,
  extra: Partial<Rule> = {},
): Rule {
  return {
    name,
    description,
    enforcementLevel: "advisory",
    ...extra,
    check(graph, config) {
      const out: Finding[] = [];
      for (const r of graph.ofType(type)) {
        if (anyUnknown(...props.map((p) => r.props[p]))) {
          out.push({ urn: r.urn, message: `${r.name}: cannot verify ${props.join(", ")} during preview`, unverifiable: true });
          continue;
        }
        const message = test(r, config);
        if (message) out.push({ urn: r.urn, message });
      }
      return out;
    },
  };
}

export const ecrImmutableCmk = resourceRule(
  "ecr-immutable-cmk",
  "ECR repositories must have immutable tags and encrypt images with a customer-managed KMS key.",
  AWS_BASELINE.repository,
  ["imageTagMutability", "encryptionConfigurations"],
  (r) => {
    const problems: string[] = [];
    if (r.props.imageTagMutability !== "IMMUTABLE")
      problems.push(`imageTagMutability IMMUTABLE (is ${String(r.props.imageTagMutability ?? "MUTABLE")})`);
    const enc = ((r.props.encryptionConfigurations as Array<{ encryptionType?: string; kmsKey?: string }> | undefined) ?? [])[0];
    if (enc?.encryptionType !== "KMS" || !hasValue(enc.kmsKey)) problems.push("encryptionType KMS with a customer-managed kmsKey");
    return problems.length > 0 ? `ECR repository "${String(r.props.name)}" must have ${problems.join(" and ")}` : undefined;
  },
);

export const logGroupCmkRetention = resourceRule(
  "log-group-cmk-retention",
  "CloudWatch log groups must be encrypted with a customer-managed KMS key and keep logs at least the configured number of days.",
  AWS_BASELINE.logGroup,
  ["kmsKeyId", "retentionInDays"],
  (r, config) => {
    const min = Number(config.minimumDays);
    const days = Number(r.props.retentionInDays ?? 0);
    const problems: string[] = [];
    if (!hasValue(r.props.kmsKeyId)) problems.push("be encrypted with a customer-managed key (kmsKeyId)");
    // 0 (or none) keeps logs for ever.
    if (days !== 0 && days < min) problems.push(`keep logs at least ${min} days (retentionInDays is ${days})`);
    return problems.length > 0 ? `log group "${String(r.props.name)}" must ${problems.join(" and ")}` : undefined;
  },
  { configSchema: { minimumDays: { type: "number", description: "Minimum retentionInDays (0 = never expire passes).", default: 365 } } },
);

export const scheduleCmk = resourceRule(
  "schedule-cmk",
  "EventBridge Scheduler schedules must be encrypted with a customer-managed KMS key.",
  AWS_BASELINE.schedule,
  ["kmsKeyArn"],
  (r) =>
    hasValue(r.props.kmsKeyArn)
      ? undefined
      : `schedule "${String(r.props.name)}" must be encrypted with a customer-managed key (kmsKeyArn)`,
);

/** Every bucket logs its requests to another bucket, except the buckets that receive such logs. */
export const bucketAccessLogging: Rule = {
  name: "bucket-access-logging",
  description: "S3 buckets must log their requests (server access logging) to a log bucket; log buckets themselves are exempt.",
  enforcementLevel: "advisory",
  check(graph: StackGraph) {
    const out: Finding[] = [];
    const loggings = [...graph.ofType(AWS_BASELINE.logging), ...graph.ofType(AWS_BASELINE.loggingV2)];
    const targets = new Set(loggings.filter((l) => l.props.targetBucket !== l.props.bucket).map((l) => l.props.targetBucket));
    for (const b of [...graph.ofType(S3.bucket), ...graph.ofType(S3.bucketV2)]) {
      const name = b.props.bucket;
      if (anyUnknown(name) || loggings.some((l) => anyUnknown(l.props.bucket, l.props.targetBucket))) {
        out.push({
          urn: b.urn,
          message: `bucket ${b.name}: cannot verify access logging during preview (bucket name unknown)`,
          unverifiable: true,
        });
        continue;
      }
      if (targets.has(name) && !loggings.some((l) => l.props.bucket === name)) continue;
      const logging = loggings.find((l) => l.props.bucket === name);
      if (!logging)
        out.push({ urn: b.urn, message: `bucket "${String(name)}" must log its requests to a log bucket (aws.s3.BucketLogging)` });
      else if (logging.props.targetBucket === name)
        out.push({ urn: b.urn, message: `bucket "${String(name)}" must log to a bucket of its own, not to itself` });
    }
    return out;
  },
};

export const BASELINE_RULES: readonly Rule[] = [ecrImmutableCmk, logGroupCmkRetention, scheduleCmk, bucketAccessLogging];
