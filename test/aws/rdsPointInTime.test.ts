/**
 * The RDS side of `restore --to-time` and `backup drill --to-time` (operations/archive/rdsScratch.ts):
 * the restore window checked before anything is created, RDS's point-in-time restore asked with
 * exactly the inputs the scratch instance needs (private, single-AZ, unprotected, no backups,
 * a managed master secret, the source's network and groups, tagged), the master login read from
 * that secret, the read-only role granted on the scratch only, the instance deleted afterwards,
 * and a killed run's instance reused or deleted. The RDS and Secrets Manager calls are answered
 * by a local AWS API emulator (moto, from PyPI: test/helpers/awsEmulator.ts) — an emulator,
 * labelled as such, not AWS: its instances run no PostgreSQL, so the scratch instance's endpoint
 * is pointed at a real local PostgreSQL 16 whose admin is not a superuser, given the master login
 * the emulator's secret names. Then `restore --to-time` of one service on an RDS-hosted server as
 * a whole: the dev stack applied by the real engine stands as the RDS instance (reached with its
 * non-superuser admin as the master, and the services' read-only logins), and a physical copy of
 * it promoted at the moment stands as what RDS restores.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateDBInstanceCommand,
  CreateDBParameterGroupCommand,
  CreateDBSubnetGroupCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  type RestoreDBInstanceToPointInTimeCommandInput,
} from "@aws-sdk/client-rds";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RdsServerSpec, Spec } from "../../components/spec";
import type { BackupContext } from "../../operations/backup/command";
import { restoreToTime } from "../../operations/archive/pointInTime";
import { loadBackupContext } from "../../operations/backup/task";
import { type AppliedStack, FIXTURE_ADMIN_PASSWORD, startAppliedDevStack } from "../helpers/appliedDevStack";
import { ENGINE, SKIPPED_BECAUSE } from "../helpers/engine";
import { LocalPostgres } from "../../operations/local/postgres";
import { loadSpec } from "../../operations/move/plan";
import { type RdsScratchOptions, rdsScratchAt, scratchIdentifier } from "../../operations/archive/rdsScratch";
import { ArchiveError } from "../../operations/archive/barman";
import { type AwsEmulator, startAwsEmulator } from "../helpers/awsEmulator";
import { freePort } from "../helpers/ports";
import { ROOT } from "../helpers/synth";

const ADMIN = { user: "platform_admin", password: "s3cret-admin-pass" };
const spec = loadSpec(path.join(ROOT, "Pulumi.prod.yaml"));
const prodMain = spec.servers.find((s) => s.name === "main") as RdsServerSpec;
// The emulator's region, and the local server's plain TCP (it has no RDS certificate).
const server: RdsServerSpec = { ...prodMain, region: "us-east-1", sslMode: "disable" };
const SOURCE = "prod-main";

let emulator: AwsEmulator;
let rds: RDSClient;
let pg: LocalPostgres;
let port: number;
let dir: string;
/** Every RestoreDBInstanceToPointInTime input sent, as the SDK sent it. */
const restores: RestoreDBInstanceToPointInTimeCommandInput[] = [];

/** EC2's query API on the emulator, for the source's network (the project has no EC2 client). */
async function ec2(params: Record<string, string>): Promise<string> {
  const res = await fetch(emulator.endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: new URLSearchParams({ Version: "2016-11-15", ...params }).toString(),
  });
  return res.text();
}
const idIn = (xml: string, tag: string) => (new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(xml) as RegExpExecArray)[1];

async function createSource(identifier: string, retentionDays: number): Promise<void> {
  const vpc = idIn(await ec2({ Action: "CreateVpc", CidrBlock: "10.9.0.0/16" }), "vpcId");
  const subnets = [];
  for (const [i, zone] of ["us-east-1a", "us-east-1b"].entries()) {
    subnets.push(idIn(await ec2({ Action: "CreateSubnet", VpcId: vpc, CidrBlock: `10.9.${i}.0/24`, AvailabilityZone: zone }), "subnetId"));
  }
  const sg = idIn(
    await ec2({ Action: "CreateSecurityGroup", GroupName: `${identifier}-sg`, GroupDescription: "db", VpcId: vpc }),
    "groupId",
  );
  await rds.send(
    new CreateDBSubnetGroupCommand({ DBSubnetGroupName: `${identifier}-private`, DBSubnetGroupDescription: "private", SubnetIds: subnets }),
  );
  await rds.send(
    new CreateDBParameterGroupCommand({
      DBParameterGroupName: `${identifier}-pg16`,
      DBParameterGroupFamily: "postgres16",
      Description: "db",
    }),
  );
  await rds.send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: identifier,
      Engine: "postgres",
      EngineVersion: "16.6",
      DBInstanceClass: "db.m7g.large",
      AllocatedStorage: 100,
      MasterUsername: "dbadmin",
      // The program lets RDS manage the master password; the emulator cannot restore an instance that does.
      MasterUserPassword: "source-master-pass",
      DBSubnetGroupName: `${identifier}-private`,
      VpcSecurityGroupIds: [sg],
      DBParameterGroupName: `${identifier}-pg16`,
      BackupRetentionPeriod: retentionDays,
      StorageEncrypted: true,
      PubliclyAccessible: false,
      MultiAZ: true,
      DeletionProtection: true,
    }),
  );
}

