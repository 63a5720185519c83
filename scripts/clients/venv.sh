#!/usr/bin/env bash
# The Python clients that service teams run (Alembic with SQLAlchemy on psycopg, Django) for the
# client suite: a virtual environment made once per requirements file (every package pinned in
# test/clients/python/requirements.txt) and cached in ~/.cache/db-platform/clients (or
# $DB_PLATFORM_CLIENTS_CACHE). Prints the environment's bin folder.
#   venv.sh [--quiet] [requirements file]   (another file: another environment, e.g. the AWS
#   API emulator's, test/aws/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
quiet=
[ "${1:-}" = --quiet ] && { quiet=1; shift; }
requirements=${1:-test/clients/python/requirements.txt}
digest=$(sha256sum "$requirements" | cut -c1-12)
cache="${DB_PLATFORM_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/clients}"
venv="$cache/python-$digest"
# A virtual environment cannot be moved once made (its scripts name their interpreter by path):
# it is made in place, and only a finished one carries the marker.
if [ ! -f "$venv/.complete" ]; then
  [ -n "$quiet" ] || echo "clients: creating the Python virtual environment $venv (once, about 30 s)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  "$venv/bin/python" -m pip check >/dev/null
  touch "$venv/.complete"
fi
echo "$venv/bin"
