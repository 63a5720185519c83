/**
 * The pieces of `db-platform up` that need no server: the change summary, masked URLs, the
 * plugins a stack needs, and the error that names each install command when a plugin cannot be
 * had (a real `pulumi plugin install` of a version that does not exist).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureEngine } from "../../operations/local/local";
import {
  describeChanges,
  ensurePlugins,
  formatServiceUrls,
  installCommand,
  maskPassword,
  PluginError,
  requiredPlugins,
} from "../../operations/stack/stackApply";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { loadSpec } from "../../components/spec";
import { ROOT } from "../helpers/synth";

describe("describeChanges", () => {
  it.each([
    [{ create: 186 }, "created 186"],
    [{ same: 186 }, "no changes (186 unchanged)"],
    [{ create: 5, same: 186 }, "created 5, 186 unchanged"],
    [{ delete: 3, update: 1, same: 10 }, "deleted 3, updated 1, 10 unchanged"],
    [{}, "no changes (0 unchanged)"],
  ])("%j -> %s", (changes, line) => {
    expect(describeChanges(changes)).toBe(line);
  });
});

describe("connection URLs", () => {
  it("masks the password, and only the password", () => {
    expect(maskPassword("postgresql://inventory_app:s3cr%2Ft@127.0.0.1:54329/inventory_db?sslmode=disable")).toBe(
      "postgresql://inventory_app:****@127.0.0.1:54329/inventory_db?sslmode=disable",
    );
  });

  it("lists each service's logins, masked unless asked", () => {
    const outputs = {
      services: {
        value: {
          orders: {
            server: "local",
            database: "orders_db",
            schemas: ["orders"],
            urls: { app: "postgresql://orders_app:pw@h:1/orders_db" },
          },
        },
        secret: true,
      },
    };
    expect(formatServiceUrls(outputs, false)).toBe(
      "orders (server local, database orders_db, schemas orders)\n  app       postgresql://orders_app:****@h:1/orders_db\n",
    );
    expect(formatServiceUrls(outputs, true)).toContain("postgresql://orders_app:pw@h:1/orders_db");
  });
});

describe("provider plugins", () => {
  it("are the versions the SDK packages pin, and AWS and Docker only where the stack needs them", () => {
    const dev = loadSpec(readConfigFile(path.join(ROOT, "Pulumi.dev.yaml")));
    expect(requiredPlugins(dev, ROOT)).toEqual([
      { name: "postgresql", version: "3.18.0" },
      { name: "random", version: "4.21.1" },
    ]);
    const prod = loadSpec(readConfigFile(path.join(ROOT, "Pulumi.prod.yaml")));
    expect(requiredPlugins(prod, ROOT).map((p) => `${p.name} ${p.version}`)).toEqual([
      "aws 7.48.0",
      "docker 5.2.0",
      "postgresql 3.18.0",
      "random 4.21.1",
    ]);
  });

  it("that cannot be installed stop the command, naming the exact install command", () => {
    ensureEngine(ROOT);
    const missing = { name: "postgresql", version: "0.0.1" };
    const said: string[] = [];
    let error: unknown;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-pulumi-home-"));
    try {
      ensurePlugins([missing], { PULUMI_HOME: home }, (s) => said.push(s));
    } catch (e) {
      error = e;
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
    expect(error).toBeInstanceOf(PluginError);
    expect((error as Error).message).toMatch(
      /^the Pulumi provider plugins this stack needs are missing and could not be installed; run:\n {2}pulumi plugin install resource postgresql 0\.0\.1/,
    );
    expect(said).toEqual([`plugins: installing postgresql v0.0.1: ${installCommand(missing)}\n`]);
  }, 60_000);
});
