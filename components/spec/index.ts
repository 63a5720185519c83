export * from "./model";
export * from "./naming";
export * from "./problems";
export { loadSpec, validateConfig, type ConfigInput, type ValidationResult } from "./validate";
export { HOSTING_KINDS, SUPPORTED_VERSIONS, type HostingKind, type PostgresVersion } from "./schema";
