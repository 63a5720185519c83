/**
 * RDS read replicas of the prod stack (Pulumi.prod.yaml): a same-region reader and a
 * cross-region disaster-recovery replica, asserted input by input as `synth --json` shows them.
 */
import { PLATFORM_PARAMETERS } from "./rdsParameters";
import { beforeAll, describe, expect, it } from "vitest";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { synthProgram } from "../../operations/stack/synth";
import type { ProgramOutputs } from "../../components/program";
import { Resources, resolve, ROOT, T } from "../helpers/synth";

let prod: Resources;
let outputs: ProgramOutputs;

beforeAll(async () => {
  const result = await synthProgram(readConfigFile(`${ROOT}/Pulumi.prod.yaml`), "db-platform", "prod");
  prod = new Resources(result.resources);
  outputs = result.outputs;
});

const SERVER = "urn:pulumi:prod::db-platform::db-platform:index:DatabasePlatform$db-platform:servers:RdsServer";
const DR_PROVIDER = `${SERVER}$pulumi:providers:aws::main-replica-main-dr-aws`;
const TAGS = { "db-platform:environment": "prod", "db-platform:server": "main", "managed-by": "db-platform" };
/** What every replica shares with its primary: monitoring, Performance Insights, IAM auth, logs. */
const observed = (keyArn: string) => ({
  iamDatabaseAuthenticationEnabled: true,
  performanceInsightsEnabled: true,
  performanceInsightsKmsKeyId: keyArn,
  performanceInsightsRetentionPeriod: 7,
  monitoringInterval: 60,
  monitoringRoleArn: "arn:aws:synth:eu-central-1:000000000000:main-monitoring",
  enabledCloudwatchLogsExports: ["postgresql", "upgrade"],
  caCertIdentifier: "rds-ca-rsa2048-g1",
});

const replicaTags = (replica: string) => ({ ...TAGS, "db-platform:replica-of": "main", "db-platform:replica": replica });

/** What every replica declares whatever its region: private, single-AZ, no backups of its own, protected. */
const REPLICA_FIXED = {
  storageType: "gp3",
  storageEncrypted: true,
  publiclyAccessible: false,
  multiAz: false,
  skipFinalSnapshot: true,
  backupRetentionPeriod: 0,
  deletionProtection: true,
  autoMinorVersionUpgrade: true,
  copyTagsToSnapshot: true,
  applyImmediately: false,
};

