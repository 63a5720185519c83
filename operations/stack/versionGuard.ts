/**
 * A server's PostgreSQL major is not changed by editing `servers.<name>.version` and running
 * `up`: on RDS that update cannot apply (the parameter group of a new family would replace the
 * one the instance uses, and `allowMajorVersionUpgrade` is off), a container's new image would
 * start on a volume of the old major's data, and a local server's data
 * directory can only be opened by the major that wrote it (operations/local/postgres.ts checks
 * that at start). `up` compares the stack's state with the spec before it applies anything and
 * refuses a major change, naming what to do; minor versions within a major are RDS's to apply.
 * An RDS server whose `upgrade` block `db-platform upgrade` wrote may be at either major.
 */
import type { Spec } from "../../components/spec";
import { DataProtectionError } from "./dataProtection";

interface StateResource {
  readonly type: string;
  readonly urn: string;
  readonly inputs?: Record<string, unknown>;
}

export interface MajorChange {
  readonly server: string;
  readonly hosting: "rds" | "container";
  readonly from: string;
  readonly to: string;
}

const RDS_PRIMARY = /::([^:$]+)-instance$/;
const CONTAINER_IMAGE = /::([^:$]+)-image$/;
/** The major of an official `postgres:<major>…` image; undefined for any other image. */
const imageMajor = (image: unknown) => /^(?:docker\.io\/(?:library\/)?)?postgres:(\d+)(?:[.-]|$)/.exec(String(image ?? ""))?.[1];

/**
 * The servers whose major in the state differs from the spec's: RDS instances by their
 * `engineVersion`, container servers by their official `postgres:<major>` image (the volume holds
 * the old major's data). A container with an image of its own is not judged.
 */
export function majorChanges(resources: readonly StateResource[], spec: Spec): MajorChange[] {
  const rds = new Map(spec.servers.flatMap((s) => (s.hosting === "rds" && !s.upgrade ? [[s.name, s.version]] : [])));
  const containers = new Map(
    spec.servers.flatMap((s) => (s.hosting === "container" && imageMajor(s.image) ? [[s.name, imageMajor(s.image) as string]] : [])),
  );
  const out: MajorChange[] = [];
  const judge = (server: string | undefined, from: string | undefined, wanted: Map<string, string>, hosting: MajorChange["hosting"]) => {
    const to = server === undefined ? undefined : wanted.get(server);
    if (to !== undefined && from && from !== to) out.push({ server: server as string, hosting, from, to });
  };
  for (const r of resources) {
    if (r.type === "aws:rds/instance:Instance")
      judge(RDS_PRIMARY.exec(r.urn)?.[1], String(r.inputs?.engineVersion ?? "").split(".")[0], rds, "rds");
    if (r.type === "docker:index/remoteImage:RemoteImage")
      judge(CONTAINER_IMAGE.exec(r.urn)?.[1], imageMajor(r.inputs?.name), containers, "container");
  }
  return out.sort((a, b) => a.server.localeCompare(b.server));
}

/** The major each RDS server's primary instance has in the state, by server name. */
export function stateMajors(resources: readonly StateResource[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of resources) {
    const server = r.type === "aws:rds/instance:Instance" ? RDS_PRIMARY.exec(r.urn)?.[1] : undefined;
    if (server) out.set(server, String(r.inputs?.engineVersion ?? "").split(".")[0]);
  }
  return out;
}

/** The refusal: one line per server, with what to do instead. */
export function majorChangeText(changes: readonly MajorChange[], stack?: string): string {
  const flag = stack ? `--stack ${stack}` : "--stack <stack>";
  return [
    "a PostgreSQL major version change is not applied by up:",
    ...changes.map((c) =>
      c.hosting === "rds"
        ? `  servers.${c.server}.version: ${c.from} → ${c.to} (the server runs ${c.from}; set version back to ${c.from} and run: db-platform upgrade plan ${flag} --server ${c.server} --to ${c.to}, then upgrade apply)`
        : `  servers.${c.server}.version: ${c.from} → ${c.to} (the container's volume holds PostgreSQL ${c.from} data; set version back to ${c.from}; db-platform upgrade runs on local and RDS servers: back the services up and restore them into a server of ${c.to})`,
    ),
    "A major upgrade is its own guarded operation: docs/upgrades.md.",
  ].join("\n");
}

/** Before `up` applies anything: refuse a major version change of an RDS or container server. */
export function checkNoMajorChange(resources: readonly StateResource[], spec: Spec, stack?: string): void {
  const changes = majorChanges(resources, spec);
  if (changes.length > 0) throw new DataProtectionError(majorChangeText(changes, stack));
}
