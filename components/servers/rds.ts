/**
 * A PostgreSQL server on AWS RDS, secure by default: private, encrypted with its own rotating
 * customer-managed key, TLS forced by its parameter group, master password managed by RDS in
 * Secrets Manager, IAM authentication, enhanced monitoring, log exports, alarms.
 */
import * as aws from "@pulumi/aws";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import type { RdsServerSpec } from "../spec";
import { awsServerName } from "../spec";
import { type ServerHandle, serverTags } from "./server";

export interface RdsServerArgs {
  readonly spec: RdsServerSpec;
  readonly environment: string;
  /** Extra tags from `db-platform:tags`. @default {} */
  readonly tags?: Readonly<Record<string, string>>;
  /** Subscribed to the alarm topic when set. @default none */
  readonly alarmEmail?: string;
}

/** The parameter group family of a major version: `postgres16`. */
export function parameterGroupFamily(version: string): string {
  return `postgres${version}`;
}

/** Parameters the platform always sets; stack `parameters` are added after them. */
export function rdsParameters(spec: RdsServerSpec): Array<{ name: string; value: string; applyMethod: string }> {
  const base: Record<string, string> = {
    "rds.force_ssl": spec.requireTls ? "1" : "0",
    log_min_duration_statement: String(spec.slowQueryMs),
    log_connections: "1",
    log_disconnections: "1",
    password_encryption: "scram-sha-256",
  };
  return Object.entries({ ...base, ...spec.parameters }).map(([name, value]) => ({
    name,
    value,
    // Static parameters need a reboot; RDS refuses "immediate" for them.
    applyMethod: name === "rds.force_ssl" || name.startsWith("shared_") ? "pending-reboot" : "immediate",
  }));
}

/** IAM auth, encrypted Performance Insights, enhanced monitoring, log exports, CA: the same on primaries and replicas. */
function observability(spec: RdsServerSpec, key: aws.kms.Key, monitoringRole: aws.iam.Role) {
  return {
    iamDatabaseAuthenticationEnabled: true,
    performanceInsightsEnabled: true,
    performanceInsightsKmsKeyId: key.arn,
    performanceInsightsRetentionPeriod: spec.performanceInsightsRetentionDays,
    monitoringInterval: spec.monitoringIntervalSeconds,
    monitoringRoleArn: spec.monitoringIntervalSeconds > 0 ? monitoringRole.arn : undefined,
    enabledCloudwatchLogsExports: ["postgresql", "upgrade"],
    caCertIdentifier: "rds-ca-rsa2048-g1",
  };
}

export class RdsServer extends pulumi.ComponentResource implements ServerHandle {
  readonly spec: RdsServerSpec;
  readonly provider: postgresql.Provider;
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly sslMode: string;
  readonly component = this;
  readonly kmsKeyArn: pulumi.Output<string>;
  readonly instance: aws.rds.Instance;
  readonly masterSecretArn: pulumi.Output<string>;
  readonly alarmTopic: aws.sns.Topic;
  /** Same-region read replicas, in declaration order. */
  readonly replicas: aws.rds.Instance[];

