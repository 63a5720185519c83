/**
 * A CloudWatch endpoint on 127.0.0.1 for tests of what the project publishes: it answers
 * PutMetricData as CloudWatch does (the SDK's JSON 1.0 protocol) and records each request, or
 * refuses them with a CloudWatch error when told to. Point the SDK at it with
 * AWS_ENDPOINT_URL_CLOUDWATCH.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface PutMetricDataRequest {
  readonly Namespace: string;
  readonly MetricData: ReadonlyArray<{
    MetricName: string;
    Dimensions: Array<{ Name: string; Value: string }>;
    Value: number;
    Unit: string;
    Timestamp: number | string;
  }>;
}

export interface CloudWatchEndpoint {
  readonly url: string;
  readonly requests: PutMetricDataRequest[];
  /** Refuse every request from now on (HTTP 400, InvalidParameterValue). */
  refuse(): void;
  close(): Promise<void>;
}

export async function startCloudWatchEndpoint(): Promise<CloudWatchEndpoint> {
  const requests: PutMetricDataRequest[] = [];
  let refusing = false;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      res.setHeader("content-type", "application/x-amz-json-1.0");
      if (!target.endsWith(".PutMetricData")) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: "UnknownOperationException", message: `not PutMetricData: ${target}` }));
        return;
      }
      if (refusing) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: "InvalidParameterValue", message: "refused by the test" }));
        return;
      }
      requests.push(JSON.parse(body) as PutMetricDataRequest);
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    refuse: () => (refusing = true),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the SDK needs besides the endpoint: a region and (any) credentials. */
export const FAKE_AWS_ENV = { AWS_REGION: "eu-central-1", AWS_ACCESS_KEY_ID: "AKIATEST", AWS_SECRET_ACCESS_KEY: "test-secret" };
