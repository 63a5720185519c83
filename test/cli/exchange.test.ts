/**
 * `export` / `import` refusals that need no server (every one exits 2 before anything is read
 * from or written to a database), and the folder an export is written to. The whole move through
 * the real engine, with the refusals that need a target: test/engine/exchange.engine.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FolderStore, parseLocation } from "../../operations/backup/exchange";
import { type BackupManifest, EXPORT_FORMAT } from "../../operations/backup/storage";
import { runCli } from "../helpers/cli";

let dir: string;

function manifest(over: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: EXPORT_FORMAT,
    id: "20261130T120000Z-abcd",
    stack: "alpha",
    environment: "alpha",
    service: "orders",
    server: "local",
    database: "orders_db",
    schemas: ["orders"],
    serverVersion: "16.4",
    pgDumpVersion: "16.4",
    dumpedAs: "orders_readonly",
    startedAt: "2026-11-30T12:00:00.000Z",
    finishedAt: "2026-11-30T12:00:01.000Z",
    dump: { key: "orders-alpha-20261130T120000Z-abcd.dump", bytes: 3, sha256: "0".repeat(64) },
    tables: [{ schema: "orders", name: "items", rows: 3 }],
    schemaHash: "f".repeat(64),
    exportedBy: "someone@laptop",
    ...over,
  };
}

function write(name: string, m: object): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(m));
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-exchange-cli-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The command exits 2 (nothing read from or written to a database) and says `message`. */
function refuses(args: string[], message: string): void {
  const r = runCli(args);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toContain(message);
}

const importDev = (from: string, ...more: string[]) => ["import", "--stack", "dev", "--from", from, ...more];

describe("import refuses before touching anything", () => {
  it("needs the export's manifest, readable, in the export format", () => {
    refuses(importDev(path.join(dir, "x.dump"), "--service", "orders"), "give the export's manifest");
    refuses(importDev(path.join(dir, "gone.manifest.json"), "--service", "orders"), "ENOENT");
    refuses(
      importDev(write("b.manifest.json", manifest({ format: "db-platform-backup/1" })), "--service", "orders"),
      "unknown manifest format db-platform-backup/1 (expected db-platform-export/1)",
    );
    refuses(
      importDev(write("e.manifest.json", manifest({ dump: { ...manifest().dump, key: "../x.dump" } })), "--service", "orders"),
      "the dump ../x.dump is not a file name beside the manifest",
    );
  });

  it("names the target: a service of this stack, with the export's schemas, from another stack, confirmed exactly", () => {
    const from = write("ok.manifest.json", manifest());
    refuses(importDev(from, "--service", "nosuch"), "--service nosuch: no such service");
    refuses(
      importDev(from, "--service", "inventory", "--confirm", "dev/inventory"),
      "service inventory of stack dev has inventory (missing: orders). Nothing was imported.",
    );
    refuses(
      importDev(write("own.manifest.json", manifest({ stack: "dev" })), "--service", "orders", "--confirm", "dev/orders"),
      "came from stack dev itself",
    );
    refuses(importDev(from, "--service", "orders"), "an import writes into service orders of stack dev: confirm with --confirm dev/orders");
    refuses(
      importDev(from, "--service", "orders", "--confirm", "prod/orders"),
      "--confirm prod/orders does not name the target: the import writes into dev/orders",
    );
  });

  it("checks locations and URLs", () => {
    const exportDev = (...more: string[]) => ["export", "--stack", "dev", "--service", "orders", ...more];
    refuses(exportDev("--to", "s3://Not_A_Bucket/x"), "--to s3://Not_A_Bucket/x: expected s3://<bucket>[/<prefix>]");
    refuses(exportDev("--to", dir, "--s3-endpoint", "http://127.0.0.1:1"), "--s3-endpoint is only for s3:// locations");
    expect(parseLocation("--to", "s3://exchange/moves/")).toEqual({ kind: "s3", bucket: "exchange", key: "moves", endpoint: undefined });
  });
});

describe("an export folder", () => {
  it("holds the dump and the manifest owner-only, written whole or not at all", async () => {
    const store = new FolderStore(path.join(dir, "out"), "alpha");
    const key = store.dumpKey("orders", "1");
    await store.uploadDump(key, Readable.from([Buffer.from("abc")]));
    await store.putManifest(manifest({ id: "1", dump: { key, bytes: 3, sha256: "x" } }));
    expect(fs.readdirSync(store.dir).sort()).toEqual(["orders-alpha-1.dump", "orders-alpha-1.manifest.json"]);
    for (const f of fs.readdirSync(store.dir)) expect(fs.statSync(path.join(store.dir, f)).mode & 0o777).toBe(0o600);
    const failing = new Readable({
      read() {
        this.destroy(new Error("pg_dump exited with code 1"));
      },
    });
    await expect(store.uploadDump(store.dumpKey("orders", "2"), failing)).rejects.toThrow(/orders-alpha-2.dump failed: pg_dump exited/);
    expect(fs.readdirSync(store.dir).filter((f) => f.includes("-2."))).toEqual([]);
  });
});
