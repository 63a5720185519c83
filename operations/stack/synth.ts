/**
 * `db-platform synth`: run the real program under the Pulumi SDK's mocks, with no engine and no
 * credentials, and record every resource it registers with its parent, provider and inputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { type ProgramOutputs, runProgram } from "../../components/program";
import type { ConfigInput } from "../../components/spec";
import { normalize } from "../../policies/engine/sources";
import { withoutPromiseStacks } from "./promiseStacks";

export interface SynthResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent: string | null;
  readonly provider: string | null;
  /** Inputs as registered; secret values are replaced by "[secret]". */
  readonly props: Record<string, unknown>;
  /** Present when the resource is `protect`ed (the engine refuses to delete or replace it). */
  readonly protect?: true;
  /** Present when `up` leaves these inputs as they are once the resource exists (`ignoreChanges`). */
  readonly ignoreChanges?: string[];
}

const SYNTH_ACCOUNT = "000000000000";

/** When the stack sets no aws:region (stacks without RDS). */
const SYNTH_REGION = "synth-region";

/**
 * Outputs the engine would compute, faked deterministically so dependent inputs are readable.
 * ARNs carry the region of the resource's AWS provider, so cross-region wiring is visible.
 */
function computedState(type: string, name: string, inputs: Record<string, unknown>, region: string): Record<string, unknown> {
  switch (type) {
    case "aws:rds/instance:Instance": {
      const id = String(inputs.identifier ?? name);
      return {
        address: `${id}.synth.rds.invalid`,
        port: 5432,
        arn: `arn:aws:rds:${region}:${SYNTH_ACCOUNT}:db:${id}`,
        masterUserSecrets: [
          { secretArn: `arn:aws:secretsmanager:${region}:${SYNTH_ACCOUNT}:secret:rds!db-${id}`, kmsKeyId: "", secretStatus: "active" },
        ],
      };
    }
    case "aws:rds/proxy:Proxy":
      return {
        endpoint: `${String(inputs.name)}.proxy-synth.${region}.rds.invalid`,
        arn: `arn:aws:rds:${region}:${SYNTH_ACCOUNT}:db-proxy:${String(inputs.name)}`,
      };
    case "aws:rds/proxyEndpoint:ProxyEndpoint":
      return {
        endpoint: `${String(inputs.dbProxyEndpointName)}.endpoint.proxy-synth.${region}.rds.invalid`,
        arn: `arn:aws:rds:${region}:${SYNTH_ACCOUNT}:db-proxy-endpoint:${String(inputs.dbProxyEndpointName)}`,
      };
    case "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
      return { name: "default", arn: `arn:aws:rds:${region}:${SYNTH_ACCOUNT}:target-group:${name}` };
    case "aws:kms/key:Key":
      return { arn: `arn:aws:kms:${region}:${SYNTH_ACCOUNT}:key/${name}`, keyId: name };
    case "random:index/randomPassword:RandomPassword":
      return { result: `synth-${name}` };
    case "aws:s3/bucket:Bucket":
      return { arn: `arn:aws:s3:::${String(inputs.bucket)}` };
    case "aws:ecr/repository:Repository":
      return {
        arn: `arn:aws:ecr:${region}:${SYNTH_ACCOUNT}:repository/${String(inputs.name)}`,
        registryId: SYNTH_ACCOUNT,
        repositoryUrl: `${SYNTH_ACCOUNT}.dkr.ecr.${region}.amazonaws.com/${String(inputs.name)}`,
      };
    case "aws:ecs/taskDefinition:TaskDefinition":
      return {
        arn: `arn:aws:ecs:${region}:${SYNTH_ACCOUNT}:task-definition/${String(inputs.family)}:1`,
        arnWithoutRevision: `arn:aws:ecs:${region}:${SYNTH_ACCOUNT}:task-definition/${String(inputs.family)}`,
      };
    case "docker:index/image:Image":
      return { repoDigest: `${String(inputs.imageName).replace(/:[^:/]+$/, "")}@sha256:synth` };
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `${String(inputs.name)}@sha256:synth` };
    default:
      return { arn: `arn:aws:synth:${region}:${SYNTH_ACCOUNT}:${name}` };
  }
}

