export * from "./model";
export * from "./naming";
export * from "./problems";
export * from "./rotation";
export { loadSpec, validateConfig, type ConfigInput, type ValidationResult } from "./validate";
export {
  HOSTING_KINDS,
  LOCAL_POSTGRES_VERSIONS,
  POOL_MODES,
  RDS_UPGRADE_PHASES,
  SUPPORTED_VERSIONS,
  type HostingKind,
  type PoolMode,
  type PostgresVersion,
  type RdsUpgradePhase,
} from "./schema";
