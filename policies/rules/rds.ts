/**
 * The AWS security baseline for RDS for PostgreSQL, with branches for read replicas (which
 * inherit backups and Multi-AZ from their primary). Enforcement per stack comes from the
 * policy config files under policies/config/.
 */
import { UPGRADE_PHASE_TAG, UPGRADE_TAG } from "../../components/servers/rdsUpgrade";
import { anyUnknown, type StackGraph } from "../engine/graph";
import type { Finding, PolicyInputResource, Rule } from "../engine/types";

export const RDS_INSTANCE = "aws:rds/instance:Instance";
export const RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup";

const isReplica = (r: PolicyInputResource) => Boolean(r.props.replicateSourceDb);
const label = (r: PolicyInputResource) => `RDS instance "${String(r.props.identifier ?? r.name)}"${isReplica(r) ? " (read replica)" : ""}`;

const tagsOf = (r: PolicyInputResource) => (r.props.tags ?? {}) as Record<string, unknown>;
/** The phase of a major upgrade in progress, as `db-platform upgrade` tags the instances; undefined: none. */
const upgradePhase = (r: PolicyInputResource) => (tagsOf(r)[UPGRADE_TAG] ? String(tagsOf(r)[UPGRADE_PHASE_TAG] ?? "") : undefined);
/** A cross-region replica (replicating by ARN) is unprotected only so that a major upgrade can detach it. */
const detaching = (r: PolicyInputResource) =>
  upgradePhase(r) === "unprotect-replicas" && String(r.props.replicateSourceDb ?? "").startsWith("arn:");

/** A rule over every RDS instance: `test` returns the message when the instance fails. */
function instanceRule(
  name: string,
  description: string,
  props: readonly string[],
  test: (r: PolicyInputResource, config: Readonly<Record<string, unknown>>, graph: StackGraph) => string | undefined,
  extra: Partial<Rule> = {},
): Rule {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    ...extra,
    check(graph, config) {
      const out: Finding[] = [];
      for (const r of graph.ofType(RDS_INSTANCE)) {
        if (anyUnknown(...props.map((p) => r.props[p]))) {
          out.push({ urn: r.urn, message: `${label(r)}: cannot verify ${props.join(", ")} during preview`, unverifiable: true });
          continue;
        }
        const message = test(r, config, graph);
        if (message) out.push({ urn: r.urn, message });
      }
      return out;
    },
  };
}

const hasValue = (v: unknown) => typeof v === "string" && v.length > 0;

export const rdsStorageEncrypted = instanceRule(
  "rds-storage-encrypted",
  "RDS storage must be encrypted with a customer-managed KMS key.",
  ["storageEncrypted", "kmsKeyId"],
  (r) =>
    r.props.storageEncrypted === true && hasValue(r.props.kmsKeyId)
      ? undefined
      : `${label(r)} must have storageEncrypted true and a customer-managed kmsKeyId`,
);

export const rdsNotPublic = instanceRule(
  "rds-not-publicly-accessible",
  "RDS instances must not be publicly accessible.",
  ["publiclyAccessible"],
  (r) => (r.props.publiclyAccessible === true ? `${label(r)} must not be publicly accessible` : undefined),
);

export const rdsForceSsl = instanceRule(
  "rds-force-ssl",
  "RDS instances must use a parameter group declared in the stack with rds.force_ssl=1.",
  ["parameterGroupName"],
  (r, _c, graph) => {
    const group = graph.ofType(RDS_PARAMETER_GROUP).find((g) => g.props.name === r.props.parameterGroupName);
    if (!group)
      return `${label(r)} must use a parameter group declared in the stack with rds.force_ssl=1 (found "${String(r.props.parameterGroupName ?? "default")}")`;
    const params = (group.props.parameters as Array<{ name: string; value: string }> | undefined) ?? [];
    return params.some((p) => p.name === "rds.force_ssl" && String(p.value) === "1")
      ? undefined
      : `${label(r)} must force TLS: parameter group "${String(group.props.name)}" must set rds.force_ssl=1`;
  },
);

