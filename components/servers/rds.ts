/**
 * A PostgreSQL server on AWS RDS, secure by default: private, encrypted with its own rotating
 * customer-managed key, TLS forced by its parameter group, master password managed by RDS in
 * Secrets Manager, IAM authentication, enhanced monitoring, log exports, alarms.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { RdsReplicaSpec, RdsServerSpec } from "../spec";
import { awsServerName } from "../spec";
import { STATS_SETTINGS } from "../spec/defaults";
import { alarmTopic, customerManagedKey } from "./aws";
import { type LoginRotation, loginRotation, rotationLogsGrant } from "./loginRotation";
import { admitDeclaredSources, RdsProxy } from "./rdsProxy";
import { parameterGroupFamily, parameterGroupName, type RdsRender, rdsRender } from "./rdsUpgrade";
import { ServerComponent, serverTags } from "./server";

export { parameterGroupFamily, parameterGroupName } from "./rdsUpgrade";

export interface RdsServerArgs {
  readonly spec: RdsServerSpec;
  readonly environment: string;
  /** Extra tags from `db-platform:tags`. @default {} */
  readonly tags?: Readonly<Record<string, string>>;
  /** Subscribed to the alarm topic when set. @default none */
  readonly alarmEmail?: string;
  /** The services on it with a pool: RDS Proxy in front of it (with `pooler`), an endpoint each. @default [] */
  readonly pooledServices?: readonly string[];
}

/**
 * Parameters the platform always sets; the stack's `parameters` (for a replica: the primary's
 * with the replica's own on top) are added after them.
 */
