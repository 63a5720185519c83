/**
 * Policy evaluation time against stack size: synthesizes a prod-like stack of N services
 * (default 1,000, on 10 RDS servers) under the SDK's mocks, then times the policy pack's rules
 * over it, several times. Usage: npm run bench:policy [-- <services>]
 */
import { synth } from "../../operations/stack/synth";
import { evaluate, resolveConfig } from "../../policies/engine/evaluate";
import { fromSynth } from "../../policies/engine/sources";

async function main(): Promise<void> {
  const services = Number(process.argv[2] ?? 1000);
  const servers = Math.max(1, Math.ceil(services / 100));
  const values = {
    environment: "prod",
    network: { vpcId: "vpc-1", subnetIds: ["subnet-a", "subnet-b"] },
    servers: Object.fromEntries(Array.from({ length: servers }, (_, i) => [`db${i}`, { hosting: "rds" }])),
    services: Object.fromEntries(
      Array.from({ length: services }, (_, i) => [
        `svc${i}`,
        i % 4 === 3 ? { server: `db${i % servers}`, isolation: "schema", database: "shared" } : { server: `db${i % servers}` },
      ]),
    ),
  };
  let t = Date.now();
  const resources = await synth({ values, secretKeys: new Set(), awsRegion: "eu-central-1" }, "db-platform", "bench");
  const synthMs = Date.now() - t;
  const input = fromSynth(resources);
  const resolved = resolveConfig({
    all: "mandatory",
    "rds-backup-retention": { minimumDays: 14 },
    "rds-production-protection": { required: true },
  });
  const times: number[] = [];
  let violations = 0;
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    violations = evaluate(input, resolved).length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      services,
      servers,
      resources: resources.length,
      synthMs,
      policyMs: { min: Math.round(times[0]), median: Math.round(times[2]), max: Math.round(times[4]) },
      violations,
    }),
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