  constructor(name: string, args: RdsServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:servers:RdsServer", name, {}, opts);
    const { spec, environment } = args;
    this.spec = spec;
    this.sslMode = spec.sslMode;
    const id = awsServerName(environment, spec.name);
    const tags = serverTags(environment, spec.name, args.tags ?? {});
    const parent = { parent: this };

    const identity = aws.getCallerIdentityOutput({}, parent);
    const key = this.createKey(name, id, tags, identity.accountId);
    this.kmsKeyArn = key.arn;
    const subnetGroup = new aws.rds.SubnetGroup(`${name}-subnets`, { name: id, subnetIds: spec.network.subnetIds, tags }, parent);
    const securityGroup = this.createSecurityGroup(name, id, tags);
    const parameterGroup = new aws.rds.ParameterGroup(
      `${name}-params`,
      { name: id, family: parameterGroupFamily(spec.version), description: `db-platform ${id}`, parameters: rdsParameters(spec), tags },
      parent,
    );
    const monitoringRole = this.createMonitoringRole(name, id, tags);

    this.instance = new aws.rds.Instance(
      `${name}-instance`,
      {
        identifier: id,
        engine: "postgres",
        engineVersion: spec.version,
        instanceClass: spec.instanceClass,
        allocatedStorage: spec.allocatedStorage,
        maxAllocatedStorage: spec.maxAllocatedStorage,
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: key.arn,
        dbSubnetGroupName: subnetGroup.name,
        vpcSecurityGroupIds: [securityGroup.id],
        parameterGroupName: parameterGroup.name,
        publiclyAccessible: spec.publiclyAccessible,
        multiAz: spec.multiAz,
        deletionProtection: spec.deletionProtection,
        skipFinalSnapshot: spec.skipFinalSnapshot,
        finalSnapshotIdentifier: spec.skipFinalSnapshot ? undefined : `${id}-final`,
        backupRetentionPeriod: spec.backupRetentionDays,
        backupWindow: spec.backupWindow,
        maintenanceWindow: spec.maintenanceWindow,
        autoMinorVersionUpgrade: true,
        allowMajorVersionUpgrade: false,
        copyTagsToSnapshot: true,
        deleteAutomatedBackups: false,
        username: spec.masterUsername,
        manageMasterUserPassword: true,
        masterUserSecretKmsKeyId: key.arn,
        ...observability(spec, key, monitoringRole),
        applyImmediately: false,
        tags,
      },
      parent,
    );

    this.host = this.instance.address;
    this.port = this.instance.port;
    this.masterSecretArn = this.instance.masterUserSecrets.apply((s) => s[0]?.secretArn ?? "");
    const masterPassword = aws.secretsmanager
      .getSecretVersionOutput({ secretId: this.masterSecretArn }, parent)
      .secretString.apply((s) => JSON.parse(s).password as string);

    this.provider = new postgresql.Provider(
      `${name}-postgresql`,
      {
        host: this.host,
        port: this.port,
        username: spec.masterUsername,
        password: pulumi.secret(masterPassword),
        database: "postgres",
        sslmode: spec.sslMode,
        // The RDS master user is not a superuser; the provider must not assume it is.
        superuser: false,
        expectedVersion: spec.version,
        connectTimeout: 30,
      },
      parent,
    );

    this.replicas = spec.replicas.map((replica) =>
      this.createReplica(name, replica, securityGroup, parameterGroup, monitoringRole, key, tags),
    );

    this.alarmTopic = new aws.sns.Topic(`${name}-alarms`, { name: `${id}-alarms`, kmsMasterKeyId: key.arn, tags }, parent);
    if (args.alarmEmail) {
      new aws.sns.TopicSubscription(
        `${name}-alarms-email`,
        { topic: this.alarmTopic.arn, protocol: "email", endpoint: args.alarmEmail },
        parent,
      );
    }
    this.createAlarms(name, id, tags);

    this.registerOutputs({
      host: this.host,
      port: this.port,
      kmsKeyArn: this.kmsKeyArn,
      masterSecretArn: this.masterSecretArn,
      alarmTopicArn: this.alarmTopic.arn,
      replicaEndpoints: this.replicas.map((r) => r.address),
    });
  }

  /** A same-region read replica: encrypted with the primary's key, private, monitored. */
  private createReplica(
    name: string,
    replica: RdsServerSpec["replicas"][number],
    securityGroup: aws.ec2.SecurityGroup,
    parameterGroup: aws.rds.ParameterGroup,
    monitoringRole: aws.iam.Role,
    key: aws.kms.Key,
    tags: Record<string, string>,
  ): aws.rds.Instance {
    const { spec } = this;
    const environment = tags["db-platform:environment"];
    return new aws.rds.Instance(
      `${name}-replica-${replica.name}`,
      {
        identifier: awsServerName(environment, replica.name),
        replicateSourceDb: this.instance.identifier,
        instanceClass: replica.instanceClass ?? spec.instanceClass,
        maxAllocatedStorage: spec.maxAllocatedStorage,
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: key.arn,
        vpcSecurityGroupIds: [securityGroup.id],
        parameterGroupName: parameterGroup.name,
        publiclyAccessible: false,
        multiAz: false,
        // A replica's data lives in its primary's backups; it takes no snapshot of its own.
        skipFinalSnapshot: true,
        backupRetentionPeriod: 0,
        deletionProtection: spec.deletionProtection,
        autoMinorVersionUpgrade: true,
        copyTagsToSnapshot: true,
        ...observability(spec, key, monitoringRole),
        tags: { ...tags, "db-platform:replica-of": spec.name },
      },
      { parent: this },
    );
  }

