# Sourced by the scripts that fetch or build something slow on a first run.
# with_progress <what> <usual time> <command…>: runs the command (a function too, with `set -e`
# in force inside it) and, while it runs, prints a line to stderr every 30 s with the time so far
# against the usual time, so a long first run never looks hung. Silent when $quiet is "true".
# Returns the command's status.
with_progress() {
  local what=$1 usual=$2 started rc=0 job ticker=""
  shift 2
  started=$(date +%s)
  # In the background, not in an `||` list, so that `set -e` stops the command at its first error.
  "$@" &
  job=$!
  if [ "${quiet:-false}" != true ]; then
    (while sleep 30; do echo "$what: $(($(date +%s) - started)) s so far (usually $usual)" >&2; done) &
    ticker=$!
  fi
  wait "$job" || rc=$?
  if [ -n "$ticker" ]; then
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
  fi
  [ "$rc" = 0 ] && [ "${quiet:-false}" != true ] && echo "$what: done in $(($(date +%s) - started)) s" >&2
  return "$rc"
}
