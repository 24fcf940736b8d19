import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct, Node } from 'constructs';

/** Where the alarms notify; at most one of the two. */
export interface AlarmNotificationProps {
  /**
   * E-mail address subscribed to a new, encrypted topic created in the stack (the address must confirm the
   * subscription from the message SNS sends it).
   *
   * @default - no topic is created
   */
  readonly alarmEmail?: string;

  /**
   * ARN of an existing SNS topic (e.g. the on-call team's) that the alarms notify. It must accept publishing
   * by CloudWatch (and, if encrypted, let CloudWatch use its key).
   *
   * @default - no existing topic is used
   */
  readonly alarmTopicArn?: string;
}

/** The CDK context keys `cdk deploy -c alarmEmail=… ` or `-c alarmTopicArn=…` set. */
export const ALARM_CONTEXT = { email: 'alarmEmail', topicArn: 'alarmTopicArn' } as const;

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
/** A standard topic: CloudWatch alarm actions cannot publish to FIFO topics. */
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** Reads and checks the optional `alarmEmail` and `alarmTopicArn` context values. */
export function alarmNotificationsFromContext(node: Node): AlarmNotificationProps {
  const read = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') throw new Error(`Context ${key} must be a string, got ${typeof value}`);
    return value;
  };
  const alarmEmail = read(ALARM_CONTEXT.email);
  const alarmTopicArn = read(ALARM_CONTEXT.topicArn);
  const props = { alarmEmail, alarmTopicArn };
  validateAlarmNotifications(props);
  return props;
}

export function validateAlarmNotifications({ alarmEmail, alarmTopicArn }: AlarmNotificationProps): void {
  if (alarmEmail !== undefined && alarmTopicArn !== undefined) {
    throw new Error(
      `Give either ${ALARM_CONTEXT.email} or ${ALARM_CONTEXT.topicArn}, not both: ` +
        'subscribe the address to the existing topic instead',
    );
  }
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) {
    throw new Error(`${ALARM_CONTEXT.email} must be an e-mail address, got "${alarmEmail}"`);
  }
  if (alarmTopicArn !== undefined && !TOPIC_ARN.test(alarmTopicArn)) {
    throw new Error(
      `${ALARM_CONTEXT.topicArn} must be the ARN of a standard SNS topic, got "${alarmTopicArn}"`,
    );
  }
}

/**
 * The topic the alarms notify: the imported one, a new one with the e-mail address subscribed, or none.
 * A new topic is encrypted with its own KMS key (CloudWatch cannot use the AWS-managed `aws/sns` key) and
 * refuses requests without TLS.
 */
export function alarmTopicFor(scope: Construct, props: AlarmNotificationProps): sns.ITopic | undefined {
  validateAlarmNotifications(props);
  if (props.alarmTopicArn !== undefined) {
    return sns.Topic.fromTopicArn(scope, 'AlarmTopic', props.alarmTopicArn);
  }
  if (props.alarmEmail === undefined) return undefined;

  const cloudWatch = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
  const key = new kms.Key(scope, 'AlarmTopicKey', {
    description: 'Encrypts the notifications of the subtask progress alarms',
    enableKeyRotation: true,
    // It only protects notifications in transit through SNS: nothing stored depends on it.
    removalPolicy: RemovalPolicy.DESTROY,
  });
  // CloudWatch encrypts what it publishes to the topic with the topic's key.
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarmsToPublish',
      principals: [cloudWatch],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }),
  );
  const topic = new sns.Topic(scope, 'AlarmTopic', {
    displayName: 'Subtask progress alarms',
    masterKey: key,
    enforceSSL: true,
  });
  // The topic policy replaces SNS's default one, so CloudWatch needs its own statement: this account's alarms.
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarms',
      principals: [cloudWatch],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        ArnLike: {
          'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*`,
        },
      },
    }),
  );
  topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
  return topic;
}
