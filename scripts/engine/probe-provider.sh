#!/usr/bin/env bash
# Asks the Go module proxy for the modules the PostgreSQL provider plugin would be built from,
# at the versions @pulumi/postgresql pins, and prints each answer. Exit 0 when all are served
# (the provider can then be built), 1 otherwise. Usage: scripts/engine/probe-provider.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(node -p "require('$root/node_modules/@pulumi/postgresql/package.json').version")
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%,*}
missing=0
probe() {
  local module=$1 ver=$2 code
  code=$(curl -s -o /dev/null -w '%{http_code}' "$proxy/$module/@v/$ver.info")
  printf '%-72s %-22s %s\n' "$module" "$ver" "$([ "$code" = 200 ] && echo served || echo "refused (HTTP $code)")"
  [ "$code" = 200 ] || missing=1
}
echo "@pulumi/postgresql $version needs:"
probe github.com/pulumi/pulumi-postgresql/provider/v3 "v$version"
# The provider's upstream, under its declared and its GitHub path (the latest tags).
for v in v1.26.0 v1.25.0; do
  probe github.com/cyrilgdn/terraform-provider-postgresql "$v"
  probe github.com/terraform-providers/terraform-provider-postgresql "$v"
done
probe github.com/pulumi/pulumi-terraform-bridge/v3 v3.134.0
exit "$missing"
