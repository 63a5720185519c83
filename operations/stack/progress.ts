/**
 * A compact progress display for engine operations: how many resources are done (by kind of
 * change), how many are in flight, and the time, instead of the engine's line per step. On a
 * terminal one line is rewritten in place; otherwise a line is printed every few seconds. The
 * engine's warnings, errors and policy violations are printed as they come.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";

const VERBS: Record<string, string> = {
  create: "created",
  update: "updated",
  delete: "deleted",
  replace: "replaced",
  same: "unchanged",
  read: "read",
  refresh: "refreshed",
};

export interface ProgressOptions {
  /** Rewrite one line in place (a terminal) rather than print a line every `everyMs`. */
  readonly tty: boolean;
  /** @default 5000 */
  readonly everyMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export class EngineProgress {
  private readonly started: number;
  private readonly inFlight = new Set<string>();
  private readonly done = new Map<string, number>();
  private failed = 0;
  /** Diagnostics already printed: the engine repeats some (one per plugin host). */
  private readonly printed = new Set<string>();
  private lastShown = Number.NEGATIVE_INFINITY;
  private shownLength = 0;
  private readonly now: () => number;
  private readonly everyMs: number;

  constructor(
    private readonly operation: string,
    private readonly say: (s: string) => void,
    private readonly opts: ProgressOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.everyMs = opts.everyMs ?? 5000;
    this.started = this.now();
  }

  /** The Automation API's `onEvent`. */
  readonly onEvent = (e: EngineEvent): void => {
    const step = e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata;
    // Steps of the stack itself and of providers are not resources a user declared.
    if (step && (step.type === "pulumi:pulumi:Stack" || step.type.startsWith("pulumi:providers:"))) return;
    if (e.resourcePreEvent && !e.resourcePreEvent.planning) this.inFlight.add(e.resourcePreEvent.metadata.urn);
    else if (e.resOutputsEvent && !e.resOutputsEvent.planning) {
      const { urn, op } = e.resOutputsEvent.metadata;
      this.inFlight.delete(urn);
      this.done.set(op, (this.done.get(op) ?? 0) + 1);
    } else if (e.resOpFailedEvent) {
      this.inFlight.delete(e.resOpFailedEvent.metadata.urn);
      this.failed++;
    } else if (e.diagnosticEvent && (e.diagnosticEvent.severity === "warning" || e.diagnosticEvent.severity === "error")) {
      const d = e.diagnosticEvent;
      this.print(`${d.severity}: ${d.urn ? `${d.urn.split("::").at(-1)}: ` : ""}${d.message.trim()}`);
    } else if (e.policyEvent) {
      const p = e.policyEvent;
      this.print(`policy ${p.policyName} (${p.enforcementLevel}): ${p.message.trim()}`);
    }
    this.show(false);
  };

  /** The final line. */
  finish(): void {
    this.show(true);
    if (this.opts.tty && this.shownLength > 0) this.say("\n");
    this.shownLength = 0;
  }

  /** `up: 523 done (412 created, 111 unchanged), 8 in progress, 12.3 s` */
  line(): string {
    const total = [...this.done.values()].reduce((a, b) => a + b, 0);
    const kinds = [...this.done.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([op, n]) => `${n} ${VERBS[op] ?? op}`);
    const parts = [`${this.operation}: ${total} done${kinds.length > 0 ? ` (${kinds.join(", ")})` : ""}`];
    if (this.inFlight.size > 0) parts.push(`${this.inFlight.size} in progress`);
    if (this.failed > 0) parts.push(`${this.failed} failed`);
    parts.push(`${((this.now() - this.started) / 1000).toFixed(1)} s`);
    return parts.join(", ");
  }

  private print(text: string): void {
    if (this.printed.has(text)) return;
    this.printed.add(text);
    if (this.opts.tty && this.shownLength > 0) this.say("\r\x1b[K");
    this.shownLength = 0;
    this.say(`${text}\n`);
  }

  private show(force: boolean): void {
    const now = this.now();
    const interval = this.opts.tty ? 200 : this.everyMs;
    if (!force && now - this.lastShown < interval) return;
    this.lastShown = now;
    const text = this.line();
    if (this.opts.tty) {
      this.say(`\r\x1b[K${text}`);
      this.shownLength = text.length;
    } else {
      this.say(`${text}\n`);
    }
  }
}