export const rdsIamAuth = instanceRule(
  "rds-iam-authentication",
  "RDS instances must enable IAM database authentication.",
  ["iamDatabaseAuthenticationEnabled"],
  (r) => (r.props.iamDatabaseAuthenticationEnabled === true ? undefined : `${label(r)} must have iamDatabaseAuthenticationEnabled true`),
);

export const rdsPerformanceInsightsEncrypted = instanceRule(
  "rds-performance-insights-encrypted",
  "Performance Insights must be on and encrypted with a customer-managed KMS key.",
  ["performanceInsightsEnabled", "performanceInsightsKmsKeyId"],
  (r) =>
    r.props.performanceInsightsEnabled === true && hasValue(r.props.performanceInsightsKmsKeyId)
      ? undefined
      : `${label(r)} must have Performance Insights enabled with a customer-managed performanceInsightsKmsKeyId`,
);

export const rdsLogExports = instanceRule(
  "rds-log-exports",
  "RDS instances must export the postgresql log to CloudWatch.",
  ["enabledCloudwatchLogsExports"],
  (r) =>
    Array.isArray(r.props.enabledCloudwatchLogsExports) && r.props.enabledCloudwatchLogsExports.includes("postgresql")
      ? undefined
      : `${label(r)} must export the "postgresql" log (enabledCloudwatchLogsExports)`,
);

export const rdsBackupRetention = instanceRule(
  "rds-backup-retention",
  "Primary RDS instances must keep automated backups at least the configured number of days.",
  ["backupRetentionPeriod"],
  (r, config) => {
    if (isReplica(r)) return undefined;
    const min = Number(config.minimumDays);
    const days = Number(r.props.backupRetentionPeriod ?? 0);
    return days >= min ? undefined : `${label(r)} must keep automated backups at least ${min} days (backupRetentionPeriod is ${days})`;
  },
  { configSchema: { minimumDays: { type: "number", description: "Minimum backupRetentionPeriod in days.", default: 7 } } },
);

export const rdsProductionProtection = instanceRule(
  "rds-production-protection",
  "When required by the stack's policy config: deletion protection, Multi-AZ and a final snapshot.",
  ["deletionProtection", "multiAz", "skipFinalSnapshot"],
  (r, config) => {
    if (config.required !== true) return undefined;
    const missing: string[] = [];
    if (r.props.deletionProtection !== true && !detaching(r)) missing.push("deletionProtection true");
    if (!isReplica(r) && r.props.multiAz !== true) missing.push("multiAz true");
    if (!isReplica(r) && r.props.skipFinalSnapshot === true) missing.push("skipFinalSnapshot false");
    return missing.length ? `${label(r)} must have ${missing.join(", ")} in this environment` : undefined;
  },
  {
    configSchema: {
      required: { type: "boolean", description: "Require deletion protection, Multi-AZ and final snapshots.", default: false },
    },
  },
);

export const rdsMinorUpgrades = instanceRule(
  "rds-auto-minor-upgrades",
  "RDS instances must apply minor version upgrades automatically.",
  ["autoMinorVersionUpgrade"],
  (r) => (r.props.autoMinorVersionUpgrade === false ? `${label(r)} must have autoMinorVersionUpgrade true` : undefined),
);

export const rdsMajorUpgradeGuarded = instanceRule(
  "rds-major-upgrade-guarded",
  "Only the update of a major upgrade run by db-platform upgrade may allow a major version change or apply immediately, and a primary's parameter group is of its engine's family.",
  ["allowMajorVersionUpgrade", "applyImmediately", "engineVersion", "parameterGroupName", "tags"],
  (r, _c, graph) => {
    const problems: string[] = [];
    const flags = (["allowMajorVersionUpgrade", "applyImmediately"] as const).filter((p) => r.props[p] === true);
    if (flags.length > 0 && upgradePhase(r) !== "upgrade")
      problems.push(
        `sets ${flags.join(" and ")} outside a major upgrade (only db-platform upgrade's own update, tagged ${UPGRADE_PHASE_TAG}=upgrade, may)`,
      );
    const major = String(r.props.engineVersion ?? "").split(".")[0];
    const group = graph.ofType(RDS_PARAMETER_GROUP).find((g) => g.props.name === r.props.parameterGroupName);
    if (!isReplica(r) && major && group && group.props.family !== `postgres${major}`)
      problems.push(`runs PostgreSQL ${major} with parameter group "${String(group.props.name)}" of family ${String(group.props.family)}`);
    return problems.length ? `${label(r)} ${problems.join("; ")}` : undefined;
  },
);

