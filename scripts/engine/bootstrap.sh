#!/usr/bin/env bash
# Finds the Pulumi CLI that db-platform runs, in this order, and prints the directory to put
# first on PATH (it holds `pulumi` and the policy-pack launcher):
#   1. $DB_PLATFORM_PULUMI: a path to a `pulumi` binary, or `build` to skip 2 and 3;
#   2. `pulumi` on PATH, installed the normal way (get.pulumi.com, Homebrew, a package manager),
#      when its version is one this project accepts: v<SDK> or newer within the same major, the
#      SDK's own Automation API check with the SDK's version as the minimum (accepts.cjs);
#   3. a CLI this script built before (cached by version, outside the repository);
#   4. the last resort, with Go: v<SDK> built from the Go modules github.com/pulumi/pulumi/
#      {pkg,sdk}/v3 through the Go module proxy (once, about 3-4 minutes on 2 cores).
# Beside it, `pulumi-analyzer-policy-nodejs`, the engine's documented fallback launcher for
# Node.js policy packs (used when no Node.js language host is installed). Programs run through
# the Automation API's inline mode, so no language host is needed.
# Usage: scripts/engine/bootstrap.sh [--quiet | --plan]   (--quiet: errors only; --plan: say
# what a run would fetch or build, in one line, or nothing, and do nothing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
quiet=false plan=false
case ${1:-} in --quiet) quiet=true ;; --plan) plan=true ;; esac
log() { $quiet || echo "engine: $*" >&2; }
fail() {
  echo "engine: $*" >&2
  exit 1
}
# shellcheck source=../lib/progress.sh
. "$root/scripts/lib/progress.sh"

version=$(node -p "require('$root/node_modules/@pulumi/pulumi/package.json').version")
cache=${DB_PLATFORM_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/engine}
built="$cache/pulumi-v$version/bin"
install_hint="curl -fsSL https://get.pulumi.com | sh, or brew install pulumi/tap/pulumi"

# The first `pulumi` on PATH that is not one of this cache's own links or builds.
installed_pulumi() {
  local candidate
  while IFS= read -r candidate; do
    case $candidate in "$cache"/*) continue ;; esac
    echo "$candidate"
    return
  done < <(type -ap pulumi 2>/dev/null || true)
}

# The version a binary reports, or nothing when it does not run.
cli_version() { PULUMI_SKIP_UPDATE_CHECK=true "$1" version 2>/dev/null | head -n 1 || true; }

# Whether an installed CLI is accepted: 0 when it is; with `fallback` and a CLI built here before,
# 1 after a note; otherwise a one-line error saying what was found and what to do.
accepted() {
  local binary=$1 found reason
  found=$(cli_version "$binary")
  [ -n "$found" ] || fail "$binary does not run (\`$binary version\` failed); reinstall it ($install_hint) or set DB_PLATFORM_PULUMI=build"
  reason=$(cd "$root" && node scripts/engine/accepts.cjs "$found") && return 0
  if [ "${2:-}" = fallback ] && [ -x "$built/pulumi" ]; then
    log "ignoring $binary ($found: $reason); using the CLI built here before"
    return 1
  fi
  fail "$binary is Pulumi $found, not accepted: $reason Install v$version or newer within v${version%%.*} ($install_hint), or set DB_PLATFORM_PULUMI=build to build v$version from Go modules (about 4 min)"
}

# Links an accepted installed CLI into the cache's `installed/bin` (re-checked on every run, so
# an upgrade or a removal is seen) and prints that folder.
link_installed() {
  local binary link="$cache/installed/bin"
  binary=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
  mkdir -p "$link"
  if [ "$(readlink "$link/pulumi" 2>/dev/null || true)" != "$binary" ]; then
    ln -sfn "$binary" "$link/pulumi"
    log "using $binary ($(cli_version "$binary"); this project accepts v$version or newer within v${version%%.*})"
  fi
  echo "$link"
}

build() {
  command -v go >/dev/null 2>&1 || fail "no Pulumi CLI found: install it ($install_hint; v$version or newer within v${version%%.*}), or install Go to have it built here"
  log "no accepted Pulumi CLI on PATH (the normal install: $install_hint)"
  log "building the Pulumi CLI v$version from Go modules instead, once: about 4 min on 2 cores, ~3 GiB of Go caches"
  with_progress "engine: building the Pulumi CLI v$version" "3-4 min cold, seconds with warm Go caches" build_cli >&2
}

# The Go build itself: modules through the proxy, into the cache by version.
build_cli() {
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
  mkdir -p "$built"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags osusergo,netgo \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
    -o "$built/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  mv "$built/pulumi.tmp" "$built/pulumi"
}

# Prints which CLI to run: "installed <path>", "built" (here before) or "build".
decide() {
  case ${DB_PLATFORM_PULUMI:-} in
    build) ;;
    "")
      local candidate
      candidate=$(installed_pulumi)
      if [ -n "$candidate" ] && accepted "$candidate" fallback; then
        echo "installed $candidate"
        return
      fi
      ;;
    *)
      [ -f "$DB_PLATFORM_PULUMI" ] && [ -x "$DB_PLATFORM_PULUMI" ] || fail "DB_PLATFORM_PULUMI=$DB_PLATFORM_PULUMI is not an executable file: point it at a Pulumi CLI v$version or newer, set it to build, or unset it"
      accepted "$DB_PLATFORM_PULUMI"
      echo "installed $DB_PLATFORM_PULUMI"
      return
      ;;
  esac
  [ -x "$built/pulumi" ] && echo built || echo build
}

decision=$(decide)
if $plan; then
  [ "$decision" = build ] && echo "building the Pulumi CLI v$version from Go modules (about 4 min; an installed pulumi v$version or newer skips it)"
  exit 0
fi
case $decision in
  "installed "*) bin=$(link_installed "${decision#installed }") ;;
  build)
    build
    bin=$built
    ;;
  *) bin=$built ;;
esac
cat > "$bin/pulumi-analyzer-policy-nodejs" <<'SHIM'
#!/bin/sh
# Started by the Pulumi engine in the policy pack's directory with <engine-address> <pack-dir>
# [options]; runs the pack with the @pulumi/pulumi that the pack resolves.
exec node "$(node -p 'require.resolve("@pulumi/pulumi/cmd/run-policy-pack")')" "$@"
SHIM
chmod +x "$bin/pulumi-analyzer-policy-nodejs"
echo "$bin"
