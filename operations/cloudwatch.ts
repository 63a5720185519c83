/**
 * Publishing metric data to CloudWatch: what the backup runner and the per-service metrics
 * publisher send after each run (the stack's alarms watch them). The endpoint is the SDK's
 * (AWS_ENDPOINT_URL_CLOUDWATCH overrides it).
 */
import { CloudWatchClient, type MetricDatum, PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";

export type { MetricDatum } from "@aws-sdk/client-cloudwatch";

/** Publish in batches of 1,000 data points (PutMetricData's limit). */
export async function publishMetrics(namespace: string, data: readonly MetricDatum[], region?: string): Promise<void> {
  const client = new CloudWatchClient({ region, maxAttempts: 5 });
  try {
    for (let i = 0; i < data.length; i += 1000) {
      await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: data.slice(i, i + 1000) }));
    }
  } finally {
    client.destroy();
  }
}
