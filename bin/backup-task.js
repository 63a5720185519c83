#!/usr/bin/env node
// The backup runner's entrypoint in its container (docker/backup-runner.Dockerfile): backs up one
// server's services of one stack, named by DB_PLATFORM_STACK and DB_PLATFORM_SERVER
// (operations/backup/task.ts). TypeScript sources run through tsx, so there is no build step.
require("tsx/cjs");
const { backupTask } = require("../operations/backup/task.ts");
require("./run-task.js")("db-platform backup task", backupTask);
