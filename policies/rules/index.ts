import type { Rule } from "../engine/types";
import { BACKUP_RULES } from "./backups";
import { BASELINE_RULES } from "./baseline";
import { DATA_RULES } from "./data";
import { MONITORING_RULES } from "./monitoring";
import { POSTGRESQL_RULES } from "./postgresql";
import { PROXY_RULES } from "./proxy";
import { RDS_RULES } from "./rds";
import { ROTATION_RULES } from "./rotation";
import { SCHEMA_RULES } from "./schemas";
import { STACK_RULES } from "./stack";

export { BACKUP_RULES, BASELINE_RULES, DATA_RULES, POSTGRESQL_RULES, PROXY_RULES, RDS_RULES, ROTATION_RULES, SCHEMA_RULES, STACK_RULES };

/** Every rule of the pack, isolation first. */
export const ALL_RULES: readonly Rule[] = [
  ...POSTGRESQL_RULES,
  ...ROTATION_RULES,
  ...SCHEMA_RULES,
  ...MONITORING_RULES,
  ...STACK_RULES,
  ...DATA_RULES,
  ...RDS_RULES,
  ...PROXY_RULES,
  ...BACKUP_RULES,
  ...BASELINE_RULES,
];
