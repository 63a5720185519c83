/**
 * Offline speed: `db-platform synth` of a prod-like stack of N services (default 1,000, on RDS
 * servers of 100 services each) under the SDK's mocks, then `policy check` of it, against the
 * floor: the bare Pulumi SDK registering the same number of plain resources, with the same inputs,
 * under the same mocks. Each side runs in a process of its own, so its peak memory (maxRSS) is its
 * own. Usage: npm run bench:synth [-- <services>]
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { withoutPromiseStacks } from "../../operations/stack/promiseStacks";
import { type SynthResource, synth } from "../../operations/stack/synth";
import { evaluate, resolveConfig } from "../../policies/engine/evaluate";
import { fromSynth } from "../../policies/engine/sources";

interface Measured {
  readonly resources: number;
  readonly seconds: number;
  readonly policySeconds?: number;
  readonly maxRssMiB: number;
}

function prodLike(services: number) {
  const servers = Math.max(1, Math.ceil(services / 100));
  return {
    environment: "prod",
    network: { vpcId: "vpc-1", subnetIds: ["subnet-a", "subnet-b"] },
    backups: { storage: "s3", replicaRegion: "eu-west-1" },
    servers: Object.fromEntries(Array.from({ length: servers }, (_, i) => [`db${i}`, { hosting: "rds" }])),
    services: Object.fromEntries(
      Array.from({ length: services }, (_, i) => [
        `svc${i}`,
        i % 5 === 4 ? { server: `db${i % servers}`, isolation: "schema", database: "shared" } : { server: `db${i % servers}` },
      ]),
    ),
  };
}

/** The platform's program under the mocks (what `db-platform synth` runs), then the pack's rules over it. */
async function measureSynth(services: number, out: string): Promise<Measured> {
  const t = performance.now();
  const resources = await synth({ values: prodLike(services), secretKeys: new Set(), awsRegion: "eu-central-1" }, "db-platform", "bench");
  const seconds = (performance.now() - t) / 1000;
  fs.writeFileSync(out, JSON.stringify(resources.map((r) => ({ type: r.type, name: r.name, props: r.props }))));
  const p = performance.now();
  evaluate(fromSynth(resources), resolveConfig());
  const policySeconds = (performance.now() - p) / 1000;
  return { resources: resources.length, seconds, policySeconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

/** A custom resource of any type with the given inputs: what the SDK does for every resource, and nothing more. */
class PlainResource extends pulumi.CustomResource {
  constructor(type: string, name: string, props: Record<string, unknown>) {
    super(type, name, props);
  }
}

/** The floor: plain custom resources with the same types, names and inputs, registered under the same kind of mocks. */
async function measureFloor(input: string): Promise<Measured> {
  const declared = JSON.parse(fs.readFileSync(input, "utf8")) as Array<Pick<SynthResource, "type" | "name" | "props">>;
  const t = performance.now();
  let registered = 0;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered++;
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    "db-platform",
    "bench",
    false,
  );
  await withoutPromiseStacks(async () => {
    for (const r of declared) new PlainResource(r.type, r.name, r.props);
    await pulumi.runtime.disconnect();
  });
  return { resources: registered, seconds: (performance.now() - t) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

function child(args: string[]): Measured {
  const out = execFileSync(process.execPath, ["--max-old-space-size=12288", "--require", "tsx/cjs", __filename, ...args], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 ** 2,
  });
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Measured;
}

async function main(): Promise<void> {
  const [mode, arg, file] = process.argv.slice(2);
  if (mode === "--synth") return void console.log(JSON.stringify(await measureSynth(Number(arg), file)));
  if (mode === "--floor") return void console.log(JSON.stringify(await measureFloor(arg)));
  const services = Number(mode ?? 1000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-bench-synth-"));
  try {
    const declared = path.join(tmp, "declared.json");
    const s = child(["--synth", String(services), declared]);
    const f = child(["--floor", declared]);
    console.log(
      "| services | resources | synth | policy check | synth peak memory | SDK floor | floor peak memory | time ÷ floor | memory ÷ floor |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    console.log(
      `| ${services} | ${s.resources} | ${s.seconds.toFixed(1)} s | ${s.policySeconds?.toFixed(1)} s | ${s.maxRssMiB.toFixed(0)} MiB | ${f.seconds.toFixed(1)} s | ${f.maxRssMiB.toFixed(0)} MiB | ${(s.seconds / f.seconds).toFixed(2)}× | ${(s.maxRssMiB / f.maxRssMiB).toFixed(2)}× |`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
