/**
 * A PostgreSQL container for laptops that prefer Docker: pinned image, named volume, port bound
 * to 127.0.0.1 only, generated admin password.
 */
import * as docker from "@pulumi/docker";
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ContainerServerSpec } from "../spec";
import type { ServerHandle } from "./server";

export interface ContainerServerArgs {
  readonly spec: ContainerServerSpec;
  readonly environment: string;
}

/** The image's bootstrap superuser; only the platform uses it. */
export const CONTAINER_ADMIN_USER = "platform_admin";

export class ContainerServer extends pulumi.ComponentResource implements ServerHandle {
  readonly spec: ContainerServerSpec;
  readonly provider: postgresql.Provider;
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly sslMode = "disable";
  readonly component = this;
  readonly container: docker.Container;

  constructor(name: string, args: ContainerServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("db-platform:servers:ContainerServer", name, {}, opts);
    const { spec, environment } = args;
    this.spec = spec;
    const parent = { parent: this };
    const id = `db-platform-${environment}-${spec.name}`;

    const password = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, parent);
    const image = new docker.RemoteImage(`${name}-image`, { name: spec.image, keepLocally: true }, parent);
    const volume = new docker.Volume(`${name}-data`, { name: `${id}-data` }, parent);
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
        ],
        // Loopback only: a laptop's database is never reachable from the network.
        ports: [{ internal: 5432, external: spec.port, ip: "127.0.0.1" }],
        volumes: [{ volumeName: volume.name, containerPath: "/var/lib/postgresql/data" }],
        healthcheck: {
          tests: ["CMD-SHELL", `pg_isready -U ${CONTAINER_ADMIN_USER} -d postgres`],
          interval: "5s",
          timeout: "3s",
          retries: 10,
        },
        wait: true,
        labels: [
          { label: "db-platform.environment", value: environment },
          { label: "db-platform.server", value: spec.name },
        ],
      },
      parent,
    );
    this.host = pulumi.output("127.0.0.1");
    this.port = pulumi.output(spec.port);
    this.provider = new postgresql.Provider(
      `${name}-postgresql`,
      {
        host: "127.0.0.1",
        port: spec.port,
        username: CONTAINER_ADMIN_USER,
        password: password.result,
        database: "postgres",
        sslmode: "disable",
        superuser: true,
        expectedVersion: spec.version,
        connectTimeout: 15,
      },
      { parent: this, dependsOn: [this.container] },
    );
    this.registerOutputs({ host: this.host, port: this.port, containerName: this.container.name });
  }
}
