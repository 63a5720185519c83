/**
 * A PostgreSQL container for laptops that prefer Docker: pinned image, named volume, port bound
 * to 127.0.0.1 only, generated admin password. Replicas are streaming standbys in containers of
 * their own, cloned with pg_basebackup over a private Docker network.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ContainerServerSpec } from "../spec";
import { CONTAINER_ADMIN_USER, CONTAINER_REPLICATION_USER, STATS_SETTINGS } from "../spec/defaults";
import { ServerComponent } from "./server";

export { CONTAINER_ADMIN_USER, CONTAINER_REPLICATION_USER };

export interface ContainerServerArgs {
  readonly spec: ContainerServerSpec;
  readonly environment: string;
}

const DATA_DIR = "/var/lib/postgresql/data";

/**
 * Runs once, when the primary's data directory is initialized: the replication login (password
 * from the secret environment variable) and a pg_hba line that admits it from the server's own
 * Docker network only.
 */
export const PRIMARY_REPLICATION_INIT = `#!/bin/bash
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \\
  --set=pw="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE ${CONTAINER_REPLICATION_USER} LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SQL
echo "host replication ${CONTAINER_REPLICATION_USER} samenet scram-sha-256" >> "$PGDATA/pg_hba.conf"
`;

/** STATS_SETTINGS as `postgres -c` arguments. */
function statsArgs(): string[] {
  return Object.entries(STATS_SETTINGS).flatMap(([k, v]) => ["-c", `${k}=${v}`]);
}

/**
 * A standby's start: clone the primary once (retrying until it accepts connections), then run the
 * image's own entrypoint, which starts PostgreSQL in standby mode as the postgres user.
 */
export function standbyStartScript(primaryHost: string): string {
  return [
    "set -euo pipefail",
    `if [ ! -s "$PGDATA/PG_VERSION" ]; then`,
    `  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"`,
    `  until gosu postgres pg_basebackup -h ${primaryHost} -U ${CONTAINER_REPLICATION_USER} -D "$PGDATA" -R -X stream -c fast; do`,
    `    rm -rf "$PGDATA"/* && sleep 2`,
    "  done",
    "fi",
    `exec docker-entrypoint.sh postgres -c hot_standby=on ${statsArgs().join(" ")}`,
  ].join("\n");
}

export class ContainerServer extends ServerComponent {
  readonly spec: ContainerServerSpec;
  readonly container: docker.Container;
  readonly replicas: Record<string, docker.Container> = {};

  constructor(name: string, args: ContainerServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:servers:ContainerServer", name, {}, opts);
    const { spec, environment } = args;
    this.spec = spec;
    const parent = { parent: this };
    const id = `db-platform-${environment}-${spec.name}`;

    const password = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, parent);
    const image = new docker.RemoteImage(`${name}-image`, { name: spec.image, keepLocally: true }, parent);
    const volume = new docker.Volume(`${name}-data`, { name: `${id}-data` }, parent);
    const labels = (server: string) => [
      { label: "db-platform.environment", value: environment },
      { label: "db-platform.server", value: server },
    ];
    const healthcheck = (user: string) => ({
      tests: ["CMD-SHELL", `pg_isready -U ${user} -d postgres`],
      interval: "5s",
      timeout: "3s",
      retries: 10,
    });

    // Standbys need a network to reach the primary on, and a replication login.
    const replicated = spec.replicas.length > 0;
    const network = replicated ? new docker.Network(`${name}-network`, { name: `${id}-net`, driver: "bridge" }, parent) : undefined;
    const replication = replicated
      ? new random.RandomPassword(`${name}-replication-password`, { length: 32, special: false }, parent)
      : undefined;

    this.container = new docker.Container(
      `${name}-container`,
      {
        name: id,
        image: image.imageId,
        restart: "unless-stopped",
        envs: [
          pulumi.secret(pulumi.interpolate`POSTGRES_PASSWORD=${password.result}`),
          `POSTGRES_USER=${CONTAINER_ADMIN_USER}`,
          "POSTGRES_DB=postgres",
          ...(replication ? [pulumi.secret(pulumi.interpolate`REPLICATION_PASSWORD=${replication.result}`)] : []),
        ],
        // Loopback only: a laptop's database is never reachable from the network.
        ports: [{ internal: 5432, external: spec.port, ip: "127.0.0.1" }],
        volumes: [{ volumeName: volume.name, containerPath: DATA_DIR }],
        ...(network
          ? {
              networksAdvanced: [{ name: network.name, aliases: [id] }],
              uploads: [
                { file: "/docker-entrypoint-initdb.d/10-db-platform-replication.sh", content: PRIMARY_REPLICATION_INIT, executable: true },
              ],
            }
          : {}),
        // Per-service statistics; with standbys, ones that fall behind catch up from retained WAL.
        command: ["postgres", ...statsArgs(), ...(network ? ["-c", "wal_keep_size=512MB"] : [])],
        healthcheck: healthcheck(CONTAINER_ADMIN_USER),
        wait: true,
        labels: labels(spec.name),
      },
      parent,
    );

    for (const replica of spec.replicas) {
      const replicaId = `db-platform-${environment}-${replica.name}`;
      const replicaVolume = new docker.Volume(`${name}-${replica.name}-data`, { name: `${replicaId}-data` }, parent);
      this.replicas[replica.name] = new docker.Container(
        `${name}-${replica.name}-container`,
        {
          name: replicaId,
          image: image.imageId,
          restart: "unless-stopped",
          envs: [pulumi.secret(pulumi.interpolate`PGPASSWORD=${(replication as random.RandomPassword).result}`)],
          entrypoints: ["bash", "-c"],
          command: [standbyStartScript(id)],
          ports: [{ internal: 5432, external: replica.port, ip: "127.0.0.1" }],
          volumes: [{ volumeName: replicaVolume.name, containerPath: DATA_DIR }],
          networksAdvanced: [{ name: (network as docker.Network).name }],
          healthcheck: healthcheck(CONTAINER_ADMIN_USER),
          wait: true,
          labels: [...labels(spec.name), { label: "db-platform.replica", value: replica.name }],
        },
        { parent: this, dependsOn: [this.container] },
      );
      this.replicaEndpoints[replica.name] = { host: pulumi.output("127.0.0.1"), port: pulumi.output(replica.port) };
    }
    this.connectAdmin(
      name,
      {
        host: "127.0.0.1",
        port: spec.port,
        username: CONTAINER_ADMIN_USER,
        password: password.result,
        sslmode: "disable",
        superuser: true,
        expectedVersion: spec.version,
        connectTimeout: 15,
      },
      { parent: this, dependsOn: [this.container] },
    );
    this.registerOutputs({
      host: this.host,
      port: this.port,
      containerName: this.container.name,
      reader: spec.reader,
      replicas: this.replicaEndpoints,
    });
  }
}