function mockCall(token: string, inputs: Record<string, unknown>, region: string): Record<string, unknown> {
  switch (token) {
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { accountId: SYNTH_ACCOUNT, arn: `arn:aws:iam::${SYNTH_ACCOUNT}:user/synth`, userId: "synth" };
    case "aws:index/getRegion:getRegion":
      return { id: region, region, name: region };
    case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
      return { userName: "AWS", password: "synth-ecr-token", proxyEndpoint: `https://${SYNTH_ACCOUNT}.dkr.ecr.${region}.amazonaws.com` };
    case "aws:secretsmanager/getSecretVersion:getSecretVersion":
      return { secretId: inputs.secretId, secretString: JSON.stringify({ username: "synth", password: "synth-master-password" }) };
    default:
      throw new Error(`synth: unexpected invoke ${token}`);
  }
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getProvider(): string;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getProtect(): boolean;
  getIgnorechangesList(): string[];
}

/**
 * Synthesize the desired state. Uses the process-wide Pulumi runtime, so call it once per
 * process (the CLI does; tests use a fresh worker per file).
 */
export async function synth(input: ConfigInput, project: string, stack: string): Promise<SynthResource[]> {
  return (await synthProgram(input, project, stack)).resources;
}

/** Like synth, and also returns the program's outputs (resolvable until the next call). */
export async function synthProgram(
  input: ConfigInput,
  project: string,
  stack: string,
): Promise<{ resources: SynthResource[]; outputs: ProgramOutputs }> {
  const resources: SynthResource[] = [];
  // Explicit AWS providers by mock id (`<name>-id`), with their region.
  const providerRegions = new Map<string, string>();
  const regionOf = (providerRef: string | undefined) =>
    (providerRef && providerRegions.get(providerRef.split("::").at(-1) ?? "")) || input.awsRegion || SYNTH_REGION;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const id = `${args.name}-id`;
        if (args.type === "pulumi:providers:aws" && typeof args.inputs.region === "string") providerRegions.set(id, args.inputs.region);
        return { id, state: { ...args.inputs, ...computedState(args.type, args.name, args.inputs, regionOf(args.provider)) } };
      },
      call: (args) => mockCall(args.token, args.inputs, regionOf(args.provider)),
    },
    project,
    stack,
    false,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: (err: Error | null, resp?: { getUrn(): string }) => void): Promise<void>;
  };
  const register = monitor.registerResource.bind(monitor);
  // The mock monitor qualifies a URN's type with the parent's last type only; the engine uses
  // the parent's whole type chain. Rebuild engine-shaped URNs so synth output matches exports.
  const fullUrns = new Map<string, string>();
  const full = (mockUrn: string) => fullUrns.get(mockUrn) ?? mockUrn;
  monitor.registerResource = (req, callback) =>
    register(req, (err, resp) => {
      if (!err && resp) {
        const parent = req.getParent() ? full(req.getParent()) : null;
        const qualified = parent ? `${parent.split("::")[2]}$${req.getType()}` : req.getType();
        const urn = `urn:pulumi:${stack}::${project}::${qualified}::${req.getName()}`;
        fullUrns.set(resp.getUrn(), urn);
        const providerRef = req.getProvider();
        resources.push({
          type: req.getType(),
          name: req.getName(),
          urn,
          parent,
          provider: providerRef ? full(providerRef.split("::").slice(0, -1).join("::")) : null,
          props: normalize(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
          ...(req.getProtect() ? { protect: true as const } : {}),
          ...(req.getIgnorechangesList().length > 0 && { ignoreChanges: req.getIgnorechangesList() }),
        });
      }
      callback(err, resp);
    });

  let failure: unknown;
  const onError = (e: unknown) => (failure ??= e);
  process.on("unhandledRejection", onError);
  let outputs: ProgramOutputs | undefined;
  try {
    await withoutPromiseStacks(async () => {
      outputs = runProgram(input);
      await pulumi.runtime.disconnect();
    });
  } finally {
    process.off("unhandledRejection", onError);
  }
  if (failure) throw failure;
  return { resources, outputs: outputs as ProgramOutputs };
}
