import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";

const cli = (...args: string[]) => runCli(args);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-policy-"));
const write = (name: string, content: unknown) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
};

type SynthEntry = {
  type: string;
  name: string;
  urn: string;
  parent: string | null;
  provider: string | null;
  props: Record<string, unknown>;
  protect?: true;
};
let prod: SynthEntry[];
let escapeUrn: string;

beforeAll(() => {
  const r = cli("synth", "--stack", "prod", "--json");
  expect(r.code).toBe(0);
  prod = JSON.parse(r.stdout);
  const provider = prod.find((x) => x.type === "pulumi:providers:postgresql" && x.name === "main-postgresql")?.urn as string;
  escapeUrn = "urn:pulumi:prod::db-platform::postgresql:index/grant:Grant::orders-reads-inventory";
  prod.push({
    type: "postgresql:index/grant:Grant",
    name: "orders-reads-inventory",
    urn: escapeUrn,
    parent: null,
    provider,
    props: { role: "orders_readonly", database: "inventory_db", objectType: "table", schema: "inventory", privileges: ["SELECT"] },
  });
});

/** The synth entries as a `pulumi stack export` (v3) document, with secrets as encrypted envelopes. */
function asExport(entries: SynthEntry[]) {
  const envelope = (v: unknown): unknown =>
    v === "[secret]"
      ? { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" }
      : Array.isArray(v)
        ? v.map(envelope)
        : v && typeof v === "object"
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, envelope(x)]))
          : v;
  return {
    version: 3,
    deployment: {
      manifest: { time: "2026-11-23T00:00:00Z", magic: "", version: "v3.259.0" },
      resources: entries.map((e) => ({
        urn: e.urn,
        custom: !e.type.startsWith("db-platform:"),
        type: e.type,
        inputs: envelope(e.props),
        outputs: {},
        parent: e.parent ?? undefined,
        provider: e.provider ? `${e.provider}::0d2a3c4e-provider-id` : undefined,
        ...(e.protect ? { protect: true } : {}),
      })),
    },
  };
}

describe("db-platform policy check", () => {
  it("exits 0 on the prod stack, synthesized offline with policies/config/prod.json", () => {
    const r = cli("policy", "check", "--stack", "prod");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("0 mandatory, 0 advisory violation(s)");
  });

  it("exits 1 on synth output with one injected escape, naming the policy and the resource", () => {
    const r = cli("policy", "check", "--state", write("synth.json", prod), "--json");
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([
      {
        policy: "no-cross-service-privileges",
        urn: escapeUrn,
        message:
          'role "orders_readonly" (service orders) must not be granted SELECT on tables in schema "inventory" in database "inventory_db" of service inventory on server main',
        enforcement: "mandatory",
      },
    ]);
  });

  it("gives the same result on a pulumi stack export document", () => {
    const fromSynth = JSON.parse(cli("policy", "check", "--state", write("synth2.json", prod), "--json").stdout);
    const r = cli("policy", "check", "--state", write("export.json", asExport(prod)), "--json");
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(fromSynth);
  });

  it("sees a plaintext password in an export (secrets are visible outside preview)", () => {
    const doc = asExport(prod.slice(0, -1));
    const role = doc.deployment.resources.find((x) => x.type === "postgresql:index/role:Role" && x.urn.endsWith("::orders-app"));
    (role?.inputs as Record<string, unknown>).password = "hunter2";
    const r = cli("policy", "check", "--state", write("export-plain.json", doc));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("credentials-are-secrets");
    expect(r.stdout).toContain("password of orders-app must be a Pulumi secret");
  });

  it("exits 2 with a clear message on bad input", () => {
    expect(cli("policy", "check").stderr).toContain("give --state <file>, --stack <name> or --config <file>");
    const notJson = cli("policy", "check", "--state", write("bad.json", "{nope"));
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/bad\.json: not valid JSON/);
    const wrongShape = cli("policy", "check", "--state", write("shape.json", { hello: 1 }));
    expect(wrongShape.code).toBe(2);
    expect(wrongShape.stderr).toContain("expected a `pulumi stack export` document or `db-platform synth --json` output");
    const lowered = cli("policy", "check", "--stack", "prod", "--policy-config", write("cfg.json", { "no-public-access": "advisory" }));
    expect(lowered.code).toBe(2);
    expect(lowered.stderr).toContain('no-public-access: isolation policies are mandatory in every stack (found "advisory")');
  });
});
