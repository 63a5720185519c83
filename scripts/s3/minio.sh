#!/usr/bin/env bash
# The S3-compatible server the dev stack's backups go to: MinIO, built once from Go modules (the
# module proxy serves it; there is no internet installer here), cached by version, and the path
# of its binary printed. `--quiet` prints only the path.
# MinIO over moto or s3rver: it keeps objects on disk across restarts, and implements multipart
# uploads, versioning and per-part SHA-256 checksums the way S3 does.
set -euo pipefail
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
quiet=false
[ "${1:-}" = "--quiet" ] && quiet=true

bin_dir="${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/tools/minio-${MINIO_VERSION}"
if [ ! -x "$bin_dir/minio" ]; then
  command -v go >/dev/null 2>&1 || { echo "minio.sh: Go is needed to build MinIO ($MINIO_MODULE@$MINIO_VERSION)" >&2; exit 1; }
  $quiet || echo "building MinIO $MINIO_VERSION from Go modules (once; a few minutes)…" >&2
  start=$(date +%s)
  mkdir -p "$bin_dir.tmp"
  GOBIN="$bin_dir.tmp" GOFLAGS=-mod=mod go install "$MINIO_MODULE@$MINIO_VERSION" >&2
  rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir"
  $quiet || echo "MinIO built in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin_dir/minio"
