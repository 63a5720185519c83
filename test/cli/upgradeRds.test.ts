/**
 * `db-platform upgrade` of an RDS server (operations/upgrade/rds.ts) on a copy of the prod stack
 * file: the checks, the plan, the order of the stack-file phases each `up` applies, resuming after
 * a failure, rollback while it is possible and its refusal after, and the verification. There is
 * no AWS account here, so the engine's `up`, the backups, the audit and the server are the
 * test's own recorders (labelled RdsDeps); what each phase declares is asserted input by input
 * under Pulumi's mocks in test/components/rdsUpgrade.rds.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, parseDocument } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BackupManifest } from "../../operations/backup/storage";
import type { RunOutcome } from "../../operations/backup/command";
import type { RdsDeps } from "../../operations/upgrade/rds";
import { rdsUpgradeApply, rdsUpgradeRollback } from "../../operations/upgrade/rds";
import { type UpgradeContext, UpgradeError, upgradeApply, upgradePlan } from "../../operations/upgrade/upgrade";
import { ROOT } from "../helpers/synth";

let dir: string;
let ctx: UpgradeContext;
const ADMIN = { serverUrls: { main: "postgresql://postgres:secret@prod-main.example.invalid:5432/postgres" } };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-upgrade-rds-"));
  fs.copyFileSync(path.join(ROOT, "Pulumi.prod.yaml"), path.join(dir, "Pulumi.prod.yaml"));
  ctx = { file: path.join(dir, "Pulumi.prod.yaml"), stack: "prod", project: "db-platform", projectDir: dir, progress: () => undefined };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const mainOf = () =>
  (parse(fs.readFileSync(ctx.file, "utf8")).config["db-platform:servers"] as Record<string, Record<string, unknown>>).main;
const editMain = (edit: (main: Record<string, unknown>) => void) => {
  const doc = parseDocument(fs.readFileSync(ctx.file, "utf8"));
  const main = doc.getIn(["config", "db-platform:servers", "main"]) as { toJSON(): Record<string, unknown> };
  const values = main.toJSON();
  edit(values);
  doc.setIn(["config", "db-platform:servers", "main"], doc.createNode(values));
  fs.writeFileSync(ctx.file, doc.toString());
};

/** What each service's backup holds: `rows` per table. */
function manifest(service: string, id: string, rows: number, schemaHash = `hash-${service}`): BackupManifest {
  return {
    id,
    service,
    tables: [{ schema: service, name: "items", rows }],
    schemaHash: "exact",
    schemaHashAcrossMajors: schemaHash,
  } as unknown as BackupManifest;
}

/** Recorders for the engine, backups, audit and server; `failAt` makes the up of that phase fail once. */
function recorder(opts: { failAt?: string; rowsAfter?: number; runningMajor?: string } = {}) {
  const ups: string[] = [];
  const calls: string[] = [];
  let failed = false;
  let backups = 0;
  const deps: RdsDeps = {
    async up(apply) {
      const main = apply.spec.servers.find((s) => s.name === "main");
      const label =
        main?.hosting === "rds" && main.upgrade ? `${main.version} ${main.upgrade.phase} from ${main.upgrade.from}` : `${main?.version}`;
      if (opts.failAt === (main?.hosting === "rds" ? (main.upgrade?.phase ?? "finish") : "") && !failed) {
        failed = true;
        throw new UpgradeError(`up failed at ${label}`);
      }
      ups.push(label);
    },
    async preview() {
      calls.push("preview");
    },
    async backup(b, server): Promise<RunOutcome[]> {
      backups += 1;
      calls.push(`backup ${server}`);
      const rows = backups === 1 ? 5000 : (opts.rowsAfter ?? 5000);
      return b.spec.services
        .filter((s) => s.server === server)
        .map((s) => ({ service: s.name, ok: true, seconds: 1, manifest: manifest(s.name, `b${backups}-${s.name}`, rows) }));
    },
    async audit(_c, server, urls) {
      calls.push(`audit ${server} ${Object.keys(urls).join(",")}`);
      return [];
    },
    async refresh(url, databases) {
      calls.push(`refresh ${new URL(url).hostname} ${databases.join(",")}`);
      return ["inventory_db.pg_stat_statements 1.10 → 1.11"];
    },
    async stateMajor() {
      return opts.runningMajor ?? "16";
    },
  };
  return { deps, ups, calls };
}

