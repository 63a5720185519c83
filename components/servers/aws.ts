/**
 * AWS building blocks several components share: a rotating customer-managed KMS key the account
 * administers (CloudWatch may use it to publish to encrypted topics), and an encrypted SNS alarm
 * topic with an optional e-mail subscription.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ENDPOINT_TAGS, INITIAL_VERSION_STAGE, LOGIN_TAG, PREVIOUS_SECRET_TAG } from "../spec/rotation";

/** A key statement for one AWS service principal, on this key only, under its conditions. */
export interface KeyGrant {
  readonly sid: string;
  readonly service: pulumi.Input<string>;
  readonly actions: readonly string[];
  readonly condition?: pulumi.Input<Record<string, Record<string, pulumi.Input<string>>>>;
}

export function customerManagedKey(
  name: string,
  id: string,
  description: string,
  accountId: pulumi.Output<string>,
  tags: Record<string, string>,
  opts: pulumi.CustomResourceOptions,
  grants: readonly KeyGrant[] = [],
): aws.kms.Key {
  const policy = pulumi.all([accountId, pulumi.output(grants)]).apply(([account, granted]) =>
    JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Sid: "AccountAdministers", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "kms:*", Resource: "*" },
        {
          Sid: "CloudWatchAlarmsPublishToEncryptedTopic",
          Effect: "Allow",
          Principal: { Service: "cloudwatch.amazonaws.com" },
          Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
          Resource: "*",
        },
        ...granted.map((g) => ({
          Sid: g.sid,
          Effect: "Allow",
          Principal: { Service: g.service },
          Action: [...g.actions],
          Resource: "*",
          ...(g.condition && { Condition: g.condition }),
        })),
      ],
    }),
  );
  const key = new aws.kms.Key(`${name}-key`, { description, enableKeyRotation: true, deletionWindowInDays: 30, policy, tags }, opts);
  new aws.kms.Alias(`${name}-key-alias`, { name: `alias/db-platform/${id}`, targetKeyId: key.keyId }, opts);
  return key;
}

export function alarmTopic(
  name: string,
  id: string,
  key: aws.kms.Key,
  tags: Record<string, string>,
  email: string | undefined,
  opts: pulumi.CustomResourceOptions,
): aws.sns.Topic {
  const topic = new aws.sns.Topic(`${name}-alarms`, { name: `${id}-alarms`, kmsMasterKeyId: key.arn, tags }, opts);
  if (email) new aws.sns.TopicSubscription(`${name}-alarms-email`, { topic: topic.arn, protocol: "email", endpoint: email }, opts);
  return topic;
}

export interface LoginSecretArgs {
  /** The secret's name in Secrets Manager. */
  readonly secretName: string;
  readonly description: string;
  readonly kmsKeyId?: pulumi.Input<string>;
  readonly recoveryWindowInDays: number;
  readonly tags: Record<string, string>;
  readonly host: pulumi.Input<string>;
  readonly port: pulumi.Input<number>;
  readonly username: string;
  readonly password: pulumi.Input<string>;
  readonly dbname: string;
  /** A service login's role (slot a): tagged, so the rotation function rotates this login's slots only. */
  readonly login?: string;
  /** Secrets Manager rotates it: `up` writes the first value only, the rotation function every later one. */
  readonly rotated?: boolean;
  /**
   * Behind RDS Proxy: a tag naming the previous credential's secret (the proxy admits both), and
   * no host tag (the proxy reads this secret, so the secret cannot name the proxy's endpoint in a
   * tag without a cycle); the value's host stays the proxy's.
   */
  readonly proxied?: boolean;
}

/** Where a rotated login connects, in tags `up` keeps current: its rotation function's next version takes them. */
function endpointTags(a: LoginSecretArgs): Record<string, pulumi.Input<string>> {
  const where = { [ENDPOINT_TAGS.port]: pulumi.output(a.port).apply(String), [ENDPOINT_TAGS.dbname]: a.dbname };
  // Behind the proxy, the previous credential's secret the function writes at each rotation.
  return a.proxied ? { ...where, [PREVIOUS_SECRET_TAG]: `${a.secretName}/previous` } : { [ENDPOINT_TAGS.host]: a.host, ...where };
}

/** A login's Secrets Manager secret in the standard RDS secret JSON shape (`<prefix>-secret`, `<prefix>-secret-version`). */
export function loginSecret(
  prefix: string,
  a: LoginSecretArgs,
  opts: pulumi.CustomResourceOptions,
): { arn: pulumi.Output<string>; version: aws.secretsmanager.SecretVersion } {
  const secret = new aws.secretsmanager.Secret(
    `${prefix}-secret`,
    {
      name: a.secretName,
      description: a.description,
      kmsKeyId: a.kmsKeyId,
      recoveryWindowInDays: a.recoveryWindowInDays,
      tags: a.login ? { ...a.tags, [LOGIN_TAG]: a.login, ...(a.rotated && endpointTags(a)) } : a.tags,
    },
    opts,
  );
  const version = new aws.secretsmanager.SecretVersion(
    `${prefix}-secret-version`,
    {
      secretId: secret.id,
      secretString: pulumi.secret(
        pulumi
          .all([a.host, a.port, a.password])
          .apply(([host, port, password]) =>
            JSON.stringify({ engine: "postgres", host, port, username: a.username, password, dbname: a.dbname }),
          ),
      ),
      // Rotated: the first version keeps a label of its own, so Secrets Manager never deletes it under the state.
      ...(a.rotated ? { versionStages: ["AWSCURRENT", INITIAL_VERSION_STAGE] } : {}),
    },
    // After a rotation the version `up` wrote is no longer current: `up` must not put it back.
    a.rotated ? { ...opts, ignoreChanges: ["secretString", "versionStages"] } : opts,
  );
  return { arn: secret.arn, version };
}
