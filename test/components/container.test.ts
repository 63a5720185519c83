import { beforeAll, describe, expect, it } from "vitest";
import { type Resources, synthFile, T } from "../helpers/synth";

let r: Resources;
beforeAll(async () => {
  r = await synthFile("examples/seed-002-sv-sdk/Pulumi.dev.yaml");
});

describe("ContainerServer", () => {
  it("pins the image for the version and keeps data in a named volume", () => {
    expect(r.one(T.image, "sdk-image").props).toEqual({ name: "postgres:16.10-bookworm", keepLocally: true });
    expect(r.one(T.volume, "sdk-data").props).toEqual({ name: "db-platform-dev-sdk-data" });
  });

  it("binds the port to 127.0.0.1 only and passes a generated admin password", () => {
    const c = r.one(T.container, "sdk-container").props;
    expect(c.ports).toEqual([{ internal: 5432, external: 55432, ip: "127.0.0.1" }]);
    expect(c.volumes).toEqual([{ volumeName: "db-platform-dev-sdk-data", containerPath: "/var/lib/postgresql/data" }]);
    expect(c.envs).toEqual(["[secret]", "POSTGRES_USER=platform_admin", "POSTGRES_DB=postgres"]);
    expect(c.restart).toBe("unless-stopped");
    // Per-service statistics (docs/stats.md); no standby, so no retained WAL.
    expect(c.command).toEqual([
      "postgres",
      ...["-c", "shared_preload_libraries=pg_stat_statements", "-c", "track_io_timing=on"],
      ...["-c", "pg_stat_statements.track=top", "-c", "pg_stat_statements.track_utility=off"],
    ]);
    expect(r.one(T.password, "sdk-admin-password").props).toEqual({ length: 32, special: false });
  });

  it("manages databases through a provider that waits for the container", () => {
    expect(r.one(T.pgProvider, "sdk-postgresql").props).toMatchObject({
      host: "127.0.0.1",
      port: "55432",
      username: "platform_admin",
      password: "[secret]",
    });
  });
});
