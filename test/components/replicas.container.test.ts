/**
 * Streaming standbys for `hosting: container`: a replica container cloned from the primary over
 * a private Docker network, with a replication login that only that network can use.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { synthProgram } from "../../operations/stack/synth";
import type { ProgramOutputs } from "../../components/program";
import { CONTAINER_REPLICATION_USER, PRIMARY_REPLICATION_INIT, standbyStartScript } from "../../components/servers/container";
import { changed, devValues, input, servers } from "../helpers/config";
import { Resources, resolve, T } from "../helpers/synth";

let r: Resources;
let outputs: ProgramOutputs;

beforeAll(async () => {
  const values = changed(devValues(), (v) => {
    v.servers = { box: { hosting: "container", version: "16", port: 55432, replicas: [{ name: "box-ro" }] } };
    for (const service of Object.values(v.services as Record<string, Record<string, unknown>>)) service.server = "box";
    delete v.adminPasswords;
  });
  expect(servers(values).box.replicas).toEqual([{ name: "box-ro" }]);
  const result = await synthProgram(input(values), "db-platform", "dev");
  r = new Resources(result.resources);
  outputs = result.outputs;
});

describe("container replica", () => {
  it("joins the primary to a network of its own, with the replication login created at init", () => {
    expect(r.one(T.network, "box-network").props).toEqual({ name: "db-platform-dev-box-net", driver: "bridge" });
    const primary = r.one(T.container, "box-container").props;
    expect(primary.networksAdvanced).toEqual([{ name: "db-platform-dev-box-net", aliases: ["db-platform-dev-box"] }]);
    expect(primary.envs).toEqual(["[secret]", "POSTGRES_USER=platform_admin", "POSTGRES_DB=postgres", "[secret]"]);
    expect(primary.uploads).toEqual([
      { file: "/docker-entrypoint-initdb.d/10-db-platform-replication.sh", content: PRIMARY_REPLICATION_INIT, executable: true },
    ]);
    expect(primary.command).toEqual([
      "postgres",
      ...["-c", "shared_preload_libraries=pg_stat_statements", "-c", "track_io_timing=on"],
      ...["-c", "pg_stat_statements.track=top", "-c", "pg_stat_statements.track_utility=off"],
      ...["-c", "wal_keep_size=512MB"],
    ]);
    expect(r.one(T.password, "box-replication-password").props).toEqual({ length: 32, special: false });
  });

  it("admits the replication login from the server's own network only, and never as a superuser", () => {
    expect(PRIMARY_REPLICATION_INIT).toContain(`CREATE ROLE ${CONTAINER_REPLICATION_USER} LOGIN REPLICATION NOSUPERUSER`);
    expect(PRIMARY_REPLICATION_INIT).toContain(`host replication ${CONTAINER_REPLICATION_USER} samenet scram-sha-256`);
    expect(PRIMARY_REPLICATION_INIT).toContain(`PASSWORD :'pw'`);
  });

  it("runs the standby from the pinned image, on its own loopback port and volume", () => {
    const standby = r.one(T.container, "box-box-ro-container");
    expect(standby.props).toEqual({
      name: "db-platform-dev-box-ro",
      image: "postgres:16.10-bookworm@sha256:synth",
      restart: "unless-stopped",
      envs: ["[secret]"],
      entrypoints: ["bash", "-c"],
      command: [standbyStartScript("db-platform-dev-box")],
      ports: [{ internal: 5432, external: 55433, ip: "127.0.0.1" }],
      volumes: [{ volumeName: "db-platform-dev-box-ro-data", containerPath: "/var/lib/postgresql/data" }],
      networksAdvanced: [{ name: "db-platform-dev-box-net" }],
      healthcheck: { tests: ["CMD-SHELL", "pg_isready -U platform_admin -d postgres"], interval: "5s", timeout: "3s", retries: 10 },
      wait: true,
      labels: [
        { label: "db-platform.environment", value: "dev" },
        { label: "db-platform.server", value: "box" },
        { label: "db-platform.replica", value: "box-ro" },
      ],
    });
    expect(r.one(T.volume, "box-box-ro-data").props).toEqual({ name: "db-platform-dev-box-ro-data" });
  });

  it("clones with pg_basebackup -R once, then starts the image's entrypoint", () => {
    const script = standbyStartScript("db-platform-dev-box");
    expect(script).toContain(`pg_basebackup -h db-platform-dev-box -U ${CONTAINER_REPLICATION_USER} -D "$PGDATA" -R -X stream -c fast`);
    expect(script.indexOf("pg_basebackup")).toBeLessThan(script.indexOf("exec docker-entrypoint.sh postgres"));
    expect(script).toContain('if [ ! -s "$PGDATA/PG_VERSION" ]');
  });

  it("hands out the standby as the reader of read-only logins", async () => {
    expect(outputs.servers.box.reader).toBe("box-ro");
    expect(outputs.services.inventory.routing.readonly).toBe("replica box-ro");
    expect((await resolve(outputs.services.inventory.urls.readonly)).value).toMatch(/@127\.0\.0\.1:55433\/inventory_db\?sslmode=disable$/);
    expect((await resolve(outputs.services.inventory.urls.app)).value).toMatch(/@127\.0\.0\.1:55432\/inventory_db\?sslmode=disable$/);
  });
});
