/**
 * The metrics publisher task's refusals that need no server (exit 2, naming what is wrong); what
 * it measures and publishes is tested on the engine-applied dev stack (stats.test.ts).
 */
import { describe, expect, it } from "vitest";
import { statsTask } from "../../operations/stats/task";
import { ROOT } from "../helpers/synth";

async function run(env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await statsTask(
    env,
    (s) => (out += s),
    (s) => (err += s),
    ROOT,
  );
  return { code, out, err };
}

const LOGIN = JSON.stringify({ host: "127.0.0.1", port: 1, username: "db_platform_monitor", password: "x" });

describe("db-platform stats task: refusals", () => {
  it.each([
    [{}, "DB_PLATFORM_STACK, DB_PLATFORM_SERVER, DB_PLATFORM_MONITOR_LOGIN not set (the task definition sets them)"],
    [{ DB_PLATFORM_STACK: "dev", DB_PLATFORM_SERVER: "local", DB_PLATFORM_MONITOR_LOGIN: "{" }, "DB_PLATFORM_MONITOR_LOGIN: not JSON"],
    [
      { DB_PLATFORM_STACK: "dev", DB_PLATFORM_SERVER: "local", DB_PLATFORM_MONITOR_LOGIN: JSON.stringify({ host: "h" }) },
      "DB_PLATFORM_MONITOR_LOGIN: expected the monitoring login's secret: {host, port, username, password}",
    ],
    [
      { DB_PLATFORM_STACK: "dev", DB_PLATFORM_SERVER: "local", DB_PLATFORM_MONITOR_LOGIN: LOGIN, DB_PLATFORM_REPLICA_HOSTS: "[1]" },
      'DB_PLATFORM_REPLICA_HOSTS: expected {"<replica>": {"host": …, "port": …}}',
    ],
    [
      { DB_PLATFORM_STACK: "dev", DB_PLATFORM_SERVER: "local", DB_PLATFORM_MONITOR_LOGIN: LOGIN, DB_PLATFORM_STATS_WINDOW: "soon" },
      "DB_PLATFORM_STATS_WINDOW: not a number of seconds",
    ],
    [
      { DB_PLATFORM_STACK: "dev", DB_PLATFORM_SERVER: "nope", DB_PLATFORM_MONITOR_LOGIN: LOGIN },
      "DB_PLATFORM_SERVER nope: stack dev has no such server",
    ],
    [{ DB_PLATFORM_STACK: "nosuchstack", DB_PLATFORM_SERVER: "local", DB_PLATFORM_MONITOR_LOGIN: LOGIN }, "Pulumi.nosuchstack.yaml"],
  ])("%j", async (env, message) => {
    const r = await run(env);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
    expect(r.out).toBe("");
  });
});
