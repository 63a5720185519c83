#!/usr/bin/env bash
# The connection pooler local servers run beside them, PgBouncer, and prints the path of the
# command to run it with. In this order:
#   1. $DB_PLATFORM_PGBOUNCER: a path to a `pgbouncer` binary;
#   2. `pgbouncer` on PATH, installed the normal way (Homebrew, apt, dnf), when it is 1.18 or newer;
#   3. on Debian-family Linux (apt-get): the pinned Debian packages of PgBouncer and the two
#      libraries it needs beyond a base system (scripts/pooler/debs.tsv: name, version, sha256),
#      downloaded once with `apt-get download` (no root: nothing is installed system-wide),
#      unpacked into the cache and run through a wrapper that finds those libraries.
# `--quiet` prints only the path; `--plan` says what a run would fetch, in one line, or nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
quiet=false plan=false
case ${1:-} in --quiet) quiet=true ;; --plan) plan=true ;; esac
log() { $quiet || echo "pgbouncer: $*" >&2; }
fail() {
  echo "pgbouncer: $*" >&2
  exit 1
}
install_hint="brew install pgbouncer, or apt-get install pgbouncer"
MINIMUM="1.18"

# The version a binary reports (`PgBouncer 1.18.0` on its first line), empty when it does not run.
version_of() { "$@" --version 2>/dev/null | sed -n '1s/^PgBouncer \([0-9][0-9.]*\).*/\1/p'; }
new_enough() { [ "$(printf '%s\n%s\n' "$MINIMUM" "$1" | sort -V | head -n 1)" = "$MINIMUM" ]; }

case ${DB_PLATFORM_PGBOUNCER:-} in
  "")
    if found=$(command -v pgbouncer 2>/dev/null); then
      v=$(version_of "$found")
      if [ -n "$v" ] && new_enough "$v"; then
        $plan || echo "$found"
        exit 0
      fi
      log "$found is PgBouncer ${v:-of no version (it does not run)}; db-platform needs $MINIMUM or newer, so the pinned one is used"
    fi
    ;;
  *)
    [ -f "$DB_PLATFORM_PGBOUNCER" ] && [ -x "$DB_PLATFORM_PGBOUNCER" ] ||
      fail "DB_PLATFORM_PGBOUNCER=$DB_PLATFORM_PGBOUNCER is not an executable file: point it at a pgbouncer binary, or unset it"
    v=$(version_of "$DB_PLATFORM_PGBOUNCER")
    [ -n "$v" ] && new_enough "$v" || fail "DB_PLATFORM_PGBOUNCER=$DB_PLATFORM_PGBOUNCER is PgBouncer ${v:-of no version}; $MINIMUM or newer is needed"
    $plan || echo "$DB_PLATFORM_PGBOUNCER"
    exit 0
    ;;
esac

arch=$(dpkg --print-architecture 2>/dev/null || true)
[ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null 2>&1 && [ -n "$arch" ] ||
  fail "no PgBouncer $MINIMUM or newer found: install it ($install_hint), or point DB_PLATFORM_PGBOUNCER at one"
pins="$root/scripts/pooler/debs.tsv"
pinned=$(awk -F'\t' -v a="$arch" '$1 == a' "$pins")
[ -n "$pinned" ] || fail "no pinned PgBouncer packages for $arch in scripts/pooler/debs.tsv: install it ($install_hint)"
pgbouncer_version=$(awk -F'\t' '$2 == "pgbouncer" { print $3 }' <<< "$pinned")
# As root, PgBouncer runs as the `postgres` system user (it refuses root), which cannot enter
# root's home: the packages then live in /var/cache, readable by every user.
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/db-platform; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/db-platform; fi
cache="${DB_PLATFORM_PGBOUNCER_CACHE:-$default_cache/pgbouncer}/${pgbouncer_version}-${arch}"
if [ ! -x "$cache/pgbouncer" ]; then
  $plan && echo "fetching PgBouncer $pgbouncer_version from Debian's packages (~0.5 MB, seconds)" && exit 0
  log "fetching PgBouncer $pgbouncer_version ($arch) from Debian's packages, once (the normal install: $install_hint)"
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp/debs" && chmod 755 "$cache.tmp"
  while IFS=$'\t' read -r _ name version sha256; do
    (cd "$cache.tmp/debs" && apt-get download -qq "$name=$version" 2>/dev/null) ||
      fail "apt-get download $name=$version failed (is Debian's package index reachable? apt-get update)"
    deb=$(ls "$cache.tmp/debs/${name}_"*.deb)
    got=$(sha256sum "$deb" | cut -d' ' -f1)
    [ "$got" = "$sha256" ] || fail "$deb: sha256 $got, pinned $sha256 (scripts/pooler/debs.tsv)"
    dpkg-deb -x "$deb" "$cache.tmp/root"
  done <<< "$pinned"
  libs=$(dirname "$(find "$cache.tmp/root" -name 'libevent-2.1.so.7' | head -n 1)")
  libs=${libs#"$cache.tmp/"}
  cat > "$cache.tmp/pgbouncer" << EOF
#!/bin/sh
here=\$(dirname "\$0")
LD_LIBRARY_PATH="\$here/$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$here/root/usr/sbin/pgbouncer" "\$@"
EOF
  chmod +x "$cache.tmp/pgbouncer"
  v=$(version_of "$cache.tmp/pgbouncer")
  [ "$v" = "${pgbouncer_version%%-*}" ] || fail "the unpacked PgBouncer does not run (\`pgbouncer --version\`: ${v:-nothing}); a library may be missing: $install_hint"
  rm -rf "$cache.tmp/debs" "$cache" && mv "$cache.tmp" "$cache"
fi
$plan || echo "$cache/pgbouncer"
