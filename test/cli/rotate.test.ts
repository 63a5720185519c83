/**
 * `db-platform rotate` without a server: the plan from the stack file alone (which logins, which
 * role each URL will name), a pending rotation resumed rather than repeated, and the refusals
 * that come before anything is applied (exit 2, the stack file unchanged). The rotation itself
 * through the real engine, under load, on PostgreSQL 15-18: test/e2e/isolation.e2e.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";
import { ROOT } from "../helpers/synth";

let dir: string;

const STACK_FILE = `config:
  db-platform:environment: dev
  db-platform:servers:
    local: { hosting: local, version: "16", port: 54329 }
  db-platform:adminPasswords:
    local: { secure: v1:abc }
  db-platform:services:
    payments: { server: local, isolation: schema, database: platform }
    profile:
      server: local
      roles: { reporter: { read: ["*"] } }
      credentials: { app: { generation: 1, rotatedAt: "2026-12-01T10:00:00Z" } }
`;

function stackFile(name: string, text = STACK_FILE): string {
  const file = path.join(dir, `Pulumi.${name}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}
const rotate = (file: string, ...args: string[]) => runCli(["rotate", ...args, "--config", file]);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-rotate-"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: db-platform\nruntime: nodejs\n");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("rotate --plan", () => {
  it("lists every login of every service with the generation and the role its URL will name", () => {
    const r = rotate(stackFile("plan"), "--plan");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "rotate 7 login(s) of stack plan:",
        "  payments app: generation 1: its URL and secret name payments_app_alt; payments_app keeps the previous credential until the next rotation",
        "  payments readonly: generation 1: its URL and secret name payments_readonly_alt; payments_readonly keeps the previous credential until the next rotation",
        "  payments migrator: generation 1: its URL and secret name payments_migrator_alt; payments_migrator keeps the previous credential until the next rotation",
        "  profile app: generation 2: its URL and secret name profile_app; profile_app_alt keeps the previous credential until the next rotation",
        "  profile readonly: generation 1: its URL and secret name profile_readonly_alt; profile_readonly keeps the previous credential until the next rotation",
        "  profile migrator: generation 1: its URL and secret name profile_migrator_alt; profile_migrator keeps the previous credential until the next rotation",
        "  profile reporter: generation 1: its URL and secret name profile_reporter_alt; profile_reporter keeps the previous credential until the next rotation",
        "",
      ].join("\n"),
    );
  });

  it("narrows to one service and one login, as JSON", () => {
    const r = rotate(stackFile("one"), "--plan", "--json", "--service", "profile", "--login", "reporter");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stack: "one",
      resuming: false,
      logins: [
        {
          service: "profile",
          login: "reporter",
          by: "engine",
          generation: 1,
          role: "profile_reporter_alt",
          previousRole: "profile_reporter",
        },
      ],
    });
  });

  it("on AWS (prod): the logins are Secrets Manager's to rotate, now, over the same two slots", () => {
    const r = runCli(["rotate", "--plan", "--config", path.join(ROOT, "Pulumi.prod.yaml"), "--service", "orders", "--login", "app"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "rotate 1 login(s) of stack prod:",
        "  orders app: by Secrets Manager, now: its secret names the slot (orders_app or orders_app_alt) it does not name yet; the other keeps the previous credential until the next rotation",
        "",
      ].join("\n"),
    );
  });

  it("resumes a pending rotation instead of starting another", () => {
    const file = stackFile(
      "pending",
      STACK_FILE.replace('rotatedAt: "2026-12-01T10:00:00Z" }', 'rotatedAt: "2026-12-01T10:00:00Z", pending: true }'),
    );
    const r = rotate(file, "--plan", "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      resuming: true,
      logins: [{ service: "profile", login: "app", generation: 1, role: "profile_app_alt" }],
    });
  });
});

describe("rotate refuses before anything is applied", () => {
  it.each([
    [["--service", "nope"], "db-platform rotate: --service nope: no such service (payments, profile)\n"],
    [["--login", "nope"], "db-platform rotate: --login nope: no such login in the stack (logins: app, readonly, migrator, reporter)\n"],
    [
      ["--service", "payments", "--login", "reporter"],
      "db-platform rotate: --login reporter: no such login of service payments (logins: app, readonly, migrator)\n",
    ],
  ])("%j", (args, message) => {
    const file = stackFile("refused");
    const r = rotate(file, ...args);
    expect(r.stderr).toBe(message);
    expect(r.code).toBe(2);
    expect(fs.readFileSync(file, "utf8")).toBe(STACK_FILE);
  });

  it("a service in a move", () => {
    const text = STACK_FILE.replace(
      "payments: { server: local, isolation: schema, database: platform }",
      "payments: { server: local, isolation: schema, database: platform, move: { to: { server: local, isolation: database }, phase: copy } }",
    );
    const file = stackFile("moving", text);
    const r = rotate(file, "--service", "payments");
    expect(r.stderr).toContain(
      "service payments is moving (services.<name>.move): finish the move (db-platform move apply) before rotating its logins",
    );
    expect(r.code).toBe(2);
    expect(fs.readFileSync(file, "utf8")).toBe(text);
  });

  it("a rotation the stack's validation refuses: the stack file as it was", () => {
    const text = STACK_FILE.replace("reporter: { read", "app_alt: { read");
    const file = stackFile(
      "taken",
      text.replace('credentials: { app: { generation: 1, rotatedAt: "2026-12-01T10:00:00Z" } }', "rotation: 90d"),
    );
    const before = fs.readFileSync(file, "utf8");
    const r = rotate(file, "--service", "profile", "--login", "app");
    expect(r.stderr).toContain("the rotation is refused, nothing changed:");
    expect(r.stderr).toContain(
      "services.profile.credentials.app: its alternate login for rotation, profile_app_alt, is the role of roles.app_alt: rename that role",
    );
    expect(r.code).toBe(2);
    expect(fs.readFileSync(file, "utf8")).toBe(before);
  });
});