  private createKey(name: string, id: string, tags: Record<string, string>, accountId: pulumi.Output<string>): aws.kms.Key {
    const policy = accountId.apply((account) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "AccountAdministers",
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${account}:root` },
            Action: "kms:*",
            Resource: "*",
          },
          {
            Sid: "CloudWatchAlarmsPublishToEncryptedTopic",
            Effect: "Allow",
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
            Resource: "*",
          },
        ],
      }),
    );
    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `db-platform ${id}: storage, Performance Insights, secrets`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy,
        tags,
      },
      { parent: this },
    );
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/db-platform/${id}`, targetKeyId: key.keyId }, { parent: this });
    return key;
  }

  private createSecurityGroup(name: string, id: string, tags: Record<string, string>): aws.ec2.SecurityGroup {
    const { network } = this.spec;
    const group = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      // No egress rules: the database never initiates connections.
      { name: id, description: `db-platform ${id}: PostgreSQL from declared sources only`, vpcId: network.vpcId, egress: [], tags },
      { parent: this },
    );
    const sources = [
      ...network.allowedCidrs.map((cidr, i) => ({ key: `cidr-${i}`, from: cidr, rule: { cidrIpv4: cidr } })),
      ...network.allowedSecurityGroupIds.map((sg, i) => ({ key: `sg-${i}`, from: sg, rule: { referencedSecurityGroupId: sg } })),
    ];
    for (const source of sources) {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-ingress-${source.key}`,
        {
          securityGroupId: group.id,
          ipProtocol: "tcp",
          fromPort: 5432,
          toPort: 5432,
          ...source.rule,
          description: `PostgreSQL from ${source.from}`,
          tags,
        },
        { parent: this },
      );
    }
    return group;
  }

  private createMonitoringRole(name: string, id: string, tags: Record<string, string>): aws.iam.Role {
    const role = new aws.iam.Role(
      `${name}-monitoring`,
      {
        name: `${id}-rds-monitoring`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "monitoring.rds.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags,
      },
      { parent: this },
    );
    new aws.iam.RolePolicyAttachment(
      `${name}-monitoring-policy`,
      { role: role.name, policyArn: "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole" },
      { parent: this },
    );
    return role;
  }

  private createAlarms(name: string, id: string, tags: Record<string, string>): void {
    const { alarms, allocatedStorage } = this.spec;
    const common = {
      namespace: "AWS/RDS",
      dimensions: { DBInstanceIdentifier: this.instance.identifier },
      alarmActions: [this.alarmTopic.arn],
      okActions: [this.alarmTopic.arn],
      period: 300,
      evaluationPeriods: 3,
      treatMissingData: "breaching",
      tags,
    };
    new aws.cloudwatch.MetricAlarm(
      `${name}-cpu`,
      {
        ...common,
        name: `${id}-cpu`,
        metricName: "CPUUtilization",
        statistic: "Average",
        comparisonOperator: "GreaterThanThreshold",
        threshold: alarms.cpuPercent,
        alarmDescription: `${id}: CPU above ${alarms.cpuPercent}%`,
      },
      { parent: this },
    );
    const freeBytes = Math.floor((allocatedStorage * 1024 ** 3 * alarms.freeStoragePercent) / 100);
    new aws.cloudwatch.MetricAlarm(
      `${name}-storage`,
      {
        ...common,
        name: `${id}-free-storage`,
        metricName: "FreeStorageSpace",
        statistic: "Minimum",
        comparisonOperator: "LessThanThreshold",
        threshold: freeBytes,
        alarmDescription: `${id}: free storage below ${alarms.freeStoragePercent}% of ${allocatedStorage} GiB`,
      },
      { parent: this },
    );
    new aws.cloudwatch.MetricAlarm(
      `${name}-connections`,
      {
        ...common,
        name: `${id}-connections`,
        metricName: "DatabaseConnections",
        statistic: "Maximum",
        comparisonOperator: "GreaterThanThreshold",
        threshold: alarms.connections,
        alarmDescription: `${id}: more than ${alarms.connections} connections`,
      },
      { parent: this },
    );
  }
}
