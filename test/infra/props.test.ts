import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { SubtaskProgress, type SubtaskProgressProps } from '../../cdk/subtask-progress';
import { ENVIRONMENT } from '../../lambdas/service-settings';
import { logicalId, synthesize, testApp } from './synthesize';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:on-call';
const DAY_SECONDS = 24 * 60 * 60;

describe('SubtaskProgress props', () => {
  describe('function and event source settings', () => {
    const { stack, progress, template } = synthesize({
      maxConcurrency: 10,
      applierBatchSize: 20,
      applierMaxBatchingWindow: Duration.seconds(3),
      applierTimeout: Duration.seconds(40),
      applierMemorySize: 1024,
      aggregatorBatchSize: 500,
      aggregatorMaxBatchingWindow: Duration.seconds(5),
      aggregatorParallelizationFactor: 4,
      aggregatorTimeout: Duration.seconds(120),
      aggregatorMemorySize: 768,
      aggregatorReservedConcurrency: 8,
      apiTimeout: Duration.seconds(20),
      apiMemorySize: 512,
      apiReservedConcurrency: 25,
      sweeperTimeout: Duration.seconds(45),
      sweeperMemorySize: 256,
      sweeperSubtasksPerRun: 5_000,
      statusRetention: Duration.days(7),
      deadLetterRetention: Duration.days(10),
    });
    const fn = (construct: SubtaskProgress['applier']) =>
      template.toJSON().Resources[logicalId(stack, construct)].Properties;
    const queue = (construct: SubtaskProgress['queue']) =>
      template.toJSON().Resources[logicalId(stack, construct)].Properties;

    it('maxConcurrency, applierBatchSize and applierMaxBatchingWindow shape the status queue event source', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: logicalId(stack, progress.applier) },
        BatchSize: 20,
        MaximumBatchingWindowInSeconds: 3,
        ScalingConfig: { MaximumConcurrency: 10 },
      });
    });

    it('applierTimeout and applierMemorySize size the applier, and the visibility timeout follows', () => {
      expect(fn(progress.applier)).toMatchObject({ Timeout: 40, MemorySize: 1024 });
      expect(queue(progress.queue).VisibilityTimeout).toBe(6 * 40);
    });

    it('the aggregator settings shape the stream event source', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: logicalId(stack, progress.aggregator) },
        BatchSize: 500,
        MaximumBatchingWindowInSeconds: 5,
        ParallelizationFactor: 4,
      });
    });

    it('aggregatorTimeout, aggregatorMemorySize and aggregatorReservedConcurrency size the aggregator', () => {
      expect(fn(progress.aggregator)).toMatchObject({
        Timeout: 120,
        MemorySize: 768,
        ReservedConcurrentExecutions: 8,
      });
    });

    it('apiTimeout, apiMemorySize and apiReservedConcurrency size the API function', () => {
      expect(fn(progress.apiFunction)).toMatchObject({
        Timeout: 20,
        MemorySize: 512,
        ReservedConcurrentExecutions: 25,
      });
    });

    it('sweeperTimeout and sweeperMemorySize size the sweeper', () => {
      expect(fn(progress.sweeper)).toMatchObject({ Timeout: 45, MemorySize: 256 });
    });

    it("sweeperSubtasksPerRun is the sweeper's per-run budget", () => {
      expect(fn(progress.sweeper).Environment.Variables).toMatchObject({
        [ENVIRONMENT.sweepSubtasksPerRun]: '5000',
      });
    });

    it('statusRetention and deadLetterRetention set the retention of the queues', () => {
      expect(queue(progress.queue).MessageRetentionPeriod).toBe(7 * DAY_SECONDS);
      expect(queue(progress.deadLetterQueue).MessageRetentionPeriod).toBe(10 * DAY_SECONDS);
      expect(queue(progress.aggregatorFailureQueue).MessageRetentionPeriod).toBe(10 * DAY_SECONDS);
    });
  });

  it('logRetention applies to the function logs and the access logs alike', () => {
    const { template } = synthesize({ logRetention: logs.RetentionDays.ONE_YEAR });

    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });

  it('throttling limits apply to the default stage', () => {
    const { template } = synthesize({ throttlingRateLimit: 5, throttlingBurstLimit: 10 });

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
    });
  });

  it('a JWT authorizer replaces IAM authorization on every route', () => {
    const authorizer = new HttpJwtAuthorizer(
      'CognitoJwt',
      'https://cognito-idp.eu-west-1.amazonaws.com/pool',
      {
        jwtAudience: ['progress-client'],
      },
    );

    const { template } = synthesize({ authorizer });

    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', { AuthorizerType: 'JWT' });
    template.allResourcesProperties('AWS::ApiGatewayV2::Route', {
      AuthorizationType: 'JWT',
      AuthorizerId: { Ref: Match.anyValue() },
    });
  });

  it('an event bus receives the events instead of the default bus', () => {
    const busArn = 'arn:aws:events:eu-west-1:123456789012:event-bus/orders';
    const eventBus = events.EventBus.fromEventBusArn(new Stack(testApp(), 'Buses'), 'Orders', busArn);

    const { stack, progress, template } = synthesize({ eventBus });

    expect(
      template.toJSON().Resources[logicalId(stack, progress.aggregator)].Properties.Environment.Variables,
    ).toMatchObject({ [ENVIRONMENT.eventBusName]: 'orders' });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'events:PutEvents', Resource: busArn }]),
      },
    });
  });

  it('an alarm topic is notified by every alarm, when it goes off and when it clears', () => {
    // An imported topic is only its ARN, so the stack holding the import does not matter.
    const alarmTopic = sns.Topic.fromTopicArn(new Stack(testApp(), 'Topics'), 'OnCall', TOPIC_ARN);

    const { stack, progress, template } = synthesize({ alarmTopic });

    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [TOPIC_ARN],
      OKActions: [TOPIC_ARN],
    });
    expect(progress.allAlarms.length).toBeGreaterThanOrEqual(17);
    for (const alarm of progress.allAlarms) {
      expect(template.toJSON().Resources[logicalId(stack, alarm)].Properties.AlarmActions).toEqual([
        TOPIC_ARN,
      ]);
    }
  });

  it('alarm thresholds move the alarms they name', () => {
    const { stack, progress, template } = synthesize({
      alarmThresholds: {
        oldestStatusAgeMinutes: 30,
        iteratorAgeMinutes: 60,
        statusesRetriedPerFiveMinutes: 1000,
        apiServerErrorsPerFiveMinutes: 5,
        functionThrottlesPerFiveMinutes: 3,
        tableThrottlesPerFiveMinutes: 50,
      },
    });
    const threshold = (alarm: SubtaskProgress['alarms']['deadLetterAlarm']) =>
      template.toJSON().Resources[logicalId(stack, alarm)].Properties.Threshold;

    expect(threshold(progress.alarms.oldestStatusAlarm)).toBe(30 * 60);
    expect(threshold(progress.alarms.iteratorAgeAlarm)).toBe(60 * 60 * 1000);
    expect(threshold(progress.alarms.statusesRetriedAlarm)).toBe(1000);
    expect(threshold(progress.alarms.apiServerErrorAlarm)).toBe(5);
    expect(Object.values(progress.alarms.throttleAlarms).map(threshold)).toEqual([3, 3, 3, 3]);
    expect(threshold(progress.alarms.tableThrottleAlarm)).toBe(50);
    expect(threshold(progress.alarms.deadLetterAlarm)).toBe(0);
  });

  it('removalPolicy DESTROY with deletion protection off lets the table and logs go with the stack', () => {
    const { template } = synthesize({
      removalPolicy: RemovalPolicy.DESTROY,
      deletionProtection: false,
    });

    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
    });
    template.allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete' });
  });

  describe('validation', () => {
    it.each<[string, SubtaskProgressProps, RegExp]>([
      ['maxConcurrency below the SQS minimum of 2', { maxConcurrency: 1 }, /maxConcurrency/],
      ['maxConcurrency above the SQS maximum of 1000', { maxConcurrency: 1001 }, /maxConcurrency/],
      ['fractional maxConcurrency', { maxConcurrency: 2.5 }, /maxConcurrency/],
      ['zero throttling rate', { throttlingRateLimit: 0 }, /throttlingRateLimit/],
      ['non-numeric throttling rate', { throttlingRateLimit: Number.NaN }, /throttlingRateLimit/],
      ['zero burst', { throttlingBurstLimit: 0 }, /throttlingBurstLimit/],
      ['fractional burst', { throttlingBurstLimit: 1.5 }, /throttlingBurstLimit/],
      ['an applier batch of 0', { applierBatchSize: 0 }, /applierBatchSize/],
      ['an applier batch over 10,000', { applierBatchSize: 10_001 }, /applierBatchSize/],
      [
        'an applier batch over 10 without a batching window',
        { applierBatchSize: 11, applierMaxBatchingWindow: Duration.seconds(0) },
        /applierMaxBatchingWindow must be at least 1 s/,
      ],
      [
        'an applier batching window over 300 s',
        { applierMaxBatchingWindow: Duration.seconds(301) },
        /applierMaxBatchingWindow/,
      ],
      ['an applier timeout over 900 s', { applierTimeout: Duration.seconds(901) }, /applierTimeout/],
      ['a fractional applier timeout', { applierTimeout: Duration.millis(1500) }, /applierTimeout/],
      ['applier memory under 128 MiB', { applierMemorySize: 64 }, /applierMemorySize/],
      ['an aggregator batch over 10,000', { aggregatorBatchSize: 20_000 }, /aggregatorBatchSize/],
      [
        'an aggregator batching window over 300 s',
        { aggregatorMaxBatchingWindow: Duration.minutes(6) },
        /aggregatorMaxBatchingWindow/,
      ],
      [
        'a parallelization factor over 10',
        { aggregatorParallelizationFactor: 11 },
        /aggregatorParallelizationFactor/,
      ],
      [
        'a parallelization factor of 0',
        { aggregatorParallelizationFactor: 0 },
        /aggregatorParallelizationFactor/,
      ],
      ['aggregator memory over 10,240 MiB', { aggregatorMemorySize: 20_000 }, /aggregatorMemorySize/],
      [
        'an aggregator without reserved concurrency',
        { aggregatorReservedConcurrency: 0 },
        /aggregatorReservedConcurrency/,
      ],
      ['an API timeout over 30 s', { apiTimeout: Duration.seconds(31) }, /apiTimeout/],
      ['an API without reserved concurrency', { apiReservedConcurrency: 0 }, /apiReservedConcurrency/],
      ['a fractional API reserved concurrency', { apiReservedConcurrency: 2.5 }, /apiReservedConcurrency/],
      ['a sweeper timeout of 0', { sweeperTimeout: Duration.seconds(0) }, /sweeperTimeout/],
      ['a sweeper budget of 0 subtasks', { sweeperSubtasksPerRun: 0 }, /sweeperSubtasksPerRun/],
      ['a status retention over 14 days', { statusRetention: Duration.days(15) }, /statusRetention/],
      ['a status retention under a minute', { statusRetention: Duration.seconds(30) }, /statusRetention/],
      [
        'a dead-letter retention shorter than the status retention',
        { statusRetention: Duration.days(14), deadLetterRetention: Duration.days(4) },
        /deadLetterRetention must be at least statusRetention/,
      ],
      [
        'an iterator-age alarm at the stream retention',
        { alarmThresholds: { iteratorAgeMinutes: 24 * 60 } },
        /iteratorAgeMinutes/,
      ],
      [
        'a zero oldest-status alarm age',
        { alarmThresholds: { oldestStatusAgeMinutes: 0 } },
        /oldestStatusAgeMinutes/,
      ],
      [
        'a negative retried-statuses threshold',
        { alarmThresholds: { statusesRetriedPerFiveMinutes: -1 } },
        /statusesRetriedPerFiveMinutes/,
      ],
      [
        'DESTROY on a deletion-protected table',
        { removalPolicy: RemovalPolicy.DESTROY },
        /deletionProtection: false/,
      ],
    ])('rejects %s before building anything', (_case, props, message) => {
      const stack = new Stack(testApp(), 'Invalid');

      expect(() => new SubtaskProgress(stack, 'Progress', props)).toThrow(message);
      expect(stack.node.findAll().filter((construct) => construct !== stack)).toEqual([]);
    });

    it('keeps a default for a threshold given as undefined', () => {
      const { stack, progress, template } = synthesize({
        alarmThresholds: { iteratorAgeMinutes: undefined },
      });

      expect(
        template.toJSON().Resources[logicalId(stack, progress.alarms.iteratorAgeAlarm)].Properties.Threshold,
      ).toBe(15 * 60 * 1000);
    });
  });
});
