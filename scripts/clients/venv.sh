#!/usr/bin/env bash
# The Python clients that service teams run (Alembic with SQLAlchemy on psycopg, Django) for the
# client suite: a virtual environment made once per requirements file (every package pinned in
# test/clients/python/requirements.txt) and cached in ~/.cache/db-platform/clients (as root
# /var/cache/db-platform/clients; or $DB_PLATFORM_CLIENTS_CACHE). Prints the environment's bin folder.
#   venv.sh [--quiet | --plan] [requirements file]   (--plan: one line when it would be made, else nothing; another file: another environment, e.g. the AWS
#   API emulator's, test/aws/requirements.txt, or barman-cloud's, scripts/archive/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
quiet=
plan=
[ "${1:-}" = --quiet ] && { quiet=1; shift; }
[ "${1:-}" = --plan ] && { plan=1; shift; }
requirements=${1:-test/clients/python/requirements.txt}
digest=$(sha256sum "$requirements" | cut -c1-12)
# As root the local servers run as the `postgres` user, and their archive_command runs barman-cloud
# from one of these environments: made where that user can read, with the system's interpreter
# (one under root's home, pyenv's for example, is out of its reach).
python=python3
if [ "$(id -u)" = 0 ]; then
  default_cache=/var/cache/db-platform
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import venv, ensurepip" 2>/dev/null && python=/usr/bin/python3
else
  default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/db-platform
fi
cache="${DB_PLATFORM_CLIENTS_CACHE:-$default_cache/clients}"
venv="$cache/python-$digest"
# A virtual environment cannot be moved once made (its scripts name their interpreter by path):
# it is made in place, and only a finished one carries the marker.
if [ -n "$plan" ]; then
  [ -f "$venv/.complete" ] || echo "creating a Python environment from PyPI for $requirements (about 10 s)"
  exit 0
fi
if [ ! -f "$venv/.complete" ]; then
  [ -n "$quiet" ] || echo "clients: creating the Python virtual environment $venv (once, about 30 s)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  # psycopg2-binary provides the `psycopg2` module that a package may require by its source name.
  if ! problems=$("$venv/bin/python" -m pip check 2>&1); then
    problems=$(grep -v "requires psycopg2, which is not installed" <<< "$problems" || true)
    if [ -n "$problems" ] || ! "$venv/bin/python" -c "import psycopg2" 2>/dev/null; then
      echo "${problems:-psycopg2 is required and cannot be imported}" >&2
      exit 1
    fi
  fi
  touch "$venv/.complete"
fi
echo "$venv/bin"