describe("same-region replica main-ro-1", () => {
  it("replicates the primary by identifier, with its own class, storage ceiling and parameter group", () => {
    const replica = prod.one(T.rds, "main-replica-main-ro-1");
    expect(replica.provider).toBeNull();
    expect(replica.props).toEqual({
      identifier: "prod-main-ro-1",
      replicateSourceDb: "prod-main",
      instanceClass: "db.r7g.large",
      maxAllocatedStorage: 1000,
      kmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      vpcSecurityGroupIds: ["main-sg-id"],
      parameterGroupName: "prod-main-ro-1-postgres16",
      ...REPLICA_FIXED,
      ...observed("arn:aws:kms:eu-central-1:000000000000:key/main-key"),
      tags: replicaTags("main-ro-1"),
    });
  });

  it("has a parameter group of its own: the platform's, the primary's, then its own parameters", () => {
    expect(prod.one(T.parameterGroup, "main-replica-main-ro-1-params-postgres16").props).toEqual({
      name: "prod-main-ro-1-postgres16",
      family: "postgres16",
      description: "db-platform prod-main-ro-1 (postgres16)",
      parameters: [...PLATFORM_PARAMETERS, { applyMethod: "immediate", name: "hot_standby_feedback", value: "1" }],
      tags: replicaTags("main-ro-1"),
    });
  });

  it("alarms on replica lag to the primary's topic", () => {
    expect(prod.one(T.alarm, "main-replica-main-ro-1-lag").props).toEqual({
      name: "prod-main-ro-1-replica-lag",
      namespace: "AWS/RDS",
      metricName: "ReplicaLag",
      dimensions: { DBInstanceIdentifier: "prod-main-ro-1" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 5,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 30,
      treatMissingData: "breaching",
      alarmActions: ["arn:aws:synth:eu-central-1:000000000000:main-alarms"],
      okActions: ["arn:aws:synth:eu-central-1:000000000000:main-alarms"],
      alarmDescription: "prod-main-ro-1: more than 30 s behind prod-main",
      tags: replicaTags("main-ro-1"),
    });
  });
});

describe("cross-region replica main-dr (eu-west-1)", () => {
  it("has an AWS provider for its region, and every regional resource uses it", () => {
    expect(prod.one(T.awsProvider, "main-replica-main-dr-aws").props).toMatchObject({ region: "eu-west-1" });
    const regional = prod.all.filter((r) => r.name.startsWith("main-replica-main-dr") && r.type !== T.awsProvider);
    expect(regional.map((r) => r.type).sort()).toEqual(
      [
        T.alarm,
        T.ingress,
        T.kmsAlias,
        T.kmsKey,
        T.parameterGroup,
        T.rds,
        T.securityGroup,
        T.subnetGroup,
        T.topic,
        T.topicSubscription,
      ].sort(),
    );
    for (const r of regional) expect(r.provider, r.name).toBe(DR_PROVIDER);
  });

  it("replicates the primary by ARN, encrypted with a key of its own region, in its own subnets", () => {
    const dr = prod.one(T.rds, "main-replica-main-dr");
    expect(dr.props).toEqual({
      identifier: "prod-main-dr",
      replicateSourceDb: "arn:aws:rds:eu-central-1:000000000000:db:prod-main",
      instanceClass: "db.m7g.large",
      maxAllocatedStorage: 2000,
      kmsKeyId: "arn:aws:kms:eu-west-1:000000000000:key/main-replica-main-dr-key",
      dbSubnetGroupName: "prod-main-dr",
      vpcSecurityGroupIds: ["main-replica-main-dr-sg-id"],
      parameterGroupName: "prod-main-dr-postgres16",
      ...REPLICA_FIXED,
      ...observed("arn:aws:kms:eu-west-1:000000000000:key/main-replica-main-dr-key"),
      tags: replicaTags("main-dr"),
    });
  });

  it("creates the key, subnet group and security group in the replica's region", () => {
    expect(prod.one(T.kmsKey, "main-replica-main-dr-key").props).toMatchObject({ enableKeyRotation: true, deletionWindowInDays: 30 });
    expect(prod.one(T.kmsAlias, "main-replica-main-dr-key-alias").props).toEqual({
      name: "alias/db-platform/prod-main-dr",
      targetKeyId: "main-replica-main-dr-key",
    });
    expect(prod.one(T.subnetGroup, "main-replica-main-dr-subnets").props).toEqual({
      name: "prod-main-dr",
      subnetIds: ["subnet-0f1e2d3c4b5a60001", "subnet-0f1e2d3c4b5a60002"],
      tags: TAGS,
      description: "Managed by Pulumi",
    });
    expect(prod.one(T.securityGroup, "main-replica-main-dr-sg").props).toMatchObject({ vpcId: "vpc-0f1e2d3c4b5a69788", egress: [] });
    expect(prod.one(T.ingress, "main-replica-main-dr-ingress-sg-0").props).toMatchObject({
      securityGroupId: "main-replica-main-dr-sg-id",
      referencedSecurityGroupId: "sg-0f1e2d3c4b5a6app1",
      fromPort: 5432,
      toPort: 5432,
    });
  });

  it("alarms on lag to an encrypted topic in its own region", () => {
    expect(prod.one(T.topic, "main-replica-main-dr-alarms").props).toEqual({
      name: "prod-main-dr-alarms",
      kmsMasterKeyId: "arn:aws:kms:eu-west-1:000000000000:key/main-replica-main-dr-key",
      tags: TAGS,
    });
    expect(prod.one(T.alarm, "main-replica-main-dr-lag").props).toMatchObject({
      dimensions: { DBInstanceIdentifier: "prod-main-dr" },
      alarmActions: ["arn:aws:synth:eu-west-1:000000000000:main-replica-main-dr-alarms"],
    });
  });
});

describe("reader routing", () => {
  it("points read-only logins at the reader replica and everything else at the primary", async () => {
    const inventory = outputs.services.inventory;
    expect(inventory.routing).toEqual({ app: "primary", readonly: "replica main-ro-1", migrator: "primary" });
    expect((await resolve(inventory.urls.readonly)).value).toMatch(
      /@prod-main-ro-1\.synth\.rds\.invalid:5432\/inventory_db\?sslmode=require$/,
    );
    expect((await resolve(inventory.urls.app)).value).toMatch(/@prod-main\.synth\.rds\.invalid:5432\/inventory_db\?/);
    expect(outputs.services["sv-sdk"].routing).toEqual({
      app: "primary",
      readonly: "replica main-ro-1",
      migrator: "primary",
      auditor: "replica main-ro-1",
    });
  });

  it("outputs which replica is the reader, and every replica's address and region", async () => {
    expect(outputs.servers.main.reader).toBe("main-ro-1");
    expect((await resolve(outputs.servers.main.replicas["main-dr"].host)).value).toBe("prod-main-dr.synth.rds.invalid");
    expect(outputs.servers.main.replicas["main-dr"].region).toBe("eu-west-1");
  });

  it("keeps a server without replicas on its primary", () => {
    expect(outputs.services.studio.routing).toEqual({ app: "primary", readonly: "primary", migrator: "primary" });
    expect(outputs.servers.studio.reader).toBeUndefined();
  });
});
