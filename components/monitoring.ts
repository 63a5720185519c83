/**
 * The platform's monitoring login on one server (`db-platform stats`, docs/stats.md): a member of
 * `pg_monitor` — statistics, activity and sizes, never a row — with CONNECT on the service
 * databases (granted next to them) and nothing else, and the statement statistics extension in
 * the `postgres` database. The policy pack's `monitoring-role` rule holds it to exactly that.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ServerHandle } from "./servers/server";
import { loginSecret } from "./servers/aws";
import { serverTags } from "./servers/server";
import { monitorSecretName } from "./spec";
import { MONITOR_MEMBERSHIP, MONITOR_ROLE } from "./spec/defaults";
import { connectionUrl, UNPRIVILEGED } from "./service/serviceDatabase";

export interface ServerMonitoring {
  readonly role: postgresql.Role;
  /** postgresql://db_platform_monitor:…@host:port/postgres, secret. */
  readonly url: pulumi.Output<string>;
  /** RDS servers: its Secrets Manager secret (RDS secret JSON), what the metrics publisher reads. */
  readonly secretArn?: pulumi.Output<string>;
}

export interface MonitoringContext {
  readonly environment: string;
  readonly strict: boolean;
  readonly tags: Readonly<Record<string, string>>;
}

export function serverMonitoring(server: ServerHandle, parent: pulumi.Resource, ctx: MonitoringContext): ServerMonitoring {
  const name = server.spec.name;
  const pg = { parent, provider: server.provider };
  const password = new random.RandomPassword(`${name}-monitor-password`, { length: 40, special: false }, { parent });
  const role = new postgresql.Role(
    `${name}-monitor`,
    {
      name: MONITOR_ROLE,
      login: true,
      password: password.result,
      inherit: true,
      roles: [MONITOR_MEMBERSHIP],
      connectionLimit: 5,
      ...UNPRIVILEGED,
    },
    pg,
  );
  // Server infrastructure, not the stack's: a destroy leaves it (on a local server the bootstrap
  // superuser created it, and the admin may not drop it).
  new postgresql.Extension(
    `${name}-pg-stat-statements`,
    { name: "pg_stat_statements", database: "postgres" },
    { ...pg, retainOnDelete: true },
  );
  const url = connectionUrl(MONITOR_ROLE, password.result, server.host, server.port, "postgres", server.sslMode);
  if (server.spec.hosting !== "rds" || !server.kmsKeyArn) return { role, url };
  const secretArn = loginSecret(
    `${name}-monitor`,
    {
      secretName: monitorSecretName(ctx.environment, name),
      description: `${MONITOR_ROLE} login of ${name}: statistics only (pg_monitor), for the per-service metrics publisher`,
      kmsKeyId: server.kmsKeyArn,
      recoveryWindowInDays: ctx.strict ? 30 : 7,
      tags: serverTags(ctx.environment, name, ctx.tags),
      host: server.host,
      port: server.port,
      username: MONITOR_ROLE,
      password: password.result,
      dbname: "postgres",
    },
    { parent },
  ).arn;
  return { role, url, secretArn };
}

/** CONNECT on a database for the monitoring login: what it needs to read that database's table statistics and sizes. */
export function monitorConnect(
  name: string,
  database: pulumi.Input<string>,
  monitor: ServerMonitoring,
  opts: pulumi.CustomResourceOptions,
): postgresql.Grant {
  return new postgresql.Grant(
    name,
    { database, role: monitor.role.name, objectType: "database", privileges: ["CONNECT"] },
    { ...opts, dependsOn: [monitor.role, ...((opts.dependsOn as pulumi.Resource[] | undefined) ?? [])] },
  );
}
