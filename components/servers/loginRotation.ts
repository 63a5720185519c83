/**
 * The login rotation function of one RDS server (docs/rotation.md, "On AWS"): the Lambda function
 * Secrets Manager invokes to rotate each service login's secret on its schedule
 * (operations/rotate/secretsManager.ts, bundled with its imports into the function's code). It
 * runs in the server's private subnets with a security group that reaches only its server and
 * HTTPS; its role reads and writes only the login secrets of its own server (by tag), reads the
 * master user's secret, and uses the server's key; its logs are encrypted with that key.
 */
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { buildSync } from "esbuild";
import type { RdsServerSpec } from "../spec";
import { ROTATION_LOG_RETENTION_DAYS } from "../spec/defaults";
import { ROTATION_ENV } from "../spec/rotation";
import { policyDocument } from "../backups/tasks";
import type { KeyGrant } from "./aws";

/** The function's runtime: a maintained Node.js (the code is bundled for it). */
export const ROTATION_RUNTIME = "nodejs22.x";

export interface LoginRotationArgs {
  /** `<env>-<server>`: the function is `<id>-login-rotation`. */
  readonly id: string;
  /** The stack's environment: the function rotates `db-platform/<environment>/…` secrets only. */
  readonly environment: string;
  readonly spec: RdsServerSpec;
  readonly instance: aws.rds.Instance;
  readonly instanceSecurityGroupId: pulumi.Output<string>;
  readonly masterSecretArn: pulumi.Output<string>;
  readonly key: aws.kms.Key;
  readonly accountId: pulumi.Output<string>;
  readonly tags: Record<string, string>;
  /** Behind RDS Proxy: each pooled service's proxy endpoint, which its logins' secrets name as their host. */
  readonly proxyEndpoints?: Readonly<Record<string, pulumi.Input<string>>>;
}

export interface LoginRotation {
  readonly functionArn: pulumi.Output<string>;
  /** What a SecretRotation waits for: Secrets Manager may invoke the function. */
  readonly ready: pulumi.Resource[];
}

/** The function's log group name, which the server key's policy names for CloudWatch Logs. */
export function rotationLogGroupName(id: string): string {
  return `/aws/lambda/${id}-login-rotation`;
}

/** CloudWatch Logs may use the server key for the login rotation function's log group only. */
export function rotationLogsGrant(region: string, accountId: pulumi.Output<string>, id: string): KeyGrant {
  const logGroup = pulumi.interpolate`arn:aws:logs:${region}:${accountId}:log-group:${rotationLogGroupName(id)}`;
  return {
    sid: "CloudWatchLogsOfTheLoginRotation",
    service: `logs.${region}.amazonaws.com`,
    actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    condition: { ArnEquals: { "kms:EncryptionContext:aws:logs:arn": logGroup } },
  };
}

let bundled: string | undefined;

/** The function's code: the rotation steps and what they import, one CommonJS file (cached per process). */
export function rotationFunctionCode(): string {
  if (bundled !== undefined) return bundled;
  const root = path.resolve(__dirname, "..", "..");
  const out = buildSync({
    absWorkingDir: root,
    entryPoints: ["operations/rotate/rotationFunction.ts"],
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    write: false,
    // pg's optional native binding is never loaded.
    external: ["pg-native"],
    legalComments: "none",
    logLevel: "silent",
  });
  bundled = out.outputFiles[0].text;
  return bundled;
}