/** The emulator's instance runs nothing: its endpoint is the local server, which gets the master login the secret names. */
const reach: RdsScratchOptions["reach"] = async (_endpoint, master) => {
  const c = new Client({ host: "127.0.0.1", port, ...ADMIN, database: "postgres" });
  await c.connect();
  try {
    const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [master.username]);
    const verb = exists.rowCount ? "ALTER" : "CREATE";
    await c.query(`${verb} ROLE "${master.username}" LOGIN CREATEROLE CREATEDB PASSWORD '${master.password.replace(/'/g, "''")}'`);
  } finally {
    await c.end();
  }
  return { host: "127.0.0.1", port };
};

const options = (extra: Partial<RdsScratchOptions> = {}): RdsScratchOptions => ({
  rds: () => rds,
  secrets: () => new SecretsManagerClient(emulator.clientConfig),
  reach,
  pollMs: 50,
  timeoutMs: 20_000,
  ...extra,
});

const instances = async () =>
  ((await rds.send(new DescribeDBInstancesCommand({}))).DBInstances ?? []).map((i) => i.DBInstanceIdentifier).sort();

beforeAll(async () => {
  emulator = await startAwsEmulator();
  rds = new RDSClient(emulator.clientConfig);
  rds.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "RestoreDBInstanceToPointInTimeCommand")
        restores.push(args.input as RestoreDBInstanceToPointInTimeCommandInput);
      return next(args);
    },
    { step: "initialize", name: "recordRestores" },
  );
  await createSource(SOURCE, 14);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-rds-pitr-"));
  fs.chmodSync(dir, 0o755);
  port = await freePort();
  pg = new LocalPostgres({
    name: "scratch",
    version: "16",
    host: "127.0.0.1",
    port,
    ...{ adminUser: ADMIN.user, adminPassword: ADMIN.password },
    root: dir,
    projectDir: ROOT,
  });
  await pg.start();
}, 180_000);

