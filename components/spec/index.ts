export * from "./model";
export * from "./naming";
export * from "./problems";
export { loadSpec, validateConfig, type ConfigInput, type ValidationResult } from "./validate";
export { HOSTING_KINDS, LOCAL_POSTGRES_VERSIONS, SUPPORTED_VERSIONS, type HostingKind, type PostgresVersion } from "./schema";
