/**
 * How `up`, `preview` and `destroy` drive the engine, without a server: the progress display fed
 * the Automation API's engine events (counts by kind of change, what is in flight, warnings and
 * policy violations as lines, one line rewritten on a terminal, a line every few seconds
 * elsewhere), the engine settings per kind of stack, and the one retry of the provider's
 * autovacuum race.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { engineSettings, isLocalStack, LOCAL_PARALLEL, retryingAutovacuumRace } from "../../operations/stack/stackApply";
import { EngineProgress } from "../../operations/stack/progress";
import { readConfigFile } from "../../operations/stack/stackConfig";
import { loadSpec } from "../../components/spec";
import { ROOT } from "../helpers/synth";
import * as path from "node:path";

const meta = (urn: string, op: string, type = "postgresql:index/role:Role") => ({ urn, op, type, provider: "" }) as never;
const pre = (urn: string, op: string, type?: string): EngineEvent =>
  ({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: meta(urn, op, type) } }) as EngineEvent;
const done = (urn: string, op: string, type?: string): EngineEvent =>
  ({ sequence: 0, timestamp: 0, resOutputsEvent: { metadata: meta(urn, op, type) } }) as EngineEvent;

function run(tty: boolean, events: Array<[number, EngineEvent]>) {
  let clock = 0;
  const out: string[] = [];
  const p = new EngineProgress("up", (s) => out.push(s), { tty, everyMs: 5000, now: () => clock });
  for (const [at, e] of events) {
    clock = at;
    p.onEvent(e);
  }
  p.finish();
  return out.join("");
}

describe("EngineProgress", () => {
  const events: Array<[number, EngineEvent]> = [
    [0, pre("urn:a", "create")],
    [100, pre("urn:b", "same")],
    [1000, done("urn:a", "create")],
    [6000, done("urn:b", "same")],
    [6100, pre("urn:s", "create", "pulumi:pulumi:Stack")],
    [6200, pre("urn:p", "create", "pulumi:providers:postgresql")],
    [7000, pre("urn:c", "create")],
    [7500, { sequence: 0, timestamp: 0, resOpFailedEvent: { metadata: meta("urn:c", "create"), status: 1, steps: 1 } } as EngineEvent],
  ];

  it("prints a line every few seconds off a terminal, counting declared resources only", () => {
    expect(run(false, events)).toBe(
      [
        "up: 0 done, 1 in progress, 0.0 s",
        "up: 2 done (1 created, 1 unchanged), 6.0 s",
        "up: 2 done (1 created, 1 unchanged), 1 failed, 7.5 s",
        "",
      ].join("\n"),
    );
  });

  it("rewrites one line on a terminal and ends it", () => {
    const out = run(true, events);
    expect(out.startsWith("\r\x1b[Kup: 0 done, 1 in progress, 0.0 s")).toBe(true);
    expect(out.endsWith("\r\x1b[Kup: 2 done (1 created, 1 unchanged), 1 failed, 7.5 s\n")).toBe(true);
  });

  it("prints warnings and policy violations on lines of their own, each once", () => {
    const warn: EngineEvent = {
      sequence: 0,
      timestamp: 0,
      diagnosticEvent: { message: "disk almost full\n", color: "never", severity: "warning", urn: "urn:pulumi:s::p::t::orders-db" },
    };
    const info: EngineEvent = { sequence: 0, timestamp: 0, diagnosticEvent: { message: "chatter", color: "never", severity: "info" } };
    const policy = {
      sequence: 0,
      timestamp: 0,
      policyEvent: { message: "grant reaches orders_db", policyName: "no-cross-service-privileges", enforcementLevel: "mandatory" },
    } as EngineEvent;
    const out = run(true, [
      [0, pre("urn:a", "create")],
      [10, warn],
      [20, warn],
      [30, info],
      [40, policy],
    ]);
    // What a terminal shows: each line from its last "clear line".
    const shown = out.split("\n").map((l) => l.split("\r\x1b[K").at(-1));
    expect(shown.filter((l) => l !== "" && !l?.startsWith("up:"))).toEqual([
      "warning: orders-db: disk almost full",
      "policy no-cross-service-privileges (mandatory): grant reaches orders_db",
    ]);
  });
});

describe("engine settings", () => {
  const spec = (stack: string) => loadSpec(readConfigFile(path.join(ROOT, `Pulumi.${stack}.yaml`)));

  it("save local stacks' state once per operation and run LOCAL_PARALLEL operations at once", () => {
    expect(isLocalStack(spec("dev"))).toBe(true);
    expect(engineSettings(spec("dev"), {})).toEqual({ envVars: { PULUMI_SKIP_CHECKPOINTS: "true" }, parallel: LOCAL_PARALLEL });
  });

  it("leave the engine's defaults (a checkpoint per step) to other stacks", () => {
    expect(isLocalStack(spec("prod"))).toBe(false);
    expect(engineSettings(spec("prod"), {})).toEqual({ envVars: {} });
  });

  it("let PULUMI_SKIP_CHECKPOINTS and PULUMI_PARALLEL set by the user win", () => {
    expect(engineSettings(spec("dev"), { PULUMI_SKIP_CHECKPOINTS: "false", PULUMI_PARALLEL: "4" })).toEqual({
      envVars: {},
      parallel: undefined,
    });
  });
});

describe("the provider's autovacuum race on DROP DATABASE", () => {
  const race = new Error(
    "error: deleting urn:…:svc128-db: 1 error occurred:\n\t* error terminating database connections: pq: permission denied to terminate process (42501)",
  );

  it("runs the operation once more, and says why", async () => {
    const said: string[] = [];
    let calls = 0;
    const result = await retryingAutovacuumRace(
      "destroy",
      (s) => said.push(s),
      async () => {
        if (++calls === 1) throw race;
        return "done";
      },
    );
    expect(result).toBe("done");
    expect(calls).toBe(2);
    expect(said.join("")).toMatch(/autovacuum worker.*running the destroy again/);
  });

  /** How many times the operation ran when it always fails with `error`. */
  async function runsWhenAlwaysFailing(error: Error): Promise<number> {
    let calls = 0;
    const always = async () => {
      calls++;
      throw error;
    };
    await expect(retryingAutovacuumRace("up", () => undefined, always)).rejects.toBe(error);
    return calls;
  }

  it("gives up after the second failure, and passes other errors through untouched", async () => {
    expect(await runsWhenAlwaysFailing(race)).toBe(2);
    expect(await runsWhenAlwaysFailing(new Error('role "x" already exists'))).toBe(1);
  });
});
