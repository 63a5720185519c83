// The db-platform program: composition only. Everything is declared in the stack config
// (Pulumi.<stack>.yaml, namespace db-platform:) and built by components/.
import { runProgram } from "./components/program";
import { configFromPulumi } from "./components/spec/pulumiConfig";

const outputs = runProgram(configFromPulumi());

export const environment = outputs.environment;
/** Per server: hosting, primary address, replica addresses and which replica is the reader. */
export const servers = outputs.servers;
/** Per service: server, database, schemas, connection URLs (secret), where each URL points, and on RDS secret ARNs. */
export const services = outputs.services;
/** With `backups.storage: s3`: the backup bucket's name. */
export const backupBucket = outputs.backupBucket;
/** Per server: the monitoring login's URL (secret), what `db-platform stats` connects with (docs/stats.md). */
export const monitoring = outputs.monitoring;
