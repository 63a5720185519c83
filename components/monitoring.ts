/**
 * The platform's monitoring login on one server (`db-platform stats`, docs/stats.md): a member of
 * `pg_monitor` — statistics, activity and sizes, never a row — with CONNECT on the service
 * databases (granted next to them) and nothing else, and the statement statistics extension in
 * the `postgres` database. The policy pack's `monitoring-role` rule holds it to exactly that. On
 * RDS its secret is rotated by Secrets Manager over two slots, as the services' logins are: the
 * alternate `db_platform_monitor_alt` is a member of it, holding nothing of its own.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { ServerHandle } from "./servers/server";
import { loginSecret } from "./servers/aws";
import { rotateLoginSecret } from "./servers/loginRotation";
import { serverTags } from "./servers/server";
import { monitorSecretName } from "./spec";
import { LOGIN_ROTATION_DAYS, MONITOR_MEMBERSHIP, MONITOR_ROLE } from "./spec/defaults";
import { alternateRoleName } from "./spec/rotation";
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
  // On RDS Secrets Manager rotates the login over two slots, as the services' (docs/rotation.md): `up` sets the first passwords only.
  const rotation = server.spec.hosting === "rds" && server.kmsKeyArn ? server.loginRotation : undefined;
  const settings = { login: true, inherit: true, connectionLimit: 5, ...UNPRIVILEGED };
  const owned = rotation ? { ignoreChanges: ["password"] } : {};
  const role = new postgresql.Role(
    `${name}-monitor`,
    { name: MONITOR_ROLE, password: password.result, roles: [MONITOR_MEMBERSHIP], ...settings },
    { ...pg, ...owned },
  );
  // Server infrastructure, not the stack's: a destroy leaves it (on a local server the bootstrap
  // superuser created it, and the admin may not drop it).
  new postgresql.Extension(
    `${name}-pg-stat-statements`,
    { name: "pg_stat_statements", database: "postgres" },
    { ...pg, retainOnDelete: true },
  );
  const url = connectionUrl(MONITOR_ROLE, rotation ? undefined : password.result, server.host, server.port, "postgres", server.sslMode);
  if (!rotation || !server.kmsKeyArn) return { role, url };
  const alternate = new random.RandomPassword(`${name}-monitor-alt-password`, { length: 40, special: false }, { parent });
  const alternateRole = new postgresql.Role(
    `${name}-monitor-alt`,
    { name: alternateRoleName(MONITOR_ROLE), password: alternate.result, roles: [role.name], ...settings },
    { ...pg, ...owned },
  );
  const secret = loginSecret(
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
      login: MONITOR_ROLE,
      rotated: true,
    },
    { parent },
  );
  rotateLoginSecret(`${name}-monitor-rotation`, rotation, secret, LOGIN_ROTATION_DAYS, { parent, after: [role, alternateRole] });
  return { role, url, secretArn: secret.arn };
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
