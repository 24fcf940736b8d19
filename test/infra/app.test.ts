import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { alarmNotificationsFromContext } from '../../cdk/alarm-notifications';
import { defineSubtaskProgressApp } from '../../cdk/subtask-progress-app';
import { SubtaskProgressStack } from '../../cdk/subtask-progress-stack';
import { logicalId, synthesizeStack, testApp } from './synthesize';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:on-call';

describe('the app (cdk/app.ts)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('synthesizes an environment-agnostic template, whatever region and account the machine has', () => {
    vi.stubEnv('CDK_DEFAULT_REGION', 'eu-central-1');
    vi.stubEnv('CDK_DEFAULT_ACCOUNT', '210987654321');

    const stack = defineSubtaskProgressApp(testApp());
    const text = JSON.stringify(Template.fromStack(stack).toJSON());

    expect(stack.environment).toBe('aws://unknown-account/unknown-region');
    expect(text).not.toContain('eu-central-1');
    expect(text).not.toContain('210987654321');
    expect(text).not.toMatch(/\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov)?-[a-z]+-\d\b/);
  });

  it('notifies nobody without alarm context', () => {
    const template = Template.fromStack(defineSubtaskProgressApp(testApp()));

    expect(template.findResources('AWS::SNS::Topic')).toEqual({});
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() });
  });

  describe('with alarmEmail in the context', () => {
    const stack = defineSubtaskProgressApp(testApp({ context: { alarmEmail: 'oncall@example.com' } }));
    const template = Template.fromStack(stack);
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    const [keyId] = Object.keys(template.findResources('AWS::KMS::Key'));

    it('creates a topic encrypted with its own rotating key, and subscribes the address', () => {
      expect(topicId).toBeDefined();
      template.hasResourceProperties('AWS::SNS::Topic', {
        KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      });
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'oncall@example.com',
        TopicArn: { Ref: topicId },
      });
    });

    it('refuses publishing without TLS, and lets this account’s CloudWatch alarms publish', () => {
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: topicId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sns:Publish',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
            Match.objectLike({
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: 'sns:Publish',
              Condition: Match.objectLike({
                StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              }),
            }),
          ]),
        },
      });
    });

    it('lets CloudWatch encrypt with the key, as alarms publishing to an encrypted topic must', () => {
      template.hasResourceProperties('AWS::KMS::Key', {
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            }),
          ]),
        },
      });
    });

    it('wires every alarm to the topic, when it goes off and when it clears', () => {
      template.allResourcesProperties('AWS::CloudWatch::Alarm', {
        AlarmActions: [{ Ref: topicId }],
        OKActions: [{ Ref: topicId }],
      });
      for (const alarm of stack.progress.allAlarms) {
        expect(template.toJSON().Resources[logicalId(stack, alarm)].Properties.AlarmActions).toEqual([
          { Ref: topicId },
        ]);
      }
    });

    it('prints the topic ARN', () => {
      template.hasOutput('AlarmTopicArn', { Value: { Ref: topicId } });
    });
  });

  describe('with alarmTopicArn in the context', () => {
    const template = Template.fromStack(
      defineSubtaskProgressApp(testApp({ context: { alarmTopicArn: TOPIC_ARN } })),
    );

    it('wires every alarm to the existing topic and creates none', () => {
      template.allResourcesProperties('AWS::CloudWatch::Alarm', {
        AlarmActions: [TOPIC_ARN],
        OKActions: [TOPIC_ARN],
      });
      expect(template.findResources('AWS::SNS::Topic')).toEqual({});
    });
  });

  describe('reading the context', () => {
    it('returns nothing when neither key is set, or set empty', () => {
      expect(alarmNotificationsFromContext(testApp().node)).toEqual({});
      expect(alarmNotificationsFromContext(testApp({ context: { alarmEmail: '' } }).node)).toEqual({});
    });

    it.each<[string, Record<string, unknown>, RegExp]>([
      ['both keys', { alarmEmail: 'oncall@example.com', alarmTopicArn: TOPIC_ARN }, /not both/],
      ['an e-mail without a domain', { alarmEmail: 'oncall' }, /alarmEmail must be an e-mail address/],
      [
        'an ARN of another service',
        { alarmTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:q' },
        /alarmTopicArn/,
      ],
      ['a FIFO topic', { alarmTopicArn: `${TOPIC_ARN}.fifo` }, /standard SNS topic/],
      ['a non-string value', { alarmEmail: 42 }, /must be a string/],
    ])('rejects %s', (_case, context, message) => {
      expect(() => alarmNotificationsFromContext(testApp({ context }).node)).toThrow(message);
    });
  });
});

describe('SubtaskProgressStack alarm props', () => {
  it('alarmTopicArn wires the alarms like the context key does', () => {
    const { template } = synthesizeStack({ alarmTopicArn: TOPIC_ARN });

    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [TOPIC_ARN] });
  });

  it('refuses a topic given both as progress.alarmTopic and as alarmEmail', () => {
    const app = testApp();
    const alarmTopic = sns.Topic.fromTopicArn(new Stack(app, 'Topics'), 'OnCall', TOPIC_ARN);

    expect(
      () =>
        new SubtaskProgressStack(app, 'Both', { alarmEmail: 'oncall@example.com', progress: { alarmTopic } }),
    ).toThrow(/either/);
  });
});
