import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { SubtaskProgress, type SubtaskProgressProps } from '../../cdk/subtask-progress';
import { synthesize, testApp } from './synthesize';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:on-call';

describe('SubtaskProgress props', () => {
  it('maxConcurrency sets the maximum concurrency of the event source', () => {
    const { template } = synthesize({ maxConcurrency: 10 });

    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 10 },
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

  it('an alarm topic is notified by both alarms, when they go off and when they clear', () => {
    // An imported topic is only its ARN, so the stack holding the import does not matter.
    const alarmTopic = sns.Topic.fromTopicArn(new Stack(testApp(), 'Topics'), 'OnCall', TOPIC_ARN);

    const { template } = synthesize({ alarmTopic });

    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [TOPIC_ARN],
      OKActions: [TOPIC_ARN],
    });
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
  });
});
