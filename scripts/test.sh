#!/usr/bin/env bash
# `npm test`: everything the project checks, on a machine with nothing installed beforehand but
# Node, npm, Go and Python. What the tests need is fetched once and cached:
#   PostgreSQL 15-18 (server and client tools: scripts/postgres/install.sh), PgBouncer
#   (scripts/pooler/pgbouncer.sh: installed, else pinned Debian packages), Chromium (Debian, for
#   the audit's HTML report), MinIO (scripts/s3/minio.sh), the Python clients of the client suite
#   (scripts/clients/venv.sh: a virtual environment from PyPI), moto (the local AWS API emulator the
#   Secrets Manager rotation test talks to: another venv, test/aws/requirements.txt), barman-cloud
#   (local servers' continuous archive: a venv of scripts/archive/requirements.txt), the Pulumi CLI
#   (scripts/engine/bootstrap.sh) and actionlint (Go module proxy).
# Then: type-check, lint, format, offline stack checks, unit and mock tests, the policy pack in
# the real engine, and the end-to-end suites (isolation, and the service teams' migration tools
# and ORMs) through the real engine and provider
# plugins (reported skipped, with the reason and the install commands, where the plugins are
# missing). Ends with one line: `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PULUMI_SKIP_UPDATE_CHECK=true

step() { printf '\n=== %s\n' "$*"; }

step "prerequisites (fetched once, cached)"
packages=()
[ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1 || packages+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
if [ "${#packages[@]}" -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "test: missing ${packages[*]}: apt-get install ${packages[*]} as root" >&2; exit 2; }
    as_root=(sudo)
  fi
  echo "installing ${packages[*]} from Debian"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
for major in 15 16 17 18; do echo "PostgreSQL $major: $(bash scripts/postgres/install.sh "$major")"; done
echo "MinIO: $(bash scripts/s3/minio.sh --quiet)"
echo "PgBouncer: $(bash scripts/pooler/pgbouncer.sh --quiet)"
echo "Python clients (Alembic, SQLAlchemy, psycopg, Django): $(bash scripts/clients/venv.sh)"
echo "AWS API emulator for the rotation function (moto): $(bash scripts/clients/venv.sh test/aws/requirements.txt)"
echo "barman-cloud (local servers' WAL archive and base backups): $(bash scripts/clients/venv.sh scripts/archive/requirements.txt)"
echo "Pulumi CLI: $(bash scripts/engine/bootstrap.sh --quiet)/pulumi"
tools="${XDG_CACHE_HOME:-$HOME/.cache}/db-platform/tools"
[ -x "$tools/actionlint" ] || GOBIN="$tools" go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
PATH="$(bash scripts/engine/bootstrap.sh --quiet):$PATH"
export PATH
# The provider plugins come the normal way; where they cannot be installed, the suites that need
# them say so and are reported skipped.
installed=$(pulumi plugin ls --json)
for pkg in postgresql random; do
  version=$(node -p "require('@pulumi/$pkg/package.json').version")
  if node -e 'process.exit(JSON.parse(process.argv[1] || "[]").some((p) => p.kind === "resource" && p.name === process.argv[2] && p.version === process.argv[3]) ? 0 : 1)' "$installed" "$pkg" "$version"; then
    echo "plugin $pkg v$version: installed"
  elif pulumi plugin install resource "$pkg" "$version" >/dev/null 2>&1; then
    echo "plugin $pkg v$version: installed now"
  else
    echo "plugin $pkg v$version: cannot be installed here (pulumi plugin install resource $pkg $version failed): the suites that need it are reported skipped"
  fi
done

step "type-check, lint, format"
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check

step "stacks and examples, offline: validate, synthesize, policy check"
for stack in dev prod; do npx db-platform validate --stack "$stack"; done
start=$(date +%s%N)
npx db-platform synth --stack prod --json > "${TMPDIR:-/tmp}/db-platform-synth-prod.json"
echo "synth prod: $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).length)' "${TMPDIR:-/tmp}/db-platform-synth-prod.json") resources in $(( ($(date +%s%N) - start) / 1000000 )) ms"
for stack in dev prod; do npx db-platform policy check --stack "$stack"; done
for file in examples/*/Pulumi.*.yaml; do echo "$file"; npx db-platform policy check --config "$file"; done
"$tools/actionlint" .github/workflows/*.yml && echo "actionlint: ok"

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0
suite() {
  local name=$1 config=$2
  step "$name"
  npx vitest run --config "$config" --reporter=default --reporter=json --outputFile.json="$reports/$name.json" || status=1
}
suite "unit, mock and real-PostgreSQL tests" vitest.config.mts
suite "the policy pack and local servers in the real engine" vitest.engine.config.mts
suite "end to end: isolation and the service teams' tools through the real engine and provider plugins, PostgreSQL 15-18" vitest.e2e.config.mts

step "summary"
node -e '
  const fs = require("fs");
  const dir = process.argv[1];
  const rs = fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8")));
  const sum = (k) => rs.reduce((n, r) => n + r[k], 0);
  // A file that fails to load fails no single test; count it as a failure all the same.
  const brokenFiles = (r) => r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
  const failed = rs.reduce((n, r) => n + r.numFailedTests + brokenFiles(r), 0);
  // Each failure in one line, in the order it ran, so the end of a long log says what broke first.
  for (const r of rs)
    for (const f of r.testResults)
      for (const a of f.assertionResults.filter((t) => t.status === "failed"))
        console.log(`failed: ${f.name.replace(process.cwd() + "/", "")} > ${a.fullName}: ${(a.failureMessages[0] ?? "").split("\n")[0].slice(0, 300)}`);
  console.log(`${sum("numPassedTests")} passed, ${failed} failed, ${sum("numPendingTests")} skipped`);
' "$reports"
exit "$status"
