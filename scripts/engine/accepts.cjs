// Whether a Pulumi CLI version (the output of `pulumi version`, argv[2]) is one this project
// accepts: the SDK's own Automation API check (parseAndValidatePulumiVersion, the one that
// PulumiCommand.get runs) with the SDK's own version as the minimum, so the same major and that
// release or newer. Exit 0 when accepted; otherwise exit 1 with the SDK's reason on stdout.
// Usage: node scripts/engine/accepts.cjs v3.240.0
const { parseAndValidatePulumiVersion } = require("@pulumi/pulumi/automation/cmd");
const { SemVer } = require("semver");
const { version } = require("@pulumi/pulumi/package.json");

try {
  parseAndValidatePulumiVersion(new SemVer(version), String(process.argv[2] ?? "").trim(), false);
} catch (e) {
  console.log(e.message);
  process.exit(1);
}
