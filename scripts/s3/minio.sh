#!/usr/bin/env bash
# The S3-compatible server the dev stack's backups go to, MinIO, and prints the path of its
# binary. In this order:
#   1. $DB_PLATFORM_MINIO: a path to a `minio` binary, or `build` to skip 2 and 3;
#   2. `minio` on PATH, installed the normal way (Homebrew, dl.min.io, a package manager);
#   3. the pinned MinIO this script built before (cached by version, outside the repository);
#   4. the last resort, with Go: the pinned module version built from the Go module proxy
#      (once, about 4-5 minutes on 2 cores; there is no other installer on the test machines).
# An installed or named binary must answer `minio --version`. `--quiet` prints only the path;
# `--plan` says what a run would build, in one line, or nothing, and does nothing.
# MinIO over moto or s3rver: it keeps objects on disk across restarts, and implements multipart
# uploads, versioning and per-part SHA-256 checksums the way S3 does.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
quiet=false plan=false
case ${1:-} in --quiet) quiet=true ;; --plan) plan=true ;; esac
log() { $quiet || echo "minio: $*" >&2; }
fail() {
  echo "minio: $*" >&2
  exit 1
}
# shellcheck source=../lib/progress.sh
. "$root/scripts/lib/progress.sh"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/tools"
bin_dir="$cache/minio-${MINIO_VERSION}"
install_hint="brew install minio/stable/minio, or the binary from https://dl.min.io/server/minio/release/"

checked() {
  local found
  found=$("$1" --version 2>/dev/null | head -n 1) || true
  [ -n "$found" ] || fail "$1 does not run (\`$1 --version\` failed): reinstall it ($install_hint), or set DB_PLATFORM_MINIO=build to build the pinned one"
  echo "$1"
}

case ${DB_PLATFORM_MINIO:-} in
  build) ;;
  "")
    while IFS= read -r candidate; do
      case $candidate in "$cache"/*) continue ;; esac
      path=$(checked "$candidate")
      $plan || echo "$path"
      exit 0
    done < <(type -ap minio 2>/dev/null || true)
    ;;
  *)
    [ -f "$DB_PLATFORM_MINIO" ] && [ -x "$DB_PLATFORM_MINIO" ] || fail "DB_PLATFORM_MINIO=$DB_PLATFORM_MINIO is not an executable file: point it at a minio binary, set it to build, or unset it"
    path=$(checked "$DB_PLATFORM_MINIO")
    $plan || echo "$path"
    exit 0
    ;;
esac

if [ ! -x "$bin_dir/minio" ]; then
  $plan && echo "building MinIO from Go modules (about 5 min; an installed minio skips it)" && exit 0
  command -v go >/dev/null 2>&1 || fail "no MinIO found: install it ($install_hint), or install Go to have the pinned one built here"
  log "no minio on PATH (the normal install: $install_hint)"
  log "building MinIO $MINIO_VERSION from Go modules instead, once: about 5 min on 2 cores"
  rm -rf "$bin_dir.tmp" && mkdir -p "$bin_dir.tmp"
  # Go's own output (a line per module downloaded) goes to a log, shown only when the build fails.
  build_log="$bin_dir.tmp.log"
  go_install() { GOBIN="$bin_dir.tmp" GOFLAGS=-mod=mod go install "$MINIO_MODULE@$MINIO_VERSION" > "$build_log" 2>&1; }
  with_progress "minio: building MinIO" "4-5 min cold" go_install ||
    { tail -n 20 "$build_log" >&2; fail "the MinIO build failed (above; whole log: $build_log)"; }
  rm -rf "$bin_dir" "$build_log" && mv "$bin_dir.tmp" "$bin_dir"
fi
$plan || echo "$bin_dir/minio"
