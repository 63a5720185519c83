/**
 * AWS building blocks several components share: a rotating customer-managed KMS key the account
 * administers (CloudWatch may use it to publish to encrypted topics), and an encrypted SNS alarm
 * topic with an optional e-mail subscription.
 */
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";

/** A key statement for one AWS service principal, on this key only. */
export interface KeyGrant {
  readonly sid: string;
  readonly service: string;
  readonly actions: readonly string[];
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
  const policy = accountId.apply((account) =>
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
        ...grants.map((g) => ({ Sid: g.sid, Effect: "Allow", Principal: { Service: g.service }, Action: [...g.actions], Resource: "*" })),
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
