/**
 * Pooled URLs (docs/pooling.md) under Pulumi's mocks: a service with a pool gets its app and
 * read-only logins' URLs through the PgBouncer beside the instance each points at (the standby's
 * for a read-only login routed to the reader), its migrator and scoped logins direct, and the
 * direct URLs beside; a service without a pool is as before.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { ProgramOutputs } from "../../components/program";
import { synthProgram } from "../../operations/stack/synth";
import { changed, devValues, input, servers, services } from "../helpers/config";
import { resolve } from "../helpers/synth";

let outputs: ProgramOutputs;
const PORT = 54329;

beforeAll(async () => {
  const values = changed(devValues(), (v) => {
    servers(v).local.replicas = [{ name: "local-ro", port: PORT + 1 }];
    servers(v).local.pooler = { mode: "transaction" };
    services(v).inventory.pool = { size: 10 };
    services(v)["sv-sdk"].pool = { mode: "session" };
  });
  outputs = (await synthProgram(input(values), "db-platform", "dev")).outputs;
});

const hostPort = async (url: Parameters<typeof resolve>[0]) => {
  const { value, secret } = await resolve(url as Parameters<typeof resolve<string>>[0]);
  const u = new URL(value as string);
  return { at: `${u.hostname}:${u.port}${u.pathname}`, user: u.username, secret };
};

describe("pooled URLs", () => {
  it("routes a pooled service's app login through the primary's pooler and its read-only login through the standby's", async () => {
    const inventory = outputs.services.inventory;
    expect(inventory.routing).toEqual({ app: "pooler → primary", readonly: "pooler → replica local-ro", migrator: "primary" });
    expect(await hostPort(inventory.urls.app)).toEqual({ at: `127.0.0.1:${PORT + 100}/inventory_db`, user: "inventory_app", secret: true });
    expect(await hostPort(inventory.urls.readonly)).toEqual({
      at: `127.0.0.1:${PORT + 101}/inventory_db`,
      user: "inventory_readonly",
      secret: true,
    });
    expect(await hostPort(inventory.urls.migrator)).toEqual({
      at: `127.0.0.1:${PORT}/inventory_db`,
      user: "inventory_migrator",
      secret: true,
    });
  });

  it("keeps the direct URLs of the pooled logins, with the same passwords", async () => {
    const inventory = outputs.services.inventory;
    expect(Object.keys(inventory.directUrls ?? {})).toEqual(["app", "readonly"]);
    expect(await hostPort(inventory.directUrls!.app)).toEqual({
      at: `127.0.0.1:${PORT}/inventory_db`,
      user: "inventory_app",
      secret: true,
    });
    expect(await hostPort(inventory.directUrls!.readonly)).toEqual({
      at: `127.0.0.1:${PORT + 1}/inventory_db`,
      user: "inventory_readonly",
      secret: true,
    });
    const pooled = new URL((await resolve(inventory.urls.app)).value as string);
    const direct = new URL((await resolve(inventory.directUrls!.app)).value as string);
    expect(pooled.password).toBe(direct.password);
  });

  it("never pools a scoped login, and leaves a service without a pool as it was", async () => {
    const sdk = outputs.services["sv-sdk"];
    expect(sdk.routing).toEqual({
      app: "pooler → primary",
      readonly: "pooler → replica local-ro",
      migrator: "primary",
      auditor: "replica local-ro",
    });
    expect(await hostPort(sdk.urls.auditor)).toMatchObject({ at: `127.0.0.1:${PORT + 1}/sv_sdk_db` });
    expect(outputs.services.payments.directUrls).toBeUndefined();
    expect(outputs.services.payments.routing).toEqual({ app: "primary", readonly: "replica local-ro", migrator: "primary" });
  });
});
