/**
 * A local AWS API emulator — moto's server mode, from PyPI (test/aws/requirements.txt, in a
 * cached virtual environment made by scripts/clients/venv.sh) — answering the AWS calls of code
 * that talks to an AWS API with no local counterpart (Secrets Manager). It is an emulator, not
 * AWS: what it proves is that the calls are made in the right order with the right inputs. Binds
 * 127.0.0.1 on a free port; `stop` ends it (and it ends with the test process).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as path from "node:path";
import { freePort } from "./ports";
import { ROOT } from "./synth";

export interface AwsEmulator {
  /** `http://127.0.0.1:<port>`: every service's endpoint. */
  readonly endpoint: string;
  /** What an AWS SDK client is configured with to talk to it. */
  readonly clientConfig: {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  stop(): Promise<void>;
}

export async function startAwsEmulator(): Promise<AwsEmulator> {
  const requirements = path.join(ROOT, "test", "aws", "requirements.txt");
  const bin = execFileSync("bash", [path.join(ROOT, "scripts", "clients", "venv.sh"), "--quiet", requirements], {
    encoding: "utf8",
  }).trim();
  const port = await freePort();
  const child: ChildProcess = spawn(path.join(bin, "moto_server"), ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  // It ends with the test process, whatever ends that.
  const end = () => child.kill("SIGKILL");
  process.once("exit", end);
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${log}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`moto_server did not answer on ${endpoint} within 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    endpoint,
    clientConfig: { endpoint, region: "us-east-1", credentials: { accessKeyId: "testing", secretAccessKey: "testing" } },
    stop: () =>
      new Promise<void>((resolve) => {
        process.off("exit", end);
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
