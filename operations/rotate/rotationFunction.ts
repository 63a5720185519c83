/**
 * The Lambda entry of a server's login rotation function (components/servers/loginRotation.ts
 * bundles this file with its imports into the function's code): Secrets Manager invokes it once
 * per rotation step (operations/rotate/secretsManager.ts).
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type RotationEvent, rotationStep, rotationTargetFromEnv } from "./secretsManager";

const client = new SecretsManagerClient({});

export async function handler(event: RotationEvent): Promise<void> {
  console.log(`rotation of ${event.SecretId}: ${event.Step} (version ${event.ClientRequestToken})`);
  await rotationStep(event, rotationTargetFromEnv(process.env), client);
}