afterAll(async () => {
  rds?.destroy();
  await pg?.destroy();
  await emulator?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("an RDS point-in-time restore's scratch instance (AWS API: local emulator)", () => {
  it("refuses a moment outside the restore window, or an instance without automated backups, and creates nothing", async () => {
    const before = await instances();
    const early = new Date(Date.now() - 3_600_000);
    await expect(rdsScratchAt("prod", server, early, dir, {}, options())).rejects.toThrow(
      /is before the earliest restorable time of RDS instance prod-main \(.*\): its automated backups recover moments from then on/,
    );
    const late = new Date(Date.now() + 120_000);
    await expect(rdsScratchAt("prod", server, late, dir, {}, options())).rejects.toThrow(
      /is after the latest restorable time of RDS instance prod-main .*wait until that time is past the moment/,
    );
    await createSource("prod-nobackup", 0);
    await expect(rdsScratchAt("prod", { ...server, name: "nobackup" }, new Date(), dir, {}, options())).rejects.toThrow(
      /RDS instance prod-nobackup keeps no automated backups .*set servers.nobackup.backupRetentionDays/,
    );
    await expect(rdsScratchAt("prod", { ...server, name: "gone" }, new Date(), dir, {}, options())).rejects.toThrow(
      /RDS instance prod-gone is not in us-east-1: is the stack applied/,
    );
    expect(await instances()).toEqual([...before, "prod-nobackup"].sort());
    expect(restores).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("rds."))).toEqual([]);
  });

  it("reports an AWS API that cannot be reached as the restore's failure, saying what it was doing", async () => {
    const unreachable = new RDSClient({ ...emulator.clientConfig, endpoint: "http://127.0.0.1:9", maxAttempts: 1 });
    const failure = rdsScratchAt("prod", server, new Date(), dir, {}, options({ rds: () => unreachable }));
    await expect(failure).rejects.toBeInstanceOf(ArchiveError);
    await expect(failure).rejects.toThrow(/^the point-in-time restore of RDS instance prod-main: .*ECONNREFUSED/);
    unreachable.destroy();
  });

  it("restores into the source's private network, unprotected and tagged, logs in with its managed secret, grants the read-only role there only, and deletes it", async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const at = new Date(Date.now() - 500);
    const scratch = await rdsScratchAt(
      "prod",
      server,
      at,
      dir,
      { "db-platform:stack": "prod", "db-platform:service": "orders" },
      options(),
    );
    const id = scratchIdentifier(SOURCE, at);
    expect(scratch.identifier).toBe(id);
    expect(id).toMatch(/^prod-main-pitr-\d{14}$/);
    const source = (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: SOURCE }))).DBInstances?.[0];
    expect(restores).toEqual([
      {
        SourceDBInstanceIdentifier: SOURCE,
        TargetDBInstanceIdentifier: id,
        RestoreTime: at,
        DBInstanceClass: "db.m7g.large",
        DBSubnetGroupName: "prod-main-private",
        VpcSecurityGroupIds: source?.VpcSecurityGroups?.map((g) => g.VpcSecurityGroupId),
        DBParameterGroupName: "prod-main-pg16",
        PubliclyAccessible: false,
        MultiAZ: false,
        DeletionProtection: false,
        BackupRetentionPeriod: 0,
        AutoMinorVersionUpgrade: false,
        CopyTagsToSnapshot: false,
        ManageMasterUserPassword: true,
        Tags: [
          { Key: "db-platform:scratch", Value: "point-in-time" },
          { Key: "db-platform:stack", Value: "prod" },
          { Key: "db-platform:service", Value: "orders" },
        ],
      },
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "rds.main.json"), "utf8"))).toEqual({ identifier: id, toTime: at.toISOString() });

    // As the master created them on the source: the service's database, table and read-only role.
    const master = new Client({ ...scratch.connection, ssl: undefined, database: "postgres" });
    await master.connect();
    try {
      await master.query("CREATE ROLE orders_readonly NOLOGIN");
      await master.query("CREATE DATABASE orders_db");
    } finally {
      await master.end();
    }
    const inDb = new Client({ ...scratch.connection, ssl: undefined, database: "orders_db" });
    await inDb.connect();
    try {
      await inDb.query(
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 7); GRANT SELECT ON orders TO orders_readonly",
      );
      await expect(inDb.query("SET ROLE orders_readonly")).rejects.toMatchObject({ code: "42501" });
      await scratch.prepare("orders_readonly", "orders_db");
      await inDb.query("SET ROLE orders_readonly");
      expect((await inDb.query("SELECT count(*)::int AS n FROM orders")).rows).toEqual([{ n: 7 }]);
    } finally {
      await inDb.end();
    }
    expect(await instances()).toContain(id);
    // The emulator copies the source's deletion protection despite the input: deleting turns it off first.
    await scratch.destroy();
    expect(await instances()).not.toContain(id);
    expect(fs.existsSync(path.join(dir, "rds.main.json"))).toBe(false);
  });

  it("after a kill: reuses the scratch instance of the same moment, deletes one of another moment", async () => {
    restores.length = 0;
    await new Promise((r) => setTimeout(r, 1000));
    const first = new Date(Date.now() - 500);
    // A run killed after its restore was asked: the instance and the journal stay.
    const killed = await rdsScratchAt("prod", server, first, dir, {}, options());
    expect(restores).toHaveLength(1);
    const again = await rdsScratchAt("prod", server, first, dir, {}, options());
    expect(again.identifier).toBe(killed.identifier);
    expect(restores).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1100));
    const other = await rdsScratchAt("prod", server, new Date(Date.now() - 100), dir, {}, options());
    expect(restores).toHaveLength(2);
    expect(await instances()).not.toContain(killed.identifier);
    expect(await instances()).toContain(other.identifier);
    await other.destroy();
    expect(await instances()).toEqual(["prod-main", "prod-nobackup"]);
  });
});

/** The dev stack's server declared as an RDS instance (`dev-local`): the same services, reached by URLs. */
function asRds(ctx: BackupContext, dev: AppliedStack): BackupContext {
  const spec: Spec = {
    ...ctx.spec,
    servers: ctx.spec.servers.map((x) => ({ ...server, name: x.name, version: x.version }) as RdsServerSpec),
  };
  const urls = Object.fromEntries(spec.services.map((x) => [x.name, dev.directUrl(x.name, "readonly")]));
  return { ...ctx, spec, urls };
}

