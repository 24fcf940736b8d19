import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../lambdas/api/routes';
import { APPLIER, ENVIRONMENT, STATUS_QUEUE, TABLE_KEYS } from '../../lambdas/service-settings';
import { logicalId, synthesize } from './synthesize';

const DAY_SECONDS = 24 * 60 * 60;

describe('SubtaskProgress with default props', () => {
  const { stack, progress, template } = synthesize();
  const tableId = logicalId(stack, progress.table);
  const queueId = logicalId(stack, progress.queue);
  const deadLetterQueueId = logicalId(stack, progress.deadLetterQueue);
  const applierId = logicalId(stack, progress.applier);
  const apiFunctionId = logicalId(stack, progress.apiFunction);
  const cursorKeyId = logicalId(stack, progress.cursorKey);
  const resource = (id: string) => template.toJSON().Resources[id];

  describe('table', () => {
    it('is keyed by the string pk/sk of the shared settings and billed on demand', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
          { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
        ]),
        BillingMode: 'PAY_PER_REQUEST',
      });
    });

    it('has point-in-time recovery, TTL on the expiry attribute and encryption at rest', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: TABLE_KEYS.timeToLiveAttribute, Enabled: true },
        SSESpecification: { SSEEnabled: true },
      });
    });

    it('is retained on stack deletion and protected against deletion', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
      });
    });
  });

  describe('queues', () => {
    it('redrives a status message to the dead-letter queue after 5 receives', () => {
      template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [deadLetterQueueId, 'Arn'] },
          maxReceiveCount: 5,
        },
      });
    });

    it('gives the status queue the shared visibility timeout and retention', () => {
      template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: Match.anyValue(),
        VisibilityTimeout: STATUS_QUEUE.visibilityTimeoutSeconds,
        MessageRetentionPeriod: STATUS_QUEUE.retentionDays * DAY_SECONDS,
      });
    });

    it('keeps a received status invisible for at least 6 applier timeouts', () => {
      expect(resource(queueId).Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
        6 * resource(applierId).Properties.Timeout,
      );
    });

    it('keeps dead letters for the dead-letter retention period', () => {
      template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: Match.absent(),
        MessageRetentionPeriod: STATUS_QUEUE.deadLetterRetentionDays * DAY_SECONDS,
      });
    });

    it.each([
      ['status queue', queueId],
      ['dead-letter queue', deadLetterQueueId],
    ])('encrypts the %s with SQS-managed keys', (_name, queue) => {
      expect(resource(queue).Properties.SqsManagedSseEnabled).toBe(true);
    });

    it.each([
      ['status queue', queueId],
      ['dead-letter queue', deadLetterQueueId],
    ])('denies every request to the %s that does not use TLS', (_name, queue) => {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Resource: { 'Fn::GetAtt': [queue, 'Arn'] },
            }),
          ]),
        },
      });
    });
  });

  describe('applier', () => {
    it('consumes the status queue in batches and reports partial batch failures', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: applierId },
        EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
        BatchSize: APPLIER.batchSize,
        MaximumBatchingWindowInSeconds: APPLIER.maxBatchingWindowSeconds,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    });

    it('bounds the concurrency of the event source', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: applierId },
        ScalingConfig: { MaximumConcurrency: APPLIER.maxConcurrency },
      });
    });

    it('runs with the shared timeout and memory, and the environment its configuration reads', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: APPLIER.timeoutSeconds,
        MemorySize: APPLIER.memoryMiB,
        Environment: {
          Variables: Match.objectLike({
            [ENVIRONMENT.tableName]: { Ref: tableId },
            [ENVIRONMENT.deadLetterQueueUrl]: { Ref: deadLetterQueueId },
            [ENVIRONMENT.receiveLimit]: String(STATUS_QUEUE.receiveLimit),
          }),
        },
      });
    });
  });

  describe('functions', () => {
    it('run on Node.js 22 on arm64, with source maps enabled', () => {
      template.allResourcesProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      });
    });

    it.each([
      ['applier', applierId],
      ['API function', apiFunctionId],
    ])('the %s logs to its own log group, which expires events', (_name, functionId) => {
      const logGroupId = resource(functionId).Properties.LoggingConfig.LogGroup.Ref;
      expect(resource(logGroupId)).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 30 },
      });
    });

    it('give the applier and the API function separate log groups', () => {
      const logGroupOf = (id: string) => resource(id).Properties.LoggingConfig.LogGroup.Ref;
      expect(logGroupOf(applierId)).not.toBe(logGroupOf(apiFunctionId));
    });

    it('give the API function the table name and its cursor key, and nothing of the queues', () => {
      expect(resource(apiFunctionId).Properties.Environment.Variables).toEqual({
        [ENVIRONMENT.tableName]: { Ref: tableId },
        [ENVIRONMENT.cursorKey]: {
          'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: cursorKeyId }, ':SecretString:::}}']],
        },
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('generate the cursor key at deployment, long enough for the API to accept it', () => {
      template.hasResourceProperties('AWS::SecretsManager::Secret', {
        GenerateSecretString: { PasswordLength: Match.anyValue(), ExcludePunctuation: true },
      });
      expect(resource(cursorKeyId).Properties.GenerateSecretString.PasswordLength).toBeGreaterThanOrEqual(32);
    });
  });

  describe('HTTP API', () => {
    const stageId = () => {
      const [id] = Object.keys(template.findResources('AWS::ApiGatewayV2::Stage'));
      if (id === undefined) throw new Error('no stage');
      return id;
    };

    it('serves the routes the API handler knows, both GETs', () => {
      const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map(
        (route) => route.Properties.RouteKey,
      );
      expect(routeKeys.sort()).toEqual(Object.values(ROUTES).sort());
      expect(routeKeys.sort()).toEqual(['GET /tasks/{task_id}', 'GET /tasks/{task_id}/subtasks']);
    });

    it('authorizes every route with IAM', () => {
      template.allResourcesProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'AWS_IAM' });
    });

    it('throttles the default stage and writes JSON access logs to a log group with a retention', () => {
      template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
        AccessLogSettings: {
          DestinationArn: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] },
          Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
        },
      });
      const accessLogGroupId = resource(stageId()).Properties.AccessLogSettings.DestinationArn[
        'Fn::GetAtt'
      ][0];
      expect(resource(accessLogGroupId).Properties.RetentionInDays).toBe(30);
    });
  });

  describe('alarms', () => {
    it('goes off as soon as a message is visible in the dead-letter queue', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [deadLetterQueueId, 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        TreatMissingData: 'notBreaching',
      });
    });

    it('goes off when the applier reports errors', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: applierId } }],
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    });

    it('notifies nobody when no alarm topic is given', () => {
      template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() });
    });
  });

  describe('stack outputs', () => {
    it('name the queue URL, dead-letter queue URL, API URL and table name', () => {
      template.hasOutput('QueueUrl', { Value: { Ref: queueId } });
      template.hasOutput('DeadLetterQueueUrl', { Value: { Ref: deadLetterQueueId } });
      template.hasOutput('TableName', { Value: { Ref: tableId } });
      template.hasOutput('ApiUrl', {
        Value: {
          'Fn::Join': ['', Match.arrayWith(['https://', { Ref: logicalId(stack, progress.httpApi) }])],
        },
      });
    });
  });
});
