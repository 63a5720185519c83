/**
 * An audit rule: one kind of finding, its severity, the sentence docs/audit.md shows for it (the
 * docs test checks the table against this list), and the check that reports it with its fix.
 */
import type { AuditRule, Severity } from "../model";
import type { AuditContext, NewFinding } from "./context";

export interface AuditOptions {
  /** Logins whose password expires later than this many days from now (or never) are reported. */
  readonly passwordMaxAgeDays?: number;
  /** For the password expiry rule. @default new Date() */
  readonly now?: Date;
}

interface RuleBase {
  readonly id: AuditRule;
  readonly severity: Severity;
  /** When it reports: the "Reported when" cell of docs/audit.md's table of rules. */
  readonly reportedWhen: string;
}

/** A rule over one model of a live server. */
export interface ServerRule extends RuleBase {
  readonly source: "server";
  readonly check: (ctx: AuditContext, opts: AuditOptions) => Iterable<NewFinding>;
}

/** A rule over the backup bucket (operations/audit/backups.ts runs it). */
export interface BackupRule extends RuleBase {
  readonly source: "backups";
}

/** A rule over the local poolers' files (operations/audit/poolers.ts runs it). */
export interface PoolerRule extends RuleBase {
  readonly source: "poolers";
}

/** A rule over the stack file's credentials (operations/audit/rules/credentialAge.ts runs it). */
export interface CredentialRule extends RuleBase {
  readonly source: "credentials";
}

export type AuditRuleDef = ServerRule | BackupRule | PoolerRule | CredentialRule;

/** A server rule that reports each live item `select` picks, as `describe` says. */
export function perItem<T>(
  meta: Omit<ServerRule, "source" | "check">,
  select: (ctx: AuditContext) => Iterable<T>,
  describe: (item: T, ctx: AuditContext) => NewFinding,
): ServerRule {
  return {
    ...meta,
    source: "server",
    *check(ctx) {
      for (const item of select(ctx)) yield describe(item, ctx);
    },
  };
}
