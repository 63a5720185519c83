/**
 * The shared mock harness: runs the real program under the SDK's mocks (operations/stack/synth.ts), which
 * records every registered resource with exact type, name, parent, provider and inputs, and
 * throws on any invoke it does not expect.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synth, type SynthResource } from "../../operations/stack/synth";
import type { ConfigInput } from "../../components/spec";
import { PG } from "../../policies/engine/graph";

export const ROOT = path.resolve(__dirname, "../..");

/** Every stack file of the project: the real stacks and the seed topologies. */
export const STACK_FILES = [
  "Pulumi.dev.yaml",
  "Pulumi.prod.yaml",
  "examples/seed-000-swisper/Pulumi.prod.yaml",
  "examples/seed-001-ovu/Pulumi.staging.yaml",
  "examples/seed-002-sv-sdk/Pulumi.dev.yaml",
  "examples/seed-003-poc/Pulumi.staging.yaml",
  "examples/seed-004-piper/Pulumi.alpha.yaml",
  "examples/seed-004-piper/Pulumi.prod.yaml",
] as const;

export async function synthInput(input: ConfigInput, stack = "test"): Promise<Resources> {
  return new Resources(await synth(input, "db-platform", stack));
}

const synthesized = new Map<string, Promise<Resources>>();

/** Synthesize a stack file once per test file; results are read-only. */
export function synthFile(relative: string, stack?: string): Promise<Resources> {
  const file = path.join(ROOT, relative);
  const name = stack ?? /Pulumi\.(.+)\.yaml$/.exec(file)?.[1] ?? "test";
  const key = `${file}|${name}`;
  if (!synthesized.has(key)) synthesized.set(key, synthInput(readConfigFile(file), name));
  return synthesized.get(key) as Promise<Resources>;
}

export class Resources {
  constructor(readonly all: SynthResource[]) {}

  ofType(type: string): SynthResource[] {
    return this.all.filter((r) => r.type === type);
  }

  /** The one resource of `type` named `name`; throws when there is not exactly one. */
  one(type: string, name: string): SynthResource {
    const found = this.all.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
    return found[0];
  }

  /** Resources whose parent is the resource with this URN. */
  childrenOf(urn: string): SynthResource[] {
    return this.all.filter((r) => r.parent === urn);
  }

  countByType(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.all) out[r.type] = (out[r.type] ?? 0) + 1;
    return out;
  }
}

export const T = {
  role: PG.role,
  database: PG.database,
  schema: PG.schema,
  grant: PG.grant,
  grantRole: PG.grantRole,
  defaultPrivileges: PG.defaultPrivileges,
  extension: PG.extension,
  pgProvider: PG.provider,
  password: "random:index/randomPassword:RandomPassword",
  rds: "aws:rds/instance:Instance",
  parameterGroup: "aws:rds/parameterGroup:ParameterGroup",
  subnetGroup: "aws:rds/subnetGroup:SubnetGroup",
  kmsKey: "aws:kms/key:Key",
  kmsAlias: "aws:kms/alias:Alias",
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  topic: "aws:sns/topic:Topic",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  iamRole: "aws:iam/role:Role",
  container: "docker:index/container:Container",
  image: "docker:index/remoteImage:RemoteImage",
  volume: "docker:index/volume:Volume",
  network: "docker:index/network:Network",
  awsProvider: "pulumi:providers:aws",
  topicSubscription: "aws:sns/topicSubscription:TopicSubscription",
} as const;

/** Resolve an Output under the mocks, with its secretness. */
export async function resolve<U>(o: pulumi.Output<U>): Promise<{ value: U; secret: boolean }> {
  const secret = await pulumi.isSecret(o);
  const value = await new Promise<U>((ok) => o.apply((v) => ok(v)));
  return { value, secret };
}
