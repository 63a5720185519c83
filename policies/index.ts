/**
 * The db-platform policy pack: `pulumi preview --policy-pack policies` (with
 * `--policy-pack-config policies/config/<stack>.json` for per-stack enforcement).
 * `db-platform policy check` runs the same rules on exports and synth output.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./pack";

new PolicyPack("db-platform", { enforcementLevel: "mandatory", policies });
