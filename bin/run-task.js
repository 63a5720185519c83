// Shared by the runner image's entrypoints (backup-task.js, stats-task.js): runs a task with the
// process's environment and output streams and exits with its code once the output is flushed;
// an unexpected error is printed whole and exits 2.
module.exports = function runTask(name, task) {
  function exit(code) {
    process.exitCode = code;
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  }
  task(
    process.env,
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  ).then(exit, (e) => {
    process.stderr.write(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    exit(2);
  });
};
