/**
 * `db-platform move` without a server: the plan (offline, from the stack file alone) and the
 * refusals that come before anything is read or written (exit 2, the stack file unchanged). The
 * move itself through the real engine, with failures injected at each step:
 * test/engine/move.engine.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli";

let dir: string;

const STACK_FILE = `config:
  db-platform:environment: dev
  db-platform:servers:
    local: { hosting: local, version: "16", port: 54329 }
    second: { hosting: local, version: "16", port: 54339 }
  db-platform:adminPasswords:
    local: { secure: v1:abc }
    second: { secure: v1:def }
  db-platform:services:
    # the shared database's tenants
    payments: { server: local, isolation: schema, database: platform }
    profile: { server: local, isolation: schema, database: platform }
`;

function stackFile(name: string, text = STACK_FILE): string {
  const file = path.join(dir, `Pulumi.${name}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

/** The stack file with payments' entry replaced (a move in some phase). */
const withPayments = (entry: string) =>
  STACK_FILE.replace("payments: { server: local, isolation: schema, database: platform }", `payments: ${entry}`);
/** Payments (a schema in platform) on its way to a database of its own, in a phase. */
const movingToDatabase = (phase: string) =>
  withPayments(
    `{ server: local, isolation: schema, database: platform, move: { to: { server: local, isolation: database }, phase: ${phase} } }`,
  );

const move = (file: string, ...args: string[]) => runCli(["move", ...args, "--config", file]);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "db-platform-move-"));
  // A project folder of its own: nothing here reaches the repository's stacks.
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: db-platform\nruntime: nodejs\n");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("move plan", () => {
  it("lists the steps in order, with the downtime window, from the stack file alone", () => {
    const file = stackFile("plan");
    const r = move(file, "plan", "--service", "payments", "--to", "database", "--server", "second");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "move service payments of stack plan\n  from schemas in database platform on server local\n  to   database payments_db on server second\n",
    );
    expect(r.stdout).toContain(
      "3. up (move phase copy): create database payments_db on server second with payments's schemas, grants and default privileges, and its roles on server second",
    );
    expect(r.stdout).toContain(
      "6. with --confirm only: up (move phase retire): drop schemas in database platform on server local and payments's roles on server local",
    );
    const json = JSON.parse(move(file, "plan", "--service", "payments", "--to", "database", "--json").stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      service: "payments",
      phase: "start",
      to: "database payments_db on server local",
      confirmation: "plan/payments",
    });
    expect(fs.readFileSync(file, "utf8")).toBe(STACK_FILE);
  });

  it("from where a move stands: only the steps still to run", () => {
    const file = stackFile("serving", movingToDatabase("serve"));
    const r = move(file, "plan", "--service", "payments");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("(in progress: phase serve)");
    expect(r.stdout).toMatch(/steps:\n {2}1\. with --confirm only[^\n]*\n {2}2\. declare payments at database payments_db on server local/);
  });
});

describe("a move that has ended (phase done)", () => {
  it("plans only its last up; cannot be rolled back", () => {
    const file = stackFile(
      "arrived",
      withPayments("{ server: local, move: { to: { server: local, isolation: database, database: payments_db }, phase: done } }"),
    );
    const r = move(file, "plan", "--service", "payments");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /\(in progress: phase done\)[\s\S]*steps:\n {2}1\. declare payments at database payments_db on server local in the stack file \(move phase done\)[^\n]*\ndowntime/,
    );
    const back = move(file, "rollback", "--service", "payments");
    expect(back.code).toBe(2);
    expect(back.stderr).toContain("service payments's move has ended (phase done): finish it with move apply");
  });

  it("must name where the service is declared", () => {
    const file = stackFile(
      "arrivedwrong",
      withPayments("{ server: local, move: { to: { server: second, isolation: database }, phase: done } }"),
    );
    const r = move(file, "plan", "--service", "payments");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("services.payments.move.to: phase done: the service must be declared where it moved");
  });
});

describe("refused before anything is touched (exit 2, the stack file unchanged)", () => {
  it.each([
    [["plan", "--service", "payments"], "service payments is not moving: give --to database|schema"],
    [["plan", "--service", "payments", "--to", "somewhere"], "--to somewhere: expected database or schema"],
    [["plan", "--service", "payments", "--database", "x"], "--database and --server go with --to database|schema"],
    [["plan", "--service", "nobody", "--to", "database"], "--service nobody: no such service (payments, profile)"],
    [
      ["plan", "--service", "payments", "--to", "schema", "--database", "platform"],
      "services.payments.move.to: is where service payments already is",
    ],
    [
      ["plan", "--service", "payments", "--to", "database", "--server", "third"],
      'services.payments.move.to.server: unknown server "third" (known: local, second)',
    ],
    [["plan", "--service", "payments", "--to", "schema"], "services.payments.move.to.database: required when isolation is schema"],
    [["rollback", "--service", "payments"], "service payments is not moving: nothing to roll back"],
  ])("%j", (args, message) => {
    const file = stackFile("refused");
    const r = move(file, ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(fs.readFileSync(file, "utf8")).toBe(STACK_FILE);
  });

  it.each([
    [
      "a service whose entry other entries share through a YAML anchor",
      STACK_FILE.replace(
        "    payments: { server: local, isolation: schema, database: platform }\n    profile: { server: local, isolation: schema, database: platform }",
        "    payments: &tenant { server: local, isolation: schema, database: platform }\n    profile: *tenant",
      ),
      ["--to", "database"],
      "services.payments is the YAML anchor &tenant other entries refer to; write those entries out in full first",
    ],
    [
      "retiring with a confirmation that names another service",
      movingToDatabase("serve"),
      ["--confirm", "refused/profile"],
      "--confirm refused/profile does not name the service: retiring its old place takes --confirm refused/payments",
    ],
    [
      "a move elsewhere while one is in progress",
      movingToDatabase("copy"),
      ["--to", "database", "--server", "second"],
      "service payments is already moving to database payments_db on server local (phase copy): finish it with move apply, or undo it with move rollback",
    ],
  ])("move apply: %s", (_what, text, args, message) => {
    const file = stackFile("refused", text);
    const r = move(file, "apply", "--service", "payments", ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(fs.readFileSync(file, "utf8")).toBe(text);
  });
});
