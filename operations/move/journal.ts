/**
 * The move's journal: `services.<name>.move` in the stack file, written at each step so that a
 * move stopped anywhere resumes from what the file says (operations/move/move.ts).
 */
import { type Document, isNode, visit } from "yaml";
import type { ServiceSpec } from "../../components/spec";
import { NAMESPACE } from "../../components/spec/naming";
import type { RawMove } from "../../components/spec/schema";
import { BackupCommandError } from "../backup/command";
import { editConfigFile } from "../stack/stackConfig";

const servicesKey = `${NAMESPACE}:services`;

/**
 * The stack file's entry of the service, refused when other entries share it through a YAML
 * anchor: an edit there would move them too.
 */
export function ownEntry(doc: Document, file: string, service: string): void {
  const node = doc.getIn(["config", servicesKey, service], true);
  const anchor = isNode(node) ? node.anchor : undefined;
  if (!anchor) return;
  let shared = false;
  visit(doc, { Alias: (_key, alias) => void (shared ||= alias.source === anchor) });
  if (shared) {
    throw new BackupCommandError(
      `${file}: services.${service} is the YAML anchor &${anchor} other entries refer to; write those entries out in full first (the move edits this one)`,
    );
  }
}

export function writeMove(file: string, service: string, move: RawMove | undefined): void {
  editConfigFile(file, (doc: Document) => {
    ownEntry(doc, file, service);
    if (move) doc.setIn(["config", servicesKey, service, "move"], doc.createNode(move));
    else doc.deleteIn(["config", servicesKey, service, "move"]);
  });
}

/**
 * The stack file declares the service at its target, with `move.phase: done` until the last `up`
 * has given the target's resources the service's own names (then `writeMove(…, undefined)`).
 */
export function writeArrived(file: string, service: string, target: ServiceSpec, defaultDatabase: string): void {
  editConfigFile(file, (doc: Document) => {
    ownEntry(doc, file, service);
    const at = ["config", servicesKey, service];
    doc.setIn([...at, "move"], doc.createNode({ to: placeOf(target), phase: "done" }));
    doc.setIn([...at, "server"], target.server);
    if (target.isolation === "schema") doc.setIn([...at, "isolation"], "schema");
    else doc.deleteIn([...at, "isolation"]);
    if (target.isolation === "schema" || target.database !== defaultDatabase) doc.setIn([...at, "database"], target.database);
    else doc.deleteIn([...at, "database"]);
  });
}

/** Where a service is, as `move.to` says it. */
const placeOf = (t: ServiceSpec): RawMove["to"] => ({ server: t.server, isolation: t.isolation, database: t.database });

export function rawMove(service: ServiceSpec, phase: RawMove["phase"], exported?: string): RawMove {
  return {
    to: placeOf(service.move?.target as ServiceSpec),
    phase,
    ...(exported && { export: exported }),
  };
}