describe.runIf(ENGINE.ready)(
  "restore --to-time of one service on RDS (AWS API: local emulator; the instance: the dev stack, applied)",
  () => {
    let dev: AppliedStack;
    let copy: LocalPostgres;
    let ctx: BackupContext;
    let at: Date;
    const serverUrls: Record<string, string> = {};
    const rows = async (database: string, sql: string) => {
      const c = await dev.server.superuserClient(database);
      try {
        return (await c.query(sql)).rows as Array<Record<string, unknown>>;
      } finally {
        await c.end();
      }
    };

    beforeAll(async () => {
      dev = await startAppliedDevStack("rdspitr", { s3: true });
      await createSource("dev-local", 7);
      await dev.sql("orders_db", "INSERT INTO orders.orders (item) SELECT g FROM generate_series(1, 100) g");
      await dev.sql("inventory_db", "INSERT INTO inventory.items (name) SELECT 'item ' || g FROM generate_series(1, 30) g");
      // What RDS restores to the moment: a physical copy streamed from the instance, promoted then.
      copy = new LocalPostgres({ ...dev.server.opts, name: "copy", port: await freePort(), standbyOf: dev.server });
      await copy.start();
      for (let i = 0; (await copy.replicationStatus())?.lagBytes !== 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
      at = new Date(Math.floor(Date.now() / 1000) * 1000);
      await copy.tool("pg_ctl", ["promote", "-D", path.join(copy.opts.root, "copy", "data"), "-w"]);
      // After the moment: the bad DELETE and a write that must not come back.
      await dev.sql("orders_db", "DELETE FROM orders.orders WHERE id > 40; INSERT INTO orders.orders (item) VALUES (999)");
      const loaded = loadBackupContext(dev.file, dev.stack);
      if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
      ctx = asRds(loaded.context, dev);
      serverUrls.local = `postgresql://platform_admin:${FIXTURE_ADMIN_PASSWORD}@127.0.0.1:${dev.server.opts.port}/postgres`;
    }, 420_000);

    afterAll(async () => {
      await copy?.destroy();
      await dev?.cleanup();
    }, 120_000);

    /** The copy is the scratch instance: its master (the stack's admin) is renamed and given the password of the emulator's secret. */
    const toCopy: RdsScratchOptions["reach"] = async (_endpoint, master) => {
      const c = await copy.superuserClient();
      try {
        const { rows: named } = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [master.username]);
        if (named.length === 0) await c.query(`ALTER ROLE platform_admin RENAME TO "${master.username}"`);
        await c.query(`ALTER ROLE "${master.username}" PASSWORD '${master.password.replace(/'/g, "''")}'`);
      } finally {
        await c.end();
      }
      return { host: "127.0.0.1", port: copy.opts.port };
    };

    it("into a new database: every row up to the moment and none after, as the owner role; the neighbours unchanged; the scratch instance deleted", async () => {
      const r = await restoreToTime(ctx, { service: "orders", toTime: at.toISOString(), serverUrls, rds: options({ reach: toCopy }) });
      expect(r).toMatchObject({ service: "orders", recoveredBy: "rds", inPlace: false, into: r.restore.database });
      expect(r.baseBackup).toMatch(/^RDS instance dev-local-pitr-\d{14} \(restore window /);
      expect(r.neighbours.map((n) => [n.service, n.unchanged])).toEqual([
        ["inventory", true],
        ["payments", true],
        ["profile", true],
        ["sv-sdk", true],
      ]);
      const restored = await rows(r.restore.database, "SELECT count(*)::int AS n, max(item) AS top FROM orders.orders");
      expect(restored).toEqual([{ n: 100, top: 100 }]);
      const owner = await rows(r.restore.database, "SELECT tableowner FROM pg_tables WHERE schemaname = 'orders'");
      expect(owner).toEqual([{ tableowner: "orders_owner" }]);
      expect(await instances()).not.toContain(scratchIdentifier("dev-local", at));
    });

    it("in place after the confirmation: the current state backed up first, the logins given back, the neighbours unchanged", async () => {
      const r = await restoreToTime(ctx, {
        service: "orders",
        toTime: at.toISOString(),
        inPlace: true,
        confirm: "rdspitr/orders",
        serverUrls,
        rds: options({ reach: toCopy }),
      });
      expect(r).toMatchObject({ recoveredBy: "rds", inPlace: true, into: "orders_db" });
      expect(r.backupBeforeReplace).toBeTruthy();
      expect(r.neighbours.every((n) => n.unchanged)).toBe(true);
      expect(await rows("orders_db", "SELECT count(*)::int AS n, max(item) AS top FROM orders.orders")).toEqual([{ n: 100, top: 100 }]);
      const app = new Client({ connectionString: dev.directUrl("orders", "app") });
      await app.connect();
      expect((await app.query("SELECT count(*)::int AS n FROM orders.orders")).rows).toEqual([{ n: 100 }]);
      await app.end();
      expect(await instances()).not.toContain(scratchIdentifier("dev-local", at));
    });
  },
);

if (!ENGINE.ready) describe.skip("restore --to-time of one service on RDS", () => it(SKIPPED_BECAUSE, () => undefined));