export function loginRotation(name: string, a: LoginRotationArgs, opts: pulumi.CustomResourceOptions): LoginRotation {
  const { id, spec, tags } = a;
  const fn = `${id}-login-rotation`;
  const logGroup = new aws.cloudwatch.LogGroup(
    `${name}-rotation-logs`,
    { name: rotationLogGroupName(id), retentionInDays: ROTATION_LOG_RETENTION_DAYS, kmsKeyId: a.key.arn, tags },
    opts,
  );
  const role = new aws.iam.Role(
    `${name}-rotation-role`,
    {
      name: fn,
      assumeRolePolicy: policyDocument([{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }]),
      tags,
    },
    opts,
  );
  const secretsOfServer = pulumi.interpolate`arn:aws:secretsmanager:${spec.region}:${a.accountId}:secret:db-platform/${a.environment}/*`;
  const policy = new aws.iam.RolePolicy(
    `${name}-rotation-policy`,
    {
      role: role.id,
      policy: pulumi.all([secretsOfServer, a.masterSecretArn, a.key.arn, logGroup.arn]).apply(([secrets, master, key, logs]) =>
        policyDocument([
          {
            Sid: "RotateTheLoginSecretsOfThisServer",
            Effect: "Allow",
            Action: [
              "secretsmanager:DescribeSecret",
              "secretsmanager:GetSecretValue",
              "secretsmanager:PutSecretValue",
              "secretsmanager:UpdateSecretVersionStage",
            ],
            Resource: secrets,
            Condition: {
              StringEquals: {
                "secretsmanager:ResourceTag/db-platform:server": spec.name,
                "secretsmanager:ResourceTag/db-platform:environment": a.environment,
              },
            },
          },
          { Sid: "ReadTheMasterUserSecret", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: master },
          { Sid: "UseTheServerKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: key },
          { Sid: "WriteItsLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: `${logs}:*` },
          {
            // What a function in a VPC needs for its network interfaces (AWSLambdaVPCAccessExecutionRole's actions).
            Sid: "NetworkInterfacesInTheVpc",
            Effect: "Allow",
            Action: [
              "ec2:CreateNetworkInterface",
              "ec2:DescribeNetworkInterfaces",
              "ec2:DeleteNetworkInterface",
              "ec2:AssignPrivateIpAddresses",
              "ec2:UnassignPrivateIpAddresses",
            ],
            Resource: "*",
          },
        ]),
      ),
    },
    opts,
  );
  const { group: securityGroup, rules } = rotationNetwork(name, a, opts);
  const lambda = new aws.lambda.Function(
    `${name}-rotation-function`,
    {
      name: fn,
      description: `db-platform ${id}: rotates the service logins' secrets (alternating slots)`,
      runtime: ROTATION_RUNTIME,
      handler: "index.handler",
      code: new pulumi.asset.AssetArchive({ "index.js": new pulumi.asset.StringAsset(rotationFunctionCode()) }),
      role: role.arn,
      timeout: 60,
      memorySize: 256,
      vpcConfig: { subnetIds: spec.network.subnetIds, securityGroupIds: [securityGroup.id] },
      kmsKeyArn: a.key.arn,
      loggingConfig: { logFormat: "Text", logGroup: logGroup.name },
      environment: {
        variables: {
          [ROTATION_ENV.host]: a.instance.address,
          [ROTATION_ENV.port]: a.instance.port.apply(String),
          // The master user's password crosses this connection: the server's certificate is always verified.
          [ROTATION_ENV.sslMode]: "verify-full",
          [ROTATION_ENV.masterSecretArn]: a.masterSecretArn,
          [ROTATION_ENV.environment]: a.environment,
          // The secrets of pooled logins cannot name the proxy in a tag (the proxy reads them): the function knows it.
          ...(a.proxyEndpoints && Object.keys(a.proxyEndpoints).length > 0
            ? { [ROTATION_ENV.proxyEndpoints]: pulumi.output(a.proxyEndpoints).apply((e) => JSON.stringify(e)) }
            : {}),
          // Lambda's Node.js runtimes trust the RDS certificate authorities only when asked to.
          NODE_EXTRA_CA_CERTS: "/var/runtime/ca-cert.pem",
        },
      },
      tags,
    },
    opts,
  );
  const permission = new aws.lambda.Permission(
    `${name}-rotation-invoke`,
    { action: "lambda:InvokeFunction", function: lambda.name, principal: "secretsmanager.amazonaws.com", sourceAccount: a.accountId },
    opts,
  );
  // Configuring a rotation runs testSecret at once: the function needs its permissions and network by then.
  return { functionArn: lambda.arn, ready: [permission, policy, ...rules] };
}

/** A security group that reaches the server's PostgreSQL and HTTPS (Secrets Manager), and the server's rule letting it in. */
function rotationNetwork(
  name: string,
  a: LoginRotationArgs,
  opts: pulumi.CustomResourceOptions,
): { group: aws.ec2.SecurityGroup; rules: pulumi.Resource[] } {
  const { id, tags } = a;
  const group = new aws.ec2.SecurityGroup(
    `${name}-rotation-sg`,
    {
      name: `${id}-login-rotation`,
      description: `db-platform ${id}: the login rotation function; reaches its server and HTTPS only`,
      vpcId: a.spec.network.vpcId,
      egress: [],
      tags,
    },
    opts,
  );
  const rule = (suffix: string, args: Omit<aws.vpc.SecurityGroupEgressRuleArgs, "securityGroupId" | "ipProtocol" | "tags">) =>
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-rotation-egress-${suffix}`,
      { securityGroupId: group.id, ipProtocol: "tcp", tags, ...args },
      opts,
    );
  const postgres = rule("postgres", {
    fromPort: 5432,
    toPort: 5432,
    referencedSecurityGroupId: a.instanceSecurityGroupId,
    description: "PostgreSQL to its server",
  });
  const https = rule("https", {
    fromPort: 443,
    toPort: 443,
    cidrIpv4: "0.0.0.0/0",
    description: "HTTPS to Secrets Manager (VPC endpoint or NAT)",
  });
  const ingress = new aws.vpc.SecurityGroupIngressRule(
    `${name}-ingress-login-rotation`,
    {
      securityGroupId: a.instanceSecurityGroupId,
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: group.id,
      description: "PostgreSQL from the login rotation function",
      tags,
    },
    opts,
  );
  return { group, rules: [postgres, https, ingress] };
}

/**
 * A login secret rotated by its server's function every `days` days. Configuring it runs the
 * function's testSecret at once: the function's access, the secret's value and the login's
 * roles (`after`) must exist first.
 */
export function rotateLoginSecret(
  name: string,
  rotation: LoginRotation,
  secret: { arn: pulumi.Output<string>; version: pulumi.Resource },
  days: number,
  opts: { parent: pulumi.Resource; after?: readonly pulumi.Resource[] },
): aws.secretsmanager.SecretRotation {
  return new aws.secretsmanager.SecretRotation(
    name,
    {
      secretId: secret.arn,
      rotationLambdaArn: rotation.functionArn,
      rotationRules: { automaticallyAfterDays: days },
      rotateImmediately: false,
    },
    { parent: opts.parent, dependsOn: [...rotation.ready, secret.version, ...(opts.after ?? [])] },
  );
}
