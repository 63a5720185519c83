#!/usr/bin/env node
// The db-platform CLI. TypeScript sources run through tsx, so there is no build step.
require("tsx/cjs");
const { main } = require("../cli/main.ts");

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`db-platform: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
