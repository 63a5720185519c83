/**
 * What an RDS server declares in each phase of a major upgrade (`servers.<name>.upgrade`, written
 * by `db-platform upgrade`; docs/upgrades.md). A parameter group exists per family, named after
 * it, so the group of the new major is created beside the one the instance uses and the old one
 * is deleted only once nothing uses it. `allowMajorVersionUpgrade` and `applyImmediately` are on
 * for the upgrade's own update only. In-region replicas are upgraded by RDS with their primary;
 * cross-region replicas leave the stack before it and are created again from the upgraded
 * primary after it.
 */
import type { RdsServerSpec } from "../spec";

/** The parameter group family of a major version: `postgres16`. */
export function parameterGroupFamily(version: string): string {
  return `postgres${version}`;
}

/** A parameter group's name: one per server (or replica) and family, `prod-main-postgres16`. */
export function parameterGroupName(id: string, version: string): string {
  return `${id}-${parameterGroupFamily(version)}`;
}

/** What happens to cross-region replicas in a phase. */
export type CrossRegionReplicas = "kept" | "unprotected" | "detached";

export interface RdsRender {
  /** The major the primary runs: its `engineVersion`. */
  readonly running: string;
  /** The majors whose parameter groups exist: the running one; during an upgrade the old and the new. */
  readonly families: readonly string[];
  /** The major of the parameter group the replicas use (RDS upgrades in-region replicas with the primary). */
  readonly replicaFamily: string;
  /** The primary's update is the major upgrade: `allowMajorVersionUpgrade` and `applyImmediately` on. */
  readonly majorUpdate: boolean;
  readonly crossRegion: CrossRegionReplicas;
  /** Tags the instances carry while an upgrade is in progress (the policy pack reads them). */
  readonly tags: Readonly<Record<string, string>>;
  /** The major whose groups had the unsuffixed resource names before groups were named per family. */
  readonly aliasedFamily: string;
}

export const UPGRADE_TAG = "db-platform:upgrade";
export const UPGRADE_PHASE_TAG = "db-platform:upgrade-phase";

/** The declared shape of an RDS server in its current phase. */
export function rdsRender(spec: Pick<RdsServerSpec, "version" | "upgrade">): RdsRender {
  const { version, upgrade } = spec;
  if (!upgrade) {
    return {
      running: version,
      families: [version],
      replicaFamily: version,
      majorUpdate: false,
      crossRegion: "kept",
      tags: {},
      aliasedFamily: version,
    };
  }
  const upgrading = upgrade.phase === "upgrade";
  return {
    running: upgrading ? version : upgrade.from,
    families: [upgrade.from, version],
    replicaFamily: upgrade.from,
    majorUpdate: upgrading,
    crossRegion: upgrade.phase === "unprotect-replicas" ? "unprotected" : "detached",
    tags: { [UPGRADE_TAG]: `${upgrade.from} to ${version}`, [UPGRADE_PHASE_TAG]: upgrade.phase },
    aliasedFamily: upgrade.from,
  };
}
