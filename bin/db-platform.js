#!/usr/bin/env node
// The db-platform CLI. TypeScript sources run through tsx, so there is no build step.
require("tsx/cjs");
const { main } = require("../cli/main.ts");

// Exit only once stdout and stderr are flushed: writes to a pipe are asynchronous, and a plain
// process.exit() would cut long output (synth --json) at the pipe buffer size.
function exit(code) {
  process.exitCode = code;
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

main(process.argv.slice(2)).then(exit, (e) => {
  process.stderr.write(`db-platform: ${e instanceof Error ? e.message : String(e)}\n`);
  exit(2);
});
