/**
 * RDS Proxy in front of an RDS primary (`servers.<name>.pooler` on rds; docs/pooling.md): the
 * pooled service logins connect to it, and it logs in to the instance as each of them with the
 * Secrets Manager secret the stack already makes for that login. TLS is required, clients
 * authenticate with SCRAM-SHA-256, and the admin's and the monitoring login's secrets are never
 * on it (the policy pack's rds-proxy-* rules). Its role reads exactly those secrets, and decrypts
 * them with the server's key through Secrets Manager only. Its security group admits the
 * server's declared sources and reaches the instance only; the instance admits it.
 *
 * Each pooled service gets an endpoint of its own (RDS Proxy's per-application endpoints, up to
 * 20 a proxy), so its clients' wait for a server connection is a metric of its own
 * (`ProxyName`, `EndpointName`) with an alarm of its own; the proxy-wide figures stay on the
 * dashboard.
 *
 * The logins are known once the services exist, after the server: `admit` hands them over, and
 * the proxy's inputs wait for them (an output of a promise keeps their resources as dependencies).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { RdsProxySpec, RdsServerSpec } from "../spec";
import { proxyEndpointName } from "../spec/naming";

/** A pooled login the proxy admits: its name on the server, its secret, its service. */
export interface ProxyLogin {
  readonly username: string;
  readonly secretArn: pulumi.Output<string>;
  readonly service: string;
}

export interface RdsProxyArgs {
  /** `<env>-<server>`: the proxy's, its role's and its security group's name. */
  readonly id: string;
  readonly spec: RdsServerSpec & { readonly pooler: RdsProxySpec };
  readonly instance: aws.rds.Instance;
  readonly instanceSecurityGroupId: pulumi.Output<string>;
  readonly kmsKeyArn: pulumi.Output<string>;
  readonly region: string;
  readonly alarmTopicArn: pulumi.Output<string>;
  /** The services on the server with a pool: an endpoint and an alarm each. */
  readonly services: readonly string[];
  readonly tags: Record<string, string>;
}