export function rdsParameters(
  spec: RdsServerSpec,
  parameters: Readonly<Record<string, string>> = spec.parameters,
): Array<{ name: string; value: string; applyMethod: string }> {
  const base: Record<string, string> = {
    "rds.force_ssl": spec.requireTls ? "1" : "0",
    log_min_duration_statement: String(spec.slowQueryMs),
    log_connections: "1",
    log_disconnections: "1",
    password_encryption: "scram-sha-256",
    // Per-service statistics (db-platform stats); RDS spells booleans 1/0.
    ...Object.fromEntries(Object.entries(STATS_SETTINGS).map(([k, v]) => [k, v === "on" ? "1" : v === "off" ? "0" : v])),
  };
  return Object.entries({ ...base, ...parameters }).map(([name, value]) => ({
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

/** Resource names of a replica and its regional resources: `<server>-replica-<replica>`. */
function replicaPrefix(server: string, replica: RdsReplicaSpec): string {
  return `${server}-replica-${replica.name}`;
}

/** Where a replica's regional resources come from: the primary's in its region, its own elsewhere. */
interface ReplicaPlacement {
  readonly key: aws.kms.Key;
  readonly securityGroup: aws.ec2.SecurityGroup;
  /** Cross-region only: a same-region replica uses its primary's subnet group. */
  readonly subnetGroup?: aws.rds.SubnetGroup;
  readonly alarmTopic: aws.sns.Topic;
  readonly opts: pulumi.CustomResourceOptions;
}

export class RdsServer extends ServerComponent {
  readonly spec: RdsServerSpec;
  readonly kmsKeyArn: pulumi.Output<string>;
  readonly instance: aws.rds.Instance;
  readonly masterSecretArn: pulumi.Output<string>;
  readonly alarmTopic: aws.sns.Topic;
  /** The primary's security group (PostgreSQL from declared sources only). */
  readonly securityGroupId: pulumi.Output<string>;
  private readonly accountId: pulumi.Output<string>;
  /** Read replicas by name, in declaration order (a cross-region one is absent while an upgrade detaches it). */
  readonly replicas: Record<string, aws.rds.Instance> = {};
  /** What this phase of a major upgrade declares (the steady state when none is in progress). */
  private readonly render: RdsRender;
  /** RDS Proxy, where the server has a `pooler` and a service a pool. */
  readonly proxy?: RdsProxy;
  /** The function Secrets Manager rotates the login secrets with: the services' and the monitoring login's (docs/rotation.md). */
  readonly loginRotation: LoginRotation;

  constructor(name: string, args: RdsServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:servers:RdsServer", name, {}, opts);
    const { spec, environment } = args;
    this.spec = spec;
    this.render = rdsRender(spec);
    const { render } = this;
    const id = awsServerName(environment, spec.name);
    const tags = serverTags(environment, spec.name, args.tags ?? {});
    const parent = { parent: this };

    const identity = aws.getCallerIdentityOutput({}, parent);
    this.accountId = identity.accountId;
    const grants = [rotationLogsGrant(spec.region, this.accountId, id)];
    const purpose = `db-platform ${id}: storage, Performance Insights, secrets`;
    const key = customerManagedKey(name, id, purpose, this.accountId, tags, parent, grants);
    this.kmsKeyArn = key.arn;
    const subnetGroup = new aws.rds.SubnetGroup(`${name}-subnets`, { name: id, subnetIds: spec.network.subnetIds, tags }, parent);
    const securityGroup = this.createSecurityGroup(name, id, spec.network, tags, parent);
    this.securityGroupId = securityGroup.id;
    const parameterGroups = this.createParameterGroups(name, id, spec.parameters, tags, parent);
    const monitoringRole = this.createMonitoringRole(name, id, tags);
    this.alarmTopic = alarmTopic(name, id, key, tags, args.alarmEmail, parent);

    this.instance = new aws.rds.Instance(
      `${name}-instance`,
      {
        identifier: id,
        engine: "postgres",
        engineVersion: render.running,
        instanceClass: spec.instanceClass,
        allocatedStorage: spec.allocatedStorage,
        maxAllocatedStorage: spec.maxAllocatedStorage,
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: key.arn,
        dbSubnetGroupName: subnetGroup.name,
        vpcSecurityGroupIds: [securityGroup.id],
        parameterGroupName: parameterGroups[render.running].name,
        publiclyAccessible: spec.publiclyAccessible,
        multiAz: spec.multiAz,
        deletionProtection: spec.deletionProtection,
        skipFinalSnapshot: spec.skipFinalSnapshot,
        finalSnapshotIdentifier: spec.skipFinalSnapshot ? undefined : `${id}-final`,
        backupRetentionPeriod: spec.backupRetentionDays,
        backupWindow: spec.backupWindow,
        maintenanceWindow: spec.maintenanceWindow,
        autoMinorVersionUpgrade: true,
        // Only the upgrade's own update (servers.<name>.upgrade.phase upgrade) may change the major.
        allowMajorVersionUpgrade: render.majorUpdate,
        copyTagsToSnapshot: true,
        deleteAutomatedBackups: false,
        username: spec.masterUsername,
        manageMasterUserPassword: true,
        masterUserSecretKmsKeyId: key.arn,
        ...observability(spec, key, monitoringRole),
        // A major upgrade applies now, in the window the operator chose by running it; nothing else does.
        applyImmediately: render.majorUpdate,
        tags: { ...tags, ...render.tags },
      },
      parent,
    );

    this.masterSecretArn = this.instance.masterUserSecrets.apply((s) => s[0]?.secretArn ?? "");
    const masterPassword = aws.secretsmanager
      .getSecretVersionOutput({ secretId: this.masterSecretArn }, parent)
      .secretString.apply((s) => JSON.parse(s).password as string);
    // The master user's secret is RDS's (managed rotation, no function of ours): its schedule stated, not left implicit.
    new aws.secretsmanager.SecretRotation(
      `${name}-master-rotation`,
      {
        secretId: this.masterSecretArn,
        rotationRules: { automaticallyAfterDays: spec.masterPasswordRotationDays },
        rotateImmediately: false,
      },
      parent,
    );

    this.connectAdmin(
      name,
      {
        host: this.instance.address,
        port: this.instance.port,
        username: spec.masterUsername,
        password: pulumi.secret(masterPassword),
        sslmode: spec.sslMode,
        // The RDS master user is not a superuser; the provider must not assume it is.
        superuser: false,
        expectedVersion: render.running,
        connectTimeout: 30,
      },
      parent,
    );

    this.createAlarms(name, id, tags);
    const { instance, masterSecretArn, accountId } = this;
    const instanceSecurityGroupId = securityGroup.id;
    const pooledServices = args.pooledServices ?? [];
    if (spec.pooler && pooledServices.length > 0) {
      const proxy = new RdsProxy(
        name,
        {
          id,
          spec: { ...spec, pooler: spec.pooler },
          instance: this.instance,
          instanceSecurityGroupId: securityGroup.id,
          kmsKeyArn: key.arn,
          region: spec.region,
          alarmTopicArn: this.alarmTopic.arn,
          services: pooledServices,
          tags,
        },
        parent,
      );
      this.proxy = proxy;
      this.pooler = (service) => ({ host: proxy.serviceEndpoints[service] ?? proxy.endpoint, port: pulumi.output(5432) });
    }
    // After the proxy: the function names each pooled service's endpoint (its secrets cannot).
    const proxyEndpoints = this.proxy?.serviceEndpoints;
    const rotation = { id, environment, spec, instance, masterSecretArn, accountId, key, tags, instanceSecurityGroupId, proxyEndpoints };
    this.loginRotation = loginRotation(name, rotation, parent);
    const sameRegion: ReplicaPlacement = { key, securityGroup, alarmTopic: this.alarmTopic, opts: parent };
    for (const replica of spec.replicas) {
      const placement = replica.crossRegion ? this.crossRegionPlacement(name, replica, tags, args.alarmEmail) : sameRegion;
      // Recreated from the upgraded primary once the upgrade is done (RDS upgrades in-region replicas only).
      if (replica.crossRegion && render.crossRegion === "detached") continue;
      const instance = this.createReplica(name, replica, placement, monitoringRole, tags);
      this.replicas[replica.name] = instance;
      this.replicaEndpoints[replica.name] = { host: instance.address, port: instance.port, region: replica.region };
    }

    this.registerOutputs({
      host: this.host,
      port: this.port,
      kmsKeyArn: this.kmsKeyArn,
      masterSecretArn: this.masterSecretArn,
      alarmTopicArn: this.alarmTopic.arn,
      reader: spec.reader,
      replicas: this.replicaEndpoints,
    });
  }

  /**
   * Where a cross-region replica lives: an AWS provider for its region, and there a
   * customer-managed key, a subnet group, a security group and an alarm topic of its own
   * (RDS, KMS and CloudWatch alarm actions are all regional).
   */
  private crossRegionPlacement(
    name: string,
    replica: RdsReplicaSpec,
    tags: Record<string, string>,
    alarmEmail: string | undefined,
  ): ReplicaPlacement {
    const environment = tags["db-platform:environment"];
    const id = awsServerName(environment, replica.name);
    const network = replica.network as Required<RdsReplicaSpec>["network"];
    const prefix = replicaPrefix(name, replica);
    const provider = new aws.Provider(`${prefix}-aws`, { region: replica.region as aws.Region }, { parent: this });
    const opts = { parent: this, provider };
    const key = customerManagedKey(prefix, id, `db-platform ${id}: storage, Performance Insights, secrets`, this.accountId, tags, opts);
    const subnetGroup = new aws.rds.SubnetGroup(`${prefix}-subnets`, { name: id, subnetIds: network.subnetIds, tags }, opts);
    const securityGroup = this.createSecurityGroup(prefix, id, network, tags, opts);
    const topic = alarmTopic(prefix, id, key, tags, alarmEmail, opts);
    return { key, securityGroup, subnetGroup, alarmTopic: topic, opts };
  }

  /**
   * A read replica: encrypted (with a key of its own region), private, its own parameter group,
   * instance class and storage ceiling, the primary's monitoring, and a replica lag alarm.
   * RDS for PostgreSQL replicas keep no automated backups of their own: their data is in the
   * primary's backups, and a promoted replica gets backups when the spec says so (docs/replicas.md).
   */
  private createReplica(
    name: string,
    replica: RdsReplicaSpec,
    placement: ReplicaPlacement,
    monitoringRole: aws.iam.Role,
    tags: Record<string, string>,
  ): aws.rds.Instance {
    const { spec } = this;
    const environment = tags["db-platform:environment"];
    const id = awsServerName(environment, replica.name);
    const prefix = replicaPrefix(name, replica);
    const replicaTags = { ...tags, "db-platform:replica-of": spec.name, "db-platform:replica": replica.name, ...this.render.tags };
    const parameterGroups = this.createParameterGroups(prefix, id, replica.parameters, replicaTags, placement.opts);
    const instance = new aws.rds.Instance(
      prefix,
      {
        identifier: id,
        // Same region: the source's identifier; another region: its ARN.
        replicateSourceDb: replica.crossRegion ? this.instance.arn : this.instance.identifier,
        instanceClass: replica.instanceClass,
        maxAllocatedStorage: replica.maxAllocatedStorage,
        storageType: "gp3",
        storageEncrypted: true,
        kmsKeyId: placement.key.arn,
        dbSubnetGroupName: placement.subnetGroup?.name,
        vpcSecurityGroupIds: [placement.securityGroup.id],
        parameterGroupName: parameterGroups[this.render.replicaFamily].name,
        publiclyAccessible: false,
        multiAz: false,
        skipFinalSnapshot: true,
        backupRetentionPeriod: 0,
        // Lifted only so that an upgrade can delete a cross-region replica (detach-replicas).
        deletionProtection: spec.deletionProtection && !(replica.crossRegion && this.render.crossRegion === "unprotected"),
        autoMinorVersionUpgrade: true,
        copyTagsToSnapshot: true,
        ...observability(spec, placement.key, monitoringRole),
        applyImmediately: false,
        tags: replicaTags,
      },
      placement.opts,
    );
    new aws.cloudwatch.MetricAlarm(
      `${prefix}-lag`,
      {
        name: `${id}-replica-lag`,
        namespace: "AWS/RDS",
        metricName: "ReplicaLag",
        dimensions: { DBInstanceIdentifier: instance.identifier },
        statistic: "Maximum",
        period: 60,
        evaluationPeriods: 5,
        comparisonOperator: "GreaterThanThreshold",
        threshold: spec.alarms.replicaLagSeconds,
        treatMissingData: "breaching",
        alarmActions: [placement.alarmTopic.arn],
        okActions: [placement.alarmTopic.arn],
        alarmDescription: `${id}: more than ${spec.alarms.replicaLagSeconds} s behind ${awsServerName(environment, spec.name)}`,
        tags: replicaTags,
      },
      placement.opts,
    );
    return instance;
  }

  /**
   * One parameter group per family in use (two while an upgrade is in progress), named after it.
   * The running family's group keeps the resource of the unsuffixed name groups had before.
   */
  private createParameterGroups(
    name: string,
    id: string,
    parameters: Readonly<Record<string, string>>,
    tags: Record<string, string>,
    opts: pulumi.CustomResourceOptions,
  ): Record<string, aws.rds.ParameterGroup> {
    const groups: Record<string, aws.rds.ParameterGroup> = {};
    for (const version of this.render.families) {
      const family = parameterGroupFamily(version);
      groups[version] = new aws.rds.ParameterGroup(
        `${name}-params-${family}`,
        {
          name: parameterGroupName(id, version),
          family,
          description: `db-platform ${id} (${family})`,
          parameters: rdsParameters(this.spec, parameters),
          tags,
        },
        { ...opts, aliases: version === this.render.aliasedFamily ? [{ name: `${name}-params` }] : [] },
      );
    }
    return groups;
  }

  private createSecurityGroup(
    name: string,
    id: string,
    network: RdsServerSpec["network"],
    tags: Record<string, string>,
    opts: pulumi.CustomResourceOptions,
  ): aws.ec2.SecurityGroup {
    const group = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      // No egress rules: the database never initiates connections.
      { name: id, description: `db-platform ${id}: PostgreSQL from declared sources only`, vpcId: network.vpcId, egress: [], tags },
      opts,
    );
    admitDeclaredSources(name, group.id, network, tags, opts);
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
    const freeBytes = Math.floor((allocatedStorage * 1024 ** 3 * alarms.freeStoragePercent) / 100);
    const above = "GreaterThanThreshold";
    const thresholds: Array<[resource: string, alarm: string, metric: string, statistic: string, comparison: string, number, string]> = [
      ["cpu", "cpu", "CPUUtilization", "Average", above, alarms.cpuPercent, `CPU above ${alarms.cpuPercent}%`],
      [
        "storage",
        "free-storage",
        "FreeStorageSpace",
        "Minimum",
        "LessThanThreshold",
        freeBytes,
        `free storage below ${alarms.freeStoragePercent}% of ${allocatedStorage} GiB`,
      ],
      [
        "connections",
        "connections",
        "DatabaseConnections",
        "Maximum",
        above,
        alarms.connections,
        `more than ${alarms.connections} connections`,
      ],
    ];
    for (const [resource, alarm, metricName, statistic, comparisonOperator, threshold, what] of thresholds) {
      new aws.cloudwatch.MetricAlarm(
        `${name}-${resource}`,
        { ...common, name: `${id}-${alarm}`, metricName, statistic, comparisonOperator, threshold, alarmDescription: `${id}: ${what}` },
        { parent: this },
      );
    }
  }
}
