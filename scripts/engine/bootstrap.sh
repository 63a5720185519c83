#!/usr/bin/env bash
# Puts the Pulumi engine on this machine without any internet installer:
#   - `pulumi` from PATH when it is the version package.json pins, otherwise built from the
#     Go modules github.com/pulumi/pulumi/{pkg,sdk}/v3 through the Go module proxy, into a
#     cache outside the repository keyed by version (a second run is instant);
#   - `pulumi-analyzer-policy-nodejs`, the engine's documented fallback launcher for Node.js
#     policy packs (used when no Node.js language host is installed).
# Programs run through the Automation API's inline mode, so no language host is needed.
# Prints the directory to put first on PATH. Usage: scripts/engine/bootstrap.sh [--quiet]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
quiet=${1:-}
log() { [ "$quiet" = "--quiet" ] || echo "engine: $*" >&2; }

version=$(node -p "require('$root/node_modules/@pulumi/pulumi/package.json').version")
cache=${DB_PLATFORM_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/engine}
bin="$cache/pulumi-v$version/bin"
mkdir -p "$bin"

if [ ! -x "$bin/pulumi" ]; then
  if command -v pulumi >/dev/null 2>&1 && [ "$(pulumi version 2>/dev/null)" = "v$version" ]; then
    log "using $(command -v pulumi) (v$version)"
    ln -sf "$(command -v pulumi)" "$bin/pulumi"
  else
    command -v go >/dev/null 2>&1 || { echo "engine: Go is required to build the Pulumi CLI v$version" >&2; exit 1; }
    log "building the Pulumi CLI v$version from Go modules (first run only)"
    started=$(date +%s)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cd "$work"
    # pkg/v3 and sdk/v3 carry replace directives; Go ignores a dependency's replaces, so this
    # wrapper module repeats the non-local ones (local ones point inside pulumi's repository).
    cat > go.mod <<GOMOD
module example.local/db-platform-pulumi-cli

go 1.25

require (
	github.com/pulumi/pulumi/pkg/v3 v$version
	github.com/pulumi/pulumi/sdk/v3 v$version
)
GOMOD
    for m in pkg sdk; do
      mod=$(GOFLAGS=-mod=mod go mod download -json "github.com/pulumi/pulumi/$m/v3@v$version" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).GoMod))')
      grep -E '^replace .* => [^.]' "$mod" | grep -v '=> \.\./' >> go.mod || true
    done
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go mod tidy
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags osusergo,netgo \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
      -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    mv "$bin/pulumi.tmp" "$bin/pulumi"
    cd "$root"
    log "built in $(( $(date +%s) - started ))s: $("$bin/pulumi" version)"
  fi
fi

cat > "$bin/pulumi-analyzer-policy-nodejs" <<'SHIM'
#!/bin/sh
# Started by the Pulumi engine in the policy pack's directory with <engine-address> <pack-dir>
# [options]; runs the pack with the @pulumi/pulumi that the pack resolves.
exec node "$(node -p 'require.resolve("@pulumi/pulumi/cmd/run-policy-pack")')" "$@"
SHIM
chmod +x "$bin/pulumi-analyzer-policy-nodejs"
echo "$bin"