/** PostgreSQL from each declared source (CIDRs, security groups) into a security group, on 5432. */
export function admitDeclaredSources(
  name: string,
  groupId: pulumi.Input<string>,
  network: RdsServerSpec["network"],
  tags: Record<string, string>,
  opts: pulumi.CustomResourceOptions,
): void {
  const sources = [
    ...network.allowedCidrs.map((cidr, i) => ({ key: `cidr-${i}`, from: cidr, rule: { cidrIpv4: cidr } })),
    ...network.allowedSecurityGroupIds.map((sg, i) => ({ key: `sg-${i}`, from: sg, rule: { referencedSecurityGroupId: sg } })),
  ];
  for (const source of sources) {
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-ingress-${source.key}`,
      {
        securityGroupId: groupId,
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        ...source.rule,
        description: `PostgreSQL from ${source.from}`,
        tags,
      },
      opts,
    );
  }
}

export class RdsProxy {
  readonly proxy: aws.rds.Proxy;
  /** The proxy's default endpoint, on 5432 (a service without an endpoint of its own, during a move). */
  readonly endpoint: pulumi.Output<string>;
  /** Per pooled service, the endpoint its pooled logins connect to, on 5432. */
  readonly serviceEndpoints: Readonly<Record<string, pulumi.Output<string>>>;
  private admitLogins!: (logins: readonly ProxyLogin[]) => void;

  constructor(name: string, args: RdsProxyArgs, opts: pulumi.CustomResourceOptions) {
    const { id, spec, tags } = args;
    const pooler = spec.pooler;
    const logins = pulumi.output(new Promise<readonly ProxyLogin[]>((resolve) => (this.admitLogins = resolve)));
    const role = new aws.iam.Role(
      `${name}-proxy-role`,
      {
        name: `${id}-rds-proxy`,
        description: `db-platform ${id}: RDS Proxy reads the pooled logins' secrets`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "rds.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags,
      },
      opts,
    );
    new aws.iam.RolePolicy(
      `${name}-proxy-secrets`,
      {
        role: role.id,
        policy: pulumi.all([logins, args.kmsKeyArn]).apply(([admitted, key]) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "PooledLoginSecrets",
                Effect: "Allow",
                Action: ["secretsmanager:GetSecretValue"],
                Resource: admitted.map((l) => l.secretArn),
              },
              {
                Sid: "DecryptThroughSecretsManager",
                Effect: "Allow",
                Action: ["kms:Decrypt"],
                Resource: key,
                Condition: { StringEquals: { "kms:ViaService": `secretsmanager.${args.region}.amazonaws.com` } },
              },
            ],
          }),
        ),
      },
      opts,
    );
    const group = new aws.ec2.SecurityGroup(
      `${name}-proxy-sg`,
      {
        name: `${id}-proxy`,
        description: `db-platform ${id}: RDS Proxy, from declared sources to the instance only`,
        vpcId: spec.network.vpcId,
        egress: [],
        tags,
      },
      opts,
    );
    admitDeclaredSources(`${name}-proxy`, group.id, spec.network, tags, opts);
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-proxy-egress-instance`,
      {
        securityGroupId: group.id,
        referencedSecurityGroupId: args.instanceSecurityGroupId,
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        description: `PostgreSQL to ${id}`,
        tags,
      },
      opts,
    );
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-ingress-proxy`,
      {
        securityGroupId: args.instanceSecurityGroupId,
        referencedSecurityGroupId: group.id,
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        description: `PostgreSQL from RDS Proxy ${id}`,
        tags,
      },
      opts,
    );
    this.proxy = new aws.rds.Proxy(
      `${name}-proxy`,
      {
        name: id,
        engineFamily: "POSTGRESQL",
        requireTls: true,
        debugLogging: false,
        idleClientTimeout: pooler.idleClientTimeoutSeconds,
        roleArn: role.arn,
        vpcSubnetIds: spec.network.subnetIds,
        vpcSecurityGroupIds: [group.id],
        auths: logins.apply((admitted) =>
          admitted.map((l) => ({
            authScheme: "SECRETS",
            clientPasswordAuthType: "POSTGRES_SCRAM_SHA_256",
            iamAuth: "DISABLED",
            secretArn: l.secretArn,
            username: l.username,
            description: `${l.service}: ${l.username}`,
          })),
        ),
        tags,
      },
      opts,
    );
    this.endpoint = this.proxy.endpoint;
    const targetGroup = new aws.rds.ProxyDefaultTargetGroup(
      `${name}-proxy-pool`,
      {
        dbProxyName: this.proxy.name,
        connectionPoolConfig: {
          maxConnectionsPercent: pooler.maxConnectionsPercent,
          maxIdleConnectionsPercent: pooler.maxIdleConnectionsPercent,
          connectionBorrowTimeout: pooler.connectionBorrowTimeoutSeconds,
        },
      },
      opts,
    );
    new aws.rds.ProxyTarget(
      `${name}-proxy-target`,
      { dbProxyName: this.proxy.name, targetGroupName: targetGroup.name, dbInstanceIdentifier: args.instance.identifier },
      opts,
    );
    this.serviceEndpoints = Object.fromEntries(
      args.services.map((service) => [service, this.serviceEndpoint(name, args, group.id, service, opts).endpoint]),
    );
  }

  /** A service's own endpoint to the primary, and the alarm on its clients' wait. */
  private serviceEndpoint(
    name: string,
    args: RdsProxyArgs,
    groupId: pulumi.Output<string>,
    service: string,
    opts: pulumi.CustomResourceOptions,
  ): aws.rds.ProxyEndpoint {
    const { id, spec, tags } = args;
    const endpointName = proxyEndpointName(id, service);
    const endpoint = new aws.rds.ProxyEndpoint(
      `${name}-proxy-${service}`,
      {
        dbProxyName: this.proxy.name,
        dbProxyEndpointName: endpointName,
        targetRole: "READ_WRITE",
        vpcSubnetIds: spec.network.subnetIds,
        vpcSecurityGroupIds: [groupId],
        tags: { ...tags, "db-platform:service": service },
      },
      opts,
    );
    const waitMs = spec.pooler.waitAlarmMs;
    new aws.cloudwatch.MetricAlarm(
      `${name}-proxy-${service}-wait`,
      {
        name: `${id}-proxy-${service}-clients-waiting`,
        namespace: "AWS/RDS",
        metricName: "DatabaseConnectionsBorrowLatency",
        dimensions: { ProxyName: this.proxy.name, EndpointName: endpoint.dbProxyEndpointName },
        extendedStatistic: "p99",
        period: 300,
        evaluationPeriods: 1,
        comparisonOperator: "GreaterThanThreshold",
        // Microseconds.
        threshold: waitMs * 1000,
        // No client borrowed a connection: nobody waited.
        treatMissingData: "notBreaching",
        alarmActions: [args.alarmTopicArn],
        okActions: [args.alarmTopicArn],
        alarmDescription: `${id}: ${service}'s clients of RDS Proxy waited more than ${waitMs} ms for a server connection (p99, 5 min)`,
        tags,
      },
      opts,
    );
    return endpoint;
  }

  /** The pooled logins it admits (once, after the services are created). */
  admit(logins: readonly ProxyLogin[]): void {
    this.admitLogins(logins);
  }
}
