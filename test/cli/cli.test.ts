import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";

const cli = (...args: string[]) => runCli(args);

function tempConfig(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-cli-"));
  const file = path.join(dir, "Pulumi.broken.yaml");
  fs.writeFileSync(file, yaml);
  return file;
}

describe("db-platform validate", () => {
  it("exits 0 on the prod stack", () => {
    const r = cli("validate", "--stack", "prod");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Pulumi.prod.yaml: valid (environment prod, 2 server(s), 5 service(s))");
  });

  it("exits 1 listing every mistake, one line each starting with its config path", () => {
    const file = tempConfig(`config:
  db-platform:environment: prod
  db-platform:servers:
    main:
      hosting: rds
      publiclyAccessible: true
  db-platform:services:
    inventory:
      server: mian
    payments:
      server: main
      isolation: schema
    Billing:
      server: main
`);
    const r = cli("validate", "--config", file);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toEqual([
      "aws:region: required by servers.main (hosting rds)",
      "servers.main.network: required for hosting rds (or set the stack-wide db-platform:network)",
      "servers.main.publiclyAccessible: must be false in a strict environment (prod)",
      "services.Billing: service names must be lower-case letters, digits and -, starting with a letter",
      'services.inventory.server: unknown server "mian" (known: main) (did you mean "main"?)',
      "services.payments.database: required when isolation is schema: the shared database the service's schemas live in",
      "backups: required in strict environments with rds servers: per-service backups to S3 and RDS backups replicated to another region (storage: s3, replicaRegion: …)",
    ]);
  });

  it("exits 2 on usage errors, naming the argument", () => {
    expect(cli("validate").code).toBe(2);
    expect(cli("validate").stderr).toContain("give --stack <name> or --config <file>");
    const missing = cli("validate", "--stack", "nope");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Pulumi\.nope\.yaml: no such file/);
    expect(cli("frobnicate").code).toBe(2);
  });

  it("has --help on every command", () => {
    for (const args of [["--help"], ["validate", "--help"], ["synth", "--help"]]) {
      const r = cli(...args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout).toContain("Usage: db-platform");
    }
  });
});

describe("db-platform synth", () => {
  it("prints the full prod resource set as JSON, offline, in under 10 s", () => {
    const r = cli("synth", "--stack", "prod", "--json");
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(10_000);
    const resources = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(resources.length).toBeGreaterThan(200);
    for (const res of resources) {
      const optional = ["protect", "ignoreChanges"].filter((k) => k in res);
      expect(Object.keys(res)).toEqual(["type", "name", "urn", "parent", "provider", "props", ...optional]);
      if ("protect" in res) expect(res.protect).toBe(true);
      if ("ignoreChanges" in res) expect((res.ignoreChanges as string[]).length).toBeGreaterThan(0);
    }
    // Every service database and schema is protected (docs/data-safety.md).
    const data = resources.filter((r) => /^postgresql:index\/(database|schema):/.test(String(r.type)));
    expect(data.length).toBeGreaterThan(3);
    for (const d of data) expect(d.protect, String(d.urn)).toBe(true);
    const urns = new Set(resources.map((x) => x.urn));
    expect(urns.size).toBe(resources.length);
    for (const res of resources) {
      if (res.parent) expect(urns.has(res.parent), String(res.urn)).toBe(true);
      if (res.provider) expect(urns.has(res.provider), String(res.urn)).toBe(true);
    }
  });

  it("refuses an invalid stack with the same problem lines as validate", () => {
    const file = tempConfig("config:\n  db-platform:environment: dev\n  db-platform:servers: {}\n");
    const r = cli("synth", "--config", file, "--json");
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toBe("servers: declare at least one server");
  });
});
