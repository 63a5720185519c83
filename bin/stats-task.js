#!/usr/bin/env node
// The per-service metrics publisher's entrypoint in the backup runner's image (its task definition
// overrides the image's entrypoint with it): measures one server's services of one stack, named by
// DB_PLATFORM_STACK and DB_PLATFORM_SERVER, and publishes their metrics to CloudWatch
// (operations/stats/task.ts). TypeScript sources run through tsx, so there is no build step.
require("tsx/cjs");
const { statsTask } = require("../operations/stats/task.ts");
require("./run-task.js")("db-platform stats task", statsTask);
