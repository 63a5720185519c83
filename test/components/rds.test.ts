import { PLATFORM_PARAMETERS } from "./rdsParameters";
import { beforeAll, describe, expect, it } from "vitest";
import { input, prodValues, servers, changed } from "../helpers/config";
import { Resources, synthInput, T } from "../helpers/synth";

let prod: Resources;
let staging: Resources;

beforeAll(async () => {
  prod = await synthInput(input(prodValues()), "prod");
  staging = await synthInput(
    input(
      changed(prodValues(), (v) => {
        v.environment = "staging";
        servers(v).main.replicas = [{ name: "main-ro-1", instanceClass: "db.t4g.small" }];
        servers(v).main.requireTls = false;
        servers(v).main.parameters = { work_mem: "64MB" };
      }),
    ),
    "staging",
  );
});

describe("RdsServer in prod", () => {
  it("creates exactly the expected AWS resources per server", () => {
    // The backups' own resources (bucket, runner, alarms, replication keys) are test/components/backups.test.ts's.
    const counts = new Resources(prod.all.filter((r) => !r.urn.includes("db-platform:backups:Backups"))).countByType();
    expect(counts[T.rds]).toBe(2);
    expect(counts[T.kmsKey]).toBe(2);
    expect(counts[T.kmsAlias]).toBe(2);
    expect(counts[T.subnetGroup]).toBe(2);
    expect(counts[T.parameterGroup]).toBe(2);
    // Each server's and its login rotation function's (test/components/loginRotation.rds.test.ts).
    expect(counts[T.securityGroup]).toBe(4);
    expect(counts[T.ingress]).toBe(4);
    expect(counts[T.alarm]).toBe(6);
    expect(counts[T.topic]).toBe(2);
    expect(counts[T.iamRole]).toBe(4);
  });

  it("registers the instance with every secure default, exactly", () => {
    expect(prod.one(T.rds, "main-instance").props).toEqual({
      identifier: "prod-main",
      engine: "postgres",
      engineVersion: "16",
      instanceClass: "db.m7g.large",
      allocatedStorage: 20,
      maxAllocatedStorage: 500,
      storageType: "gp3",
      storageEncrypted: true,
      kmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      dbSubnetGroupName: "prod-main",
      vpcSecurityGroupIds: ["main-sg-id"],
      parameterGroupName: "prod-main-postgres16",
      publiclyAccessible: false,
      multiAz: true,
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: "prod-main-final",
      backupRetentionPeriod: 14,
      backupWindow: "02:00-03:00",
      maintenanceWindow: "sun:04:00-sun:05:00",
      autoMinorVersionUpgrade: true,
      allowMajorVersionUpgrade: false,
      copyTagsToSnapshot: true,
      deleteAutomatedBackups: false,
      iamDatabaseAuthenticationEnabled: true,
      username: "platform_admin",
      manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      performanceInsightsEnabled: true,
      performanceInsightsKmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      performanceInsightsRetentionPeriod: 7,
      monitoringInterval: 60,
      monitoringRoleArn: "arn:aws:synth:eu-central-1:000000000000:main-monitoring",
      enabledCloudwatchLogsExports: ["postgresql", "upgrade"],
      caCertIdentifier: "rds-ca-rsa2048-g1",
      applyImmediately: false,
      tags: { "db-platform:environment": "prod", "db-platform:server": "main", "managed-by": "db-platform" },
    });
  });

  it("forces TLS, logs slow queries and loads statement statistics in the parameter group of the version's family", () => {
    const pg = prod.one(T.parameterGroup, "main-params-postgres16").props;
    expect(pg.family).toBe("postgres16");
    expect(pg.parameters).toEqual(PLATFORM_PARAMETERS);
  });

  it("uses a rotating customer-managed key", () => {
    const key = prod.one(T.kmsKey, "main-key").props;
    expect(key).toMatchObject({ enableKeyRotation: true, deletionWindowInDays: 30 });
    expect(JSON.parse(key.policy as string).Statement[0].Principal.AWS).toBe("arn:aws:iam::000000000000:root");
  });

  it("admits only declared sources and has no egress", () => {
    expect(prod.one(T.securityGroup, "main-sg").props).toMatchObject({ vpcId: "vpc-1", egress: [] });
    expect(prod.one(T.ingress, "main-ingress-sg-0").props).toMatchObject({
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      referencedSecurityGroupId: "sg-app",
      securityGroupId: "main-sg-id",
    });
  });

  it("alarms on CPU, free storage and connections through an encrypted topic", () => {
    const alarms = prod.ofType(T.alarm).filter((a) => a.name.startsWith("main-"));
    expect(alarms.map((a) => [a.props.metricName, a.props.comparisonOperator, a.props.threshold])).toEqual([
      ["CPUUtilization", "GreaterThanThreshold", 80],
      ["FreeStorageSpace", "LessThanThreshold", Math.floor(20 * 1024 ** 3 * 0.1)],
      ["DatabaseConnections", "GreaterThanThreshold", 200],
    ]);
    for (const a of alarms) expect(a.props.alarmActions).toEqual([expect.stringContaining(":main-alarms")]);
    expect(prod.one(T.topic, "main-alarms").props.kmsMasterKeyId).toBe("arn:aws:kms:eu-central-1:000000000000:key/main-key");
  });

  it("connects the postgresql provider as a non-superuser over TLS, password secret", () => {
    expect(prod.one(T.pgProvider, "main-postgresql").props).toEqual({
      host: "prod-main.synth.rds.invalid",
      port: "5432",
      username: "platform_admin",
      password: "[secret]",
      database: "postgres",
      sslmode: "require",
      superuser: "false",
      expectedVersion: "16",
      connectTimeout: "30",
      // Unbounded pool: a bounded one deadlocks the provider under parallel creates (docs/apply-speed.md).
      maxConnections: "0",
    });
  });

  it("states the master user's secret rotation: RDS-managed, every 7 days unless masterPasswordRotationDays says otherwise", async () => {
    for (const server of ["main", "studio"]) {
      expect(prod.one("aws:secretsmanager/secretRotation:SecretRotation", `${server}-master-rotation`).props).toEqual({
        secretId: `arn:aws:secretsmanager:eu-central-1:000000000000:secret:rds!db-prod-${server}`,
        rotationRules: { automaticallyAfterDays: 7 },
        rotateImmediately: false,
      });
    }
    // Managed rotation: the platform's rotation functions rotate the service logins' secrets only.
    const rotated = prod.ofType("aws:secretsmanager/secretRotation:SecretRotation").filter((r) => r.props.rotationLambdaArn !== undefined);
    expect(rotated.map((r) => r.props.secretId)).not.toContain("arn:aws:secretsmanager:eu-central-1:000000000000:secret:rds!db-prod-main");
    const every30 = await synthInput(input(changed(prodValues(), (v) => (servers(v).main.masterPasswordRotationDays = 30))), "prod");
    expect(every30.one("aws:secretsmanager/secretRotation:SecretRotation", "main-master-rotation").props.rotationRules).toEqual({
      automaticallyAfterDays: 30,
    });
  });

  it("stores one RDS-shaped secret per login, encrypted with the server key", () => {
    const secrets = prod.ofType(T.secret).filter((s) => s.name.startsWith("inventory-"));
    expect(secrets.map((s) => s.props.name)).toEqual([
      "db-platform/prod/inventory/app",
      "db-platform/prod/inventory/readonly",
      "db-platform/prod/inventory/migrator",
    ]);
    for (const s of secrets)
      expect(s.props).toMatchObject({ kmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key", recoveryWindowInDays: 30 });
    expect(prod.one(T.secretVersion, "inventory-app-secret-version").props.secretString).toBe("[secret]");
  });
});

describe("RdsServer outside prod", () => {
  it("keeps TLS relaxation explicit in the parameter group and adds stack parameters", () => {
    const params = staging.one(T.parameterGroup, "main-params-postgres16").props.parameters as Array<{ name: string; value: string }>;
    expect(params.find((p) => p.name === "rds.force_ssl")?.value).toBe("0");
    expect(params.find((p) => p.name === "work_mem")?.value).toBe("64MB");
  });

  it("uses the lighter defaults", () => {
    expect(staging.one(T.rds, "main-instance").props).toMatchObject({
      multiAz: false,
      deletionProtection: false,
      backupRetentionPeriod: 7,
      instanceClass: "db.t4g.micro",
    });
  });

  it("creates a same-region replica of the primary, encrypted and private", () => {
    expect(staging.one(T.rds, "main-replica-main-ro-1").props).toMatchObject({
      identifier: "staging-main-ro-1",
      replicateSourceDb: "staging-main",
      instanceClass: "db.t4g.small",
      storageEncrypted: true,
      kmsKeyId: "arn:aws:kms:eu-central-1:000000000000:key/main-key",
      publiclyAccessible: false,
      iamDatabaseAuthenticationEnabled: true,
      performanceInsightsEnabled: true,
    });
  });
});
