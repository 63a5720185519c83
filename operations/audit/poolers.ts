/**
 * What the local poolers really admit (docs/pooling.md, docs/audit.md): each PgBouncer's HBA,
 * auth and config files beside a local server and its standbys, read as they are on disk, against
 * what the stack pools there: each pooled service's app login at the primary's pooler, its
 * read-only login at the pooler of the instance it reads from, and the monitoring login on the
 * console over the socket. Anything else a pooler would admit is a `pooler-admission` finding
 * (critical: a pooler that admits a login to another service's database bypasses no grant, but
 * it is a door the stack did not declare and the server's HBA does not see).
 */
import * as fs from "node:fs";
import { type LocalServerSpec, loginRoleNames, type Spec } from "../../components/spec";
import { MONITOR_ROLE } from "../../components/spec/defaults";
import { POOLED_KINDS } from "../../components/spec/poolRules";
import { localRoot } from "../local/local";
import { localPoolers } from "../local/pools";
import type { AuditFinding } from "./model";
import { poolerAdmission } from "./rules/poolerAdmission";

/** The (database, login) pairs each pooler of a local server should admit, and whose services they are, by instance. */
function declaredAdmissions(spec: Spec, server: LocalServerSpec): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>([[server.name, new Map()], ...server.replicas.map((r) => [r.name, new Map()] as const)]);
  for (const service of spec.services) {
    if (service.server !== server.name || !service.pool) continue;
    for (const login of service.logins.filter((l) => POOLED_KINDS.has(l.kind))) {
      const instance = login.kind === "readonly" && server.reader ? server.reader : server.name;
      for (const role of loginRoleNames(login)) out.get(instance)?.set(`${service.database} ${role}`, service.name);
    }
  }
  return out;
}

const read = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
};
const lines = (text: string) =>
  text
    .split("\n")
    .map((l) => l.replace(/[#;].*$/, "").trim())
    .filter(Boolean);
/** `key = value` of the config file's [pgbouncer] section. */
function settings(config: string): Map<string, string> {
  const out = new Map<string, string>();
  let section = "";
  for (const l of lines(config)) {
    const header = /^\[(.+)\]$/.exec(l);
    if (header) section = header[1];
    else if (section === "pgbouncer" && l.includes("=")) out.set(l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim());
  }
  return out;
}

/** The findings of every pooler of the stack's local servers (audit `--service`: those its services concern, and anything undeclared). */
export function poolerFindings(spec: Spec, stack: string, projectDir: string): AuditFinding[] {
  const out: AuditFinding[] = [];
  for (const server of spec.servers) {
    if (server.hosting !== "local") continue;
    const declared = declaredAdmissions(spec, server);
    for (const [instance, pooler] of localPoolers(
      { ...server, pooler: server.pooler ?? undeclaredPooler(server) },
      localRoot(projectDir, stack),
      projectDir,
    )) {
      if (!fs.existsSync(pooler.configFile)) continue;
      const expected = declared.get(instance) ?? new Map<string, string>();
      const finding = (object: string, message: string, fix: string, services: readonly string[] = [], subject?: string): AuditFinding => ({
        severity: poolerAdmission.severity,
        rule: poolerAdmission.id,
        server: server.name,
        object: `pooler ${instance}: ${object}`,
        ...(subject ? { subject } : {}),
        services,
        message,
        fix,
      });
      const where = `the pooler beside ${instance} (${pooler.hbaFile})`;
      const regenerate = `db-platform up --stack ${stack} rewrites its files from the stack; find who edited ${pooler.opts.dir}`;
      if (!server.pooler)
        out.push(
          finding(
            "config",
            `${where} exists, but servers.${server.name} declares no pooler`,
            `db-platform local stop --stack ${stack}, then remove ${pooler.opts.dir}`,
          ),
        );
      for (const l of lines(read(pooler.hbaFile))) {
        const [type, database, login, ...rest] = l.split(/\s+/);
        const method = rest[rest.length - 1];
        if (type === "local" && database === "pgbouncer" && login === MONITOR_ROLE && method === "trust") continue;
        const service = expected.get(`${database} ${login}`);
        if (type === "host" && service && method === "scram-sha-256" && rest[0] === "127.0.0.1/32") continue;
        out.push(
          finding(
            `hba "${l}"`,
            `${where} admits ${login} to ${database} (${type}, ${method}), which the stack does not pool there`,
            regenerate,
            service ? [service] : [],
            login,
          ),
        );
      }
      const known = new Set([...expected.keys()].map((k) => k.split(" ")[1]));
      for (const l of lines(read(pooler.authFile))) {
        const login = /^"((?:[^"]|"")*)"/.exec(l)?.[1]?.replace(/""/g, '"') ?? l.split(/\s+/)[0];
        if (login !== MONITOR_ROLE && !known.has(login))
          out.push(
            finding(
              `auth file ${login}`,
              `the auth file of the pooler beside ${instance} holds ${login}, which the stack does not pool there`,
              regenerate,
              [],
              login,
            ),
          );
      }
      const s = settings(read(pooler.configFile));
      const wrong: Array<[string, string | undefined, string]> = [
        ["listen_addr", s.get("listen_addr"), "127.0.0.1"],
        ["auth_type", s.get("auth_type"), "hba"],
        ["admin_users", s.get("admin_users"), ""],
        ["stats_users", s.get("stats_users"), MONITOR_ROLE],
      ];
      for (const [key, value, want] of wrong.filter(([, v, w]) => (v ?? "") !== w))
        out.push(
          finding(
            `config ${key}`,
            `the pooler beside ${instance} has ${key} = ${value ?? "(unset)"}; the platform writes ${want || "(empty)"}`,
            regenerate,
          ),
        );
    }
  }
  return out;
}

/** Where a pooler's files would be for a server that declares none (left behind, or made by hand). */
function undeclaredPooler(server: LocalServerSpec): NonNullable<LocalServerSpec["pooler"]> {
  return { port: 0, standbyPorts: server.replicas.map(() => 0), mode: "transaction", maxClientConnections: 0, defaultPoolSize: 0 };
}
