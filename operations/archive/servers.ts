import { BackupCommandError, type BackupContext } from "../backup/command";
import { localArchive, localInstances, localServers } from "../local/local";
import type { LocalArchive } from "./archive";

/** The archived local servers of a stack (or the one named), with their archives. */
export function archivedServers(ctx: BackupContext, only?: string): LocalArchive[] {
  const servers = localServers(ctx.spec).filter((s) => only === undefined || s.name === only);
  if (only !== undefined && servers.length === 0)
    throw new BackupCommandError(`--server ${only}: stack ${ctx.stack} has no local server of that name`);
  return servers.flatMap((s) => {
    const archive = localArchive(ctx.spec, localInstances(s, ctx.stack, ctx.projectDir, "").primary, ctx.stack, ctx.projectDir);
    return archive ? [archive] : [];
  });
}
