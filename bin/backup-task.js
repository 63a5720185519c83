#!/usr/bin/env node
// The backup runner's entrypoint in its container (docker/backup-runner.Dockerfile): backs up one
// server's services of one stack, named by DB_PLATFORM_STACK and DB_PLATFORM_SERVER
// (operations/backup/task.ts). TypeScript sources run through tsx, so there is no build step.
require("tsx/cjs");
const { backupTask } = require("../operations/backup/task.ts");

function exit(code) {
  process.exitCode = code;
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

backupTask(
  process.env,
  (s) => process.stdout.write(s),
  (s) => process.stderr.write(s),
).then(exit, (e) => {
  process.stderr.write(`db-platform backup task: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  exit(2);
});