describe("db-platform upgrade on an RDS server", () => {
  it("plans the phases RDS needs for a server with a cross-region replica", () => {
    const plan = upgradePlan(ctx, "main", "17");
    expect(plan).toMatchObject({ server: "main", from: "16", to: "17" });
    expect(plan.steps.map((s) => s.split(/[ :]/)[0])).toEqual([
      "back",
      "unprotect-replicas",
      "detach-replicas",
      "upgrade",
      "finish",
      "refresh",
      "verify",
    ]);
    expect(plan.steps[3]).toContain("parameter group prod-main-postgres17, allowMajorVersionUpgrade and applyImmediately on for it alone");
    expect(plan.downtime).toContain("reads in main-dr's region stop from detach-replicas");
    expect(plan.undo).toContain("once main runs 17 there is no way back in place");
    expect(upgradePlan(ctx, "studio", "17").steps.map((s) => s.split(/[ :]/)[0])).toEqual([
      "back",
      "upgrade",
      "finish",
      "refresh",
      "verify",
    ]);
  });

  it.each([
    ["15", "--to 15: server main runs PostgreSQL 16; RDS has no downgrade"],
    ["16", "--to 16: server main runs PostgreSQL 16; nothing to upgrade"],
    ["19", "--to 19: not a PostgreSQL major db-platform runs on RDS (14, 15, 16, 17, 18)"],
  ])("refuses --to %s, naming the argument, with nothing changed", (to, message) => {
    const before = fs.readFileSync(ctx.file, "utf8");
    expect(() => upgradePlan(ctx, "main", to)).toThrow(message);
    expect(fs.readFileSync(ctx.file, "utf8")).toBe(before);
  });

  it("refuses a server without automated backups, local-only flags and a missing admin URL", async () => {
    editMain((m) => (m.backupRetentionDays = 0));
    expect(() => upgradePlan(ctx, "main", "17")).toThrow(
      "servers.main.backupRetentionDays: 0; RDS takes its pre-upgrade snapshot only with automated backups on",
    );
    editMain((m) => delete m.backupRetentionDays);
    await expect(upgradeApply(ctx, "main", { to: "17", mode: "link" })).rejects.toThrow(
      "--mode: for local servers' pg_upgrade; RDS runs its own",
    );
    await expect(rdsUpgradeApply(ctx, "main", { to: "17" }, recorder().deps)).rejects.toThrow("--server-url main=postgresql://");
    expect(fs.existsSync(path.join(dir, ".db-platform"))).toBe(false);
  });

  it("applies each phase in order through the stack file, then finishes, refreshes and verifies", async () => {
    const { deps, ups, calls } = recorder();
    const result = await rdsUpgradeApply(ctx, "main", { to: "17", ...ADMIN }, deps);
    expect(ups).toEqual(["17 unprotect-replicas from 16", "17 detach-replicas from 16", "17 upgrade from 16", "17"]);
    expect(calls).toEqual([
      "backup main",
      "refresh prod-main.example.invalid inventory_db,orders_db,platform,sv_sdk_db",
      "preview",
      "backup main",
      "audit main main",
    ]);
    expect(mainOf()).toMatchObject({ version: "17" });
    expect(mainOf().upgrade).toBeUndefined();
    expect(result.state).toBe("done");
    expect(result.log.at(-1)).toContain(
      "verified: a preview with no changes; 4 service(s) backed up on 17 with the rows and schema of before",
    );
    expect(fs.existsSync(path.join(dir, ".db-platform/upgrades/prod/main.json"))).toBe(false);
  });

  it("resumes after a failed phase without a second backup first, and rolls back while the instance runs the old major", async () => {
    const first = recorder({ failAt: "detach-replicas" });
    await expect(rdsUpgradeApply(ctx, "main", { to: "17", ...ADMIN }, first.deps)).rejects.toThrow(
      "up failed at 17 detach-replicas from 16",
    );
    expect(mainOf()).toMatchObject({ version: "17", upgrade: { from: "16", phase: "detach-replicas" } });
    expect(upgradePlan(ctx, "main")).toMatchObject({ from: "16", to: "17", phase: "unprotect-replicas" });
    await expect(rdsUpgradeApply(ctx, "main", { to: "18", ...ADMIN }, first.deps)).rejects.toThrow(
      "--to 18: server main is being upgraded 16 → 17",
    );

    const rollback = recorder();
    const back = await rdsUpgradeRollback(ctx, "main", rollback.deps);
    expect(back.state).toBe("rolled back");
    expect(rollback.ups).toEqual(["16"]);
    expect(mainOf()).toMatchObject({ version: "16" });
    expect(mainOf().upgrade).toBeUndefined();

    const again = recorder({ failAt: "upgrade" });
    await expect(rdsUpgradeApply(ctx, "main", { to: "17", ...ADMIN }, again.deps)).rejects.toThrow("up failed at 17 upgrade from 16");
    await rdsUpgradeApply(ctx, "main", ADMIN, again.deps);
    expect(again.ups).toEqual(["17 unprotect-replicas from 16", "17 detach-replicas from 16", "17 upgrade from 16", "17"]);
    expect(again.calls.filter((c) => c.startsWith("backup"))).toHaveLength(2);
  });

  it("refuses a rollback once the instance runs the new major, naming the backups", async () => {
    const { deps } = recorder({ failAt: "finish", runningMajor: "17" });
    await expect(rdsUpgradeApply(ctx, "main", { to: "17", ...ADMIN }, deps)).rejects.toThrow("up failed at 17");
    await expect(rdsUpgradeRollback(ctx, "main", deps)).rejects.toThrow(
      "server main runs PostgreSQL 17 on RDS: there is no way back in place; finish with upgrade apply, or restore RDS's pre-upgrade snapshot or the backups (b1-inventory, b1-orders, b1-payments, b1-sv-sdk) into a server of 16",
    );
  });

  it("fails the verification when a service's rows differ after the upgrade", async () => {
    const { deps } = recorder({ rowsAfter: 4999 });
    await expect(rdsUpgradeApply(ctx, "main", { to: "17", ...ADMIN }, deps)).rejects.toThrow(
      /verification failed on PostgreSQL 17.*\n\s+inventory: inventory\.items/,
    );
    expect(fs.existsSync(path.join(dir, ".db-platform/upgrades/prod/main.json"))).toBe(true);
  });
});
