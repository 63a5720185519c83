/**
 * Stack-wide rules: nothing in a stack points at another environment, and credentials only
 * travel as secrets.
 */
import { anyUnknown, PG, type StackGraph } from "../engine/graph";
import { type Finding, isSecret, type PolicyInputResource, type Rule } from "../engine/types";
import { RDS_INSTANCE } from "./rds";
import { S3 } from "./backups";

export const ENVIRONMENT_TAG = "db-platform:environment";

/** The stack's environment: from config, else the one environment its tags agree on. */
function environmentOf(graph: StackGraph, configured: unknown): string | undefined {
  if (typeof configured === "string" && configured !== "") return configured;
  const counts = new Map<string, number>();
  for (const r of graph.input.resources) {
    const env = (r.props.tags as Record<string, unknown> | undefined)?.[ENVIRONMENT_TAG];
    if (typeof env === "string") counts.set(env, (counts.get(env) ?? 0) + 1);
  }
  // The majority is the stack's own environment; the others are the findings.
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

export const sameEnvironment: Rule = {
  name: "same-environment",
  description: "Servers, replicas, buckets and tags in a stack all belong to the stack's own environment.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  configSchema: {
    environment: {
      type: "string",
      description: "The stack's environment; when empty, the environment most of its tags carry.",
      default: "",
    },
  },
  check(graph, config) {
    const out: Finding[] = [];
    const env = environmentOf(graph, config.environment);
    if (!env) return out;
    const identifiers = new Set<string>();
    for (const r of graph.ofType(RDS_INSTANCE)) {
      identifiers.add(String(r.props.identifier));
      identifiers.add(`arn:aws:rds:*:db:${String(r.props.identifier)}`);
    }
    for (const r of graph.input.resources) {
      const tags = r.props.tags as Record<string, unknown> | undefined;
      const tagged = tags?.[ENVIRONMENT_TAG];
      if (tags && typeof tagged === "string" && tagged !== env) {
        out.push({ urn: r.urn, message: `${r.name} must carry tag ${ENVIRONMENT_TAG}=${env} (found "${tagged}")` });
      }
      if ((r.type === RDS_INSTANCE || r.type === S3.bucket || r.type === S3.bucketV2) && (!tags || tags[ENVIRONMENT_TAG] === undefined)) {
        out.push({ urn: r.urn, message: `${r.name} must carry tag ${ENVIRONMENT_TAG}=${env}` });
      }
    }
    for (const r of graph.ofType(RDS_INSTANCE)) {
      const id = r.props.identifier;
      if (anyUnknown(id, r.props.replicateSourceDb)) {
        out.push({ urn: r.urn, message: `${r.name}: cannot verify the environment during preview`, unverifiable: true });
        continue;
      }
      if (typeof id === "string" && !id.startsWith(`${env}-`))
        out.push({ urn: r.urn, message: `RDS identifier "${id}" must start with "${env}-"` });
      const source = r.props.replicateSourceDb;
      if (typeof source === "string" && source !== "" && !sourceInStack(source, identifiers)) {
        out.push({ urn: r.urn, message: `RDS replica "${String(id)}" must replicate an instance of this stack (found "${source}")` });
      }
    }
    for (const r of [...graph.ofType(S3.bucket), ...graph.ofType(S3.bucketV2)]) {
      const bucket = r.props.bucket;
      if (typeof bucket === "string" && !anyUnknown(bucket) && !bucket.split(/[-.]/).includes(env)) {
        out.push({ urn: r.urn, message: `bucket "${bucket}" must name its environment "${env}"` });
      }
    }
    for (const r of graph.ofType("docker:index/container:Container")) {
      const name = r.props.name;
      if (typeof name === "string" && !name.includes(`-${env}-`))
        out.push({ urn: r.urn, message: `container "${name}" must name its environment "${env}"` });
    }
    return out;
  },
};

function sourceInStack(source: string, identifiers: ReadonlySet<string>): boolean {
  if (identifiers.has(source)) return true;
  // Cross-region replicas name their source by ARN: arn:aws:rds:<region>:<account>:db:<identifier>.
  const m = /^arn:aws[a-z-]*:rds:[^:]*:[^:]*:db:(.+)$/.exec(source);
  return m !== null && identifiers.has(m[1]);
}

/** Values that must only ever be secrets, by resource type. */
const SECRET_PROPS: ReadonlyArray<[string, string, (r: PolicyInputResource) => unknown[]]> = [
  [PG.role, "password", (r) => [r.props.password]],
  [PG.provider, "password", (r) => [r.props.password]],
  ["aws:secretsmanager/secretVersion:SecretVersion", "secretString", (r) => [r.props.secretString]],
  [
    "docker:index/container:Container",
    "envs",
    (r) => ((r.props.envs as unknown[] | undefined) ?? []).filter((e) => isSecret(e) || /PASSWORD=/i.test(String(e))),
  ],
];

export const secretsOnly: Rule = {
  name: "credentials-are-secrets",
  description: "Role passwords, provider passwords, secret strings and password variables are only ever Pulumi secrets.",
  enforcementLevel: "mandatory",
  alwaysMandatory: true,
  check(graph) {
    const out: Finding[] = [];
    // @pulumi/policy unwraps secrets before stack policies run, so `pulumi preview` cannot
    // see secretness; `db-platform policy check` (export or synth) can.
    if (!graph.input.secretsVisible) return out;
    for (const [type, prop, values] of SECRET_PROPS) {
      for (const r of graph.ofType(type)) {
        for (const v of values(r)) {
          if (v !== undefined && v !== null && !isSecret(v) && !anyUnknown(v)) {
            out.push({ urn: r.urn, message: `${prop} of ${r.name} must be a Pulumi secret` });
          }
        }
      }
    }
    return out;
  },
};

export const STACK_RULES: readonly Rule[] = [sameEnvironment, secretsOnly];