export const rdsCopyTags = instanceRule(
  "rds-copy-tags-to-snapshot",
  "Primary RDS instances must copy tags to snapshots.",
  ["copyTagsToSnapshot"],
  (r) => (isReplica(r) || r.props.copyTagsToSnapshot === true ? undefined : `${label(r)} must have copyTagsToSnapshot true`),
);

/** The region in an ARN (`arn:aws:<service>:<region>:…`), when the value is one. */
export function arnRegion(value: unknown): string | undefined {
  const m = typeof value === "string" ? /^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):/.exec(value) : null;
  return m?.[1] || undefined;
}

/** The primary a replica replicates, when it is in the stack (by identifier, or by ARN across regions). */
function sourceOf(replica: PolicyInputResource, graph: StackGraph): PolicyInputResource | undefined {
  const source = String(replica.props.replicateSourceDb);
  const identifier = /^arn:aws[a-z-]*:rds:[^:]*:[^:]*:db:(.+)$/.exec(source)?.[1] ?? source;
  return graph.ofType(RDS_INSTANCE).find((r) => !isReplica(r) && r.props.identifier === identifier);
}

export const rdsReplicaConsistent = instanceRule(
  "rds-replica-consistent",
  "A replica's backups live on its primary: the primary keeps automated backups, the replica claims none, and a protected primary has protected replicas.",
  ["replicateSourceDb", "backupRetentionPeriod", "deletionProtection"],
  (r, _c, graph) => {
    if (!isReplica(r)) return undefined;
    const primary = sourceOf(r, graph);
    if (!primary) return undefined; // same-environment reports sources outside the stack
    const problems: string[] = [];
    if (Number(primary.props.backupRetentionPeriod ?? 0) < 1)
      problems.push(`its primary "${String(primary.props.identifier)}" must keep automated backups (backupRetentionPeriod >= 1)`);
    if (Number(r.props.backupRetentionPeriod ?? 0) > 0)
      problems.push("it must set backupRetentionPeriod 0 (RDS for PostgreSQL replicas take no automated backups; they are the primary's)");
    if (primary.props.deletionProtection === true && r.props.deletionProtection !== true && !detaching(r))
      problems.push(`it must have deletionProtection true like its primary "${String(primary.props.identifier)}"`);
    return problems.length ? `${label(r)}: ${problems.join("; ")}` : undefined;
  },
);

export const rdsReplicaKeyRegion = instanceRule(
  "rds-replica-key-in-own-region",
  "A cross-region replica is encrypted with a customer-managed key of its own region.",
  ["replicateSourceDb", "kmsKeyId", "performanceInsightsKmsKeyId"],
  (r, _c, graph) => {
    if (!isReplica(r)) return undefined;
    const provider = r.provider ? graph.byUrn.get(r.provider) : undefined;
    const region = typeof provider?.props.region === "string" ? provider.props.region : undefined;
    const sourceRegion = arnRegion(r.props.replicateSourceDb);
    // A replica's region is its explicit AWS provider's; without one it is the primary's.
    if (!region || region === sourceRegion) return undefined;
    const wrong = (["kmsKeyId", "performanceInsightsKmsKeyId"] as const).filter((p) => {
      const keyRegion = arnRegion(r.props[p]);
      return keyRegion !== undefined && keyRegion !== region;
    });
    return wrong.length
      ? `${label(r)} is in ${region} and must use a KMS key of ${region} (${wrong.map((p) => `${p} is in ${arnRegion(r.props[p])}`).join(", ")})`
      : undefined;
  },
);

export const RDS_RULES: readonly Rule[] = [
  rdsStorageEncrypted,
  rdsNotPublic,
  rdsForceSsl,
  rdsIamAuth,
  rdsPerformanceInsightsEncrypted,
  rdsLogExports,
  rdsBackupRetention,
  rdsProductionProtection,
  rdsMinorUpgrades,
  rdsMajorUpgradeGuarded,
  rdsCopyTags,
  rdsReplicaConsistent,
  rdsReplicaKeyRegion,
];
