import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../lambdas/core/routes';
import {
  AGGREGATOR,
  APPLIER,
  DUE_INDEX,
  ENVIRONMENT,
  STATUS_QUEUE,
  SWEEPER,
  TABLE_KEYS,
  TABLE_STREAM_VIEW,
} from '../../lambdas/service-settings';
import { filterPatterns, logicalId, synthesize } from './synthesize';

const DAY_SECONDS = 24 * 60 * 60;

describe('SubtaskProgress with default props', () => {
  const { stack, progress, template } = synthesize();
  const tableId = logicalId(stack, progress.table);
  const queueId = logicalId(stack, progress.queue);
  const deadLetterQueueId = logicalId(stack, progress.deadLetterQueue);
  const failureQueueId = logicalId(stack, progress.aggregatorFailureQueue);
  const applierId = logicalId(stack, progress.applier);
  const aggregatorId = logicalId(stack, progress.aggregator);
  const apiFunctionId = logicalId(stack, progress.apiFunction);
  const sweeperId = logicalId(stack, progress.sweeper);
  const httpApiId = logicalId(stack, progress.httpApi);
  const functions = [
    ['applier', applierId],
    ['aggregator', aggregatorId],
    ['API function', apiFunctionId],
    ['sweeper', sweeperId],
  ] as const;
  const resource = (id: string) => template.toJSON().Resources[id];
  const aggregatorMapping = () => {
    const [mapping, ...others] = Object.values(
      template.findResources('AWS::Lambda::EventSourceMapping', {
        Properties: { FunctionName: { Ref: aggregatorId } },
      }),
    );
    if (mapping === undefined || others.length > 0) throw new Error('expected one aggregator event source');
    return mapping;
  };

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

    it('streams new and old images of every change', () => {
      expect(TABLE_STREAM_VIEW).toBe('NEW_AND_OLD_IMAGES');
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      });
    });

    it('has the due index: string due_pk, numeric due_at, keys only', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: DUE_INDEX.partitionKey, AttributeType: 'S' },
          { AttributeName: DUE_INDEX.sortKey, AttributeType: 'N' },
        ]),
        GlobalSecondaryIndexes: Match.arrayWith([
          {
            IndexName: DUE_INDEX.indexName,
            KeySchema: [
              { AttributeName: 'due_pk', KeyType: 'HASH' },
              { AttributeName: 'due_at', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ]),
      });
    });

    it('has the listing indexes: all tasks, by state, by group, newest first on created_at', () => {
      const listIndex = (name: string, partitionKey: string, projection: object) => ({
        IndexName: name,
        KeySchema: [
          { AttributeName: partitionKey, KeyType: 'HASH' },
          { AttributeName: 'created_at', KeyType: 'RANGE' },
        ],
        Projection: projection,
      });
      const state = { ProjectionType: 'INCLUDE', NonKeyAttributes: ['task_state'] };
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'list_pk', AttributeType: 'S' },
          { AttributeName: 'created_at', AttributeType: 'S' },
          { AttributeName: 'task_state', AttributeType: 'S' },
          { AttributeName: 'group', AttributeType: 'S' },
        ]),
        GlobalSecondaryIndexes: Match.arrayWith([
          listIndex('tasks', 'list_pk', state),
          listIndex('tasks_by_state', 'task_state', { ProjectionType: 'KEYS_ONLY' }),
          listIndex('tasks_by_group', 'group', state),
        ]),
      });
    });

    it('indexes nothing a fold rewrites on every recount (counts, versions, times stay in the table)', () => {
      const table = Object.values(template.findResources('AWS::DynamoDB::Table'))[0];
      const indexes = (table?.Properties?.GlobalSecondaryIndexes ?? []) as Array<{
        KeySchema: Array<{ AttributeName: string }>;
        Projection: { NonKeyAttributes?: string[] };
      }>;
      const indexed = indexes.flatMap((index) => [
        ...index.KeySchema.map((key) => key.AttributeName),
        ...(index.Projection.NonKeyAttributes ?? []),
      ]);
      // `task_state` is indexed, but only the write that ends a task sets it (test/integration/task-listing).
      const foldWrites = ['version', 'task_output', 'in_flight', 'subtasks', 'counters_vsum', 'updated_at'];
      expect(indexed.filter((name) => foldWrites.includes(name))).toEqual([]);
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

    it('keeps statuses for 14 days, the SQS maximum, with the shared visibility timeout', () => {
      expect(STATUS_QUEUE.retentionDays).toBe(14);
      expect(resource(queueId).Properties).toMatchObject({
        VisibilityTimeout: STATUS_QUEUE.visibilityTimeoutSeconds,
        MessageRetentionPeriod: 14 * DAY_SECONDS,
      });
    });

    it('keeps a received status invisible for at least 6 applier timeouts', () => {
      expect(resource(queueId).Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
        6 * resource(applierId).Properties.Timeout,
      );
    });

    it.each([
      ['dead-letter queue', deadLetterQueueId],
      ["aggregator's on-failure queue", failureQueueId],
    ])('keeps messages of the %s for 14 days', (_name, queue) => {
      expect(resource(queue).Properties.MessageRetentionPeriod).toBe(
        STATUS_QUEUE.deadLetterRetentionDays * DAY_SECONDS,
      );
      expect(STATUS_QUEUE.deadLetterRetentionDays).toBe(14);
    });

    it.each([
      ['status queue', queueId],
      ['dead-letter queue', deadLetterQueueId],
      ["aggregator's on-failure queue", failureQueueId],
    ])('encrypts the %s with SQS-managed keys', (_name, queue) => {
      expect(resource(queue).Properties.SqsManagedSseEnabled).toBe(true);
    });

    it.each([
      ['status queue', queueId],
      ['dead-letter queue', deadLetterQueueId],
      ["aggregator's on-failure queue", failureQueueId],
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

    it('bounds the concurrency of the event source at 50', () => {
      expect(APPLIER.maxConcurrency).toBe(50);
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: applierId },
        ScalingConfig: { MaximumConcurrency: 50 },
      });
    });

    it('runs with the shared timeout and memory, and the environment its configuration reads', () => {
      expect(resource(applierId).Properties).toMatchObject({
        Timeout: APPLIER.timeoutSeconds,
        MemorySize: APPLIER.memoryMiB,
      });
      expect(resource(applierId).Properties.Environment.Variables).toEqual({
        [ENVIRONMENT.tableName]: { Ref: tableId },
        [ENVIRONMENT.deadLetterQueueUrl]: { Ref: deadLetterQueueId },
        [ENVIRONMENT.receiveLimit]: String(STATUS_QUEUE.receiveLimit),
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('reserves no concurrency: the event source bounds it', () => {
      expect(resource(applierId).Properties.ReservedConcurrentExecutions).toBeUndefined();
    });
  });

  describe('aggregator', () => {
    it("reads the table's stream from the oldest record, in batches gathered for the batching window", () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: aggregatorId },
        EventSourceArn: { 'Fn::GetAtt': [tableId, 'StreamArn'] },
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: AGGREGATOR.batchSize,
        MaximumBatchingWindowInSeconds: AGGREGATOR.maxBatchingWindowSeconds,
        ParallelizationFactor: AGGREGATOR.parallelizationFactor,
      });
    });

    it('bisects failing batches and reports partial batch failures', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: aggregatorId },
        BisectBatchOnFunctionError: true,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
    });

    it('retries a failing record until it expires: no finite retry count, no maximum record age', () => {
      const { Properties } = aggregatorMapping();
      expect(Properties.MaximumRetryAttempts).toBe(-1);
      expect(Properties.MaximumRecordAgeInSeconds ?? -1).toBe(-1);
    });

    it('describes records it gives up on in the on-failure queue', () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: aggregatorId },
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failureQueueId, 'Arn'] } } },
      });
    });

    it('is invoked only for subtask changes and removals, and for tasks leaving PROGRESS', () => {
      const patterns = filterPatterns(aggregatorMapping());
      expect(patterns).toHaveLength(2);
      expect(patterns).toEqual(
        expect.arrayContaining([
          {
            eventName: ['MODIFY', 'REMOVE'],
            dynamodb: { Keys: { sk: { S: [{ prefix: 'SUB#' }] } } },
          },
          {
            eventName: ['MODIFY'],
            dynamodb: {
              Keys: { sk: { S: ['TASK'] } },
              OldImage: { task_state: { S: ['PROGRESS'] } },
              NewImage: { task_state: { S: [{ 'anything-but': ['PROGRESS'] }] } },
            },
          },
        ]),
      );
    });

    it('has its reserved concurrency, timeout and memory from the shared settings', () => {
      expect(resource(aggregatorId).Properties).toMatchObject({
        ReservedConcurrentExecutions: AGGREGATOR.reservedConcurrency,
        Timeout: AGGREGATOR.timeoutSeconds,
        MemorySize: AGGREGATOR.memoryMiB,
      });
    });

    it('gets the table name and the default event bus name, and nothing else', () => {
      expect(resource(aggregatorId).Properties.Environment.Variables).toEqual({
        [ENVIRONMENT.tableName]: { Ref: tableId },
        [ENVIRONMENT.eventBusName]: 'default',
        NODE_OPTIONS: '--enable-source-maps',
      });
    });
  });

  describe('API function', () => {
    it('reserves 10 concurrent executions, so that reads cannot starve the other functions', () => {
      expect(resource(apiFunctionId).Properties.ReservedConcurrentExecutions).toBe(10);
    });

    it('gets the table name and nothing of the queues or a cursor key', () => {
      expect(resource(apiFunctionId).Properties.Environment.Variables).toEqual({
        [ENVIRONMENT.tableName]: { Ref: tableId },
        NODE_OPTIONS: '--enable-source-maps',
      });
    });

    it('holds no secret: the listing cursor is not signed any more', () => {
      expect(template.findResources('AWS::SecretsManager::Secret')).toEqual({});
    });
  });

  describe('sweeper', () => {
    it('runs every minute, from an EventBridge rule', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        State: 'ENABLED',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [sweeperId, 'Arn'] } })],
      });
    });

    it('may be invoked by that rule only', () => {
      const [ruleId] = Object.keys(template.findResources('AWS::Events::Rule'));
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [sweeperId, 'Arn'] },
        Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
      });
    });

    it('does not retry a failed run: the next run, a minute later, takes its place', () => {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: sweeperId },
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 60,
      });
    });

    it('runs for up to 60 s with 512 MiB and gets the table, the event bus and its per-run budget', () => {
      expect(resource(sweeperId).Properties).toMatchObject({ Timeout: 60, MemorySize: 512 });
      expect(resource(sweeperId).Properties.Environment.Variables).toEqual({
        [ENVIRONMENT.tableName]: { Ref: tableId },
        [ENVIRONMENT.eventBusName]: 'default',
        [ENVIRONMENT.sweepSubtasksPerRun]: String(SWEEPER.subtasksPerRun),
        NODE_OPTIONS: '--enable-source-maps',
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

    it.each(functions)('the %s traces actively with X-Ray', (_name, functionId) => {
      expect(resource(functionId).Properties.TracingConfig).toEqual({ Mode: 'Active' });
    });

    it.each(functions)('the %s logs to its own log group, which expires events', (_name, functionId) => {
      const logGroupId = resource(functionId).Properties.LoggingConfig.LogGroup.Ref;
      expect(resource(logGroupId)).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 30 },
      });
    });

    it('give each function a separate log group', () => {
      const logGroups = functions.map(([, id]) => resource(id).Properties.LoggingConfig.LogGroup.Ref);
      expect(new Set(logGroups).size).toBe(functions.length);
    });
  });

  describe('HTTP API', () => {
    const stageId = () => {
      const [id] = Object.keys(template.findResources('AWS::ApiGatewayV2::Stage'));
      if (id === undefined) throw new Error('no stage');
      return id;
    };

    it('serves the routes the API handler knows: two GETs, initialize and cancel', () => {
      const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map(
        (route) => route.Properties.RouteKey,
      );
      expect(routeKeys.sort()).toEqual(Object.values(ROUTES).sort());
      expect(routeKeys.sort()).toEqual([
        'GET /tasks',
        'GET /tasks/{task_id}',
        'GET /tasks/{task_id}/subtasks',
        'POST /tasks/{task_id}/cancel',
        'PUT /tasks/{task_id}',
      ]);
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
    const lambdaMetric = (metricName: string, functionId: string, statistic = 'Sum') => ({
      Namespace: 'AWS/Lambda',
      MetricName: metricName,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
      Statistic: statistic,
    });
    const queueMetric = (metricName: string, queueId: string) => ({
      Namespace: 'AWS/SQS',
      MetricName: metricName,
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Statistic: 'Maximum',
    });
    const serviceMetric = (metricName: string, service: string) => ({
      Namespace: 'SubtaskProgress',
      MetricName: metricName,
      Dimensions: [{ Name: 'service', Value: service }],
      Statistic: 'Sum',
    });

    it.each<[string, Record<string, unknown>, number]>([
      [
        'the oldest status waits over 15 minutes',
        queueMetric('ApproximateAgeOfOldestMessage', queueId),
        15 * 60,
      ],
      [
        'a message is visible in the dead-letter queue',
        queueMetric('ApproximateNumberOfMessagesVisible', deadLetterQueueId),
        0,
      ],
      ['the applier reports errors', lambdaMetric('Errors', applierId), 0],
      ['the applier dead-letters a status', serviceMetric('StatusesDeadLettered', 'applier'), 0],
      [
        'the applier retries over 100 statuses in 5 minutes',
        serviceMetric('StatusesRetried', 'applier'),
        100,
      ],
      [
        "the aggregator's iterator is over 15 minutes old",
        lambdaMetric('IteratorAge', aggregatorId, 'Maximum'),
        AGGREGATOR.iteratorAgeAlarmMinutes * 60 * 1000,
      ],
      [
        "a message is visible in the aggregator's on-failure queue",
        queueMetric('ApproximateNumberOfMessagesVisible', failureQueueId),
        0,
      ],
      ['the aggregator reports errors', lambdaMetric('Errors', aggregatorId), 0],
      ['the aggregator skips a fold', serviceMetric('FoldsSkipped', 'aggregator'), 0],
      [
        'the API answers with a 5xx status',
        {
          Namespace: 'AWS/ApiGateway',
          MetricName: '5xx',
          Dimensions: [{ Name: 'ApiId', Value: { Ref: httpApiId } }],
          Statistic: 'Sum',
        },
        0,
      ],
      ['the sweeper reports errors', lambdaMetric('Errors', sweeperId), 0],
      ['the sweeper counts sweep errors', serviceMetric('SweepErrors', 'sweeper'), 0],
      ['EventBridge refuses an event for good', serviceMetric('EventsUndeliverable', 'sweeper'), 0],
      [
        'an idle recount finds changes no fold counted (a stopped stream consumer)',
        serviceMetric('UnfoldedShards', 'sweeper'),
        0,
      ],
      ['the applier is throttled', lambdaMetric('Throttles', applierId), 0],
      ['the aggregator is throttled', lambdaMetric('Throttles', aggregatorId), 0],
      ['the API function is throttled', lambdaMetric('Throttles', apiFunctionId), 0],
      ['the sweeper is throttled', lambdaMetric('Throttles', sweeperId), 0],
    ])('goes off when %s', (_case, metric, threshold) => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        ...metric,
        Period: 300,
        Threshold: threshold,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
    });

    it('goes off when the table throttles any operation the service uses', () => {
      const operations = ['BatchGetItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem'];
      const alarm = resource(logicalId(stack, progress.alarms.tableThrottleAlarm)).Properties;
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      const expression = alarm.Metrics.find((query: { Expression?: string }) => query.Expression);
      for (const operation of operations) {
        expect(expression.Expression).toContain(`FILL(${operation.toLowerCase()}, 0)`);
        expect(alarm.Metrics).toContainEqual({
          Id: operation.toLowerCase(),
          MetricStat: {
            Metric: {
              Namespace: 'AWS/DynamoDB',
              MetricName: 'ThrottledRequests',
              Dimensions: [
                { Name: 'Operation', Value: operation },
                { Name: 'TableName', Value: { Ref: tableId } },
              ],
            },
            Period: 300,
            Stat: 'Sum',
          },
          ReturnData: false,
        });
      }
    });

    it('points every alarm at its runbook section', () => {
      for (const alarm of progress.allAlarms) {
        expect(resource(logicalId(stack, alarm)).Properties.AlarmDescription).toContain(
          `docs/operations.md, "${alarm.node.id}"`,
        );
      }
    });

    it('notifies nobody when no alarm topic is given', () => {
      template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() });
    });
  });

  describe('environment', () => {
    it('names no region and no account: the template deploys wherever it is deployed', () => {
      const text = JSON.stringify(template.toJSON());
      expect(text).not.toMatch(/\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov)?-[a-z]+-\d\b/);
      expect(text).not.toMatch(/\b\d{12}\b/);
      expect(text).toContain('"Ref":"AWS::Region"');
    });
  });

  describe('stack outputs', () => {
    it('name the queue URLs, API URL and table name', () => {
      template.hasOutput('QueueUrl', { Value: { Ref: queueId } });
      template.hasOutput('DeadLetterQueueUrl', { Value: { Ref: deadLetterQueueId } });
      template.hasOutput('AggregatorFailureQueueUrl', { Value: { Ref: failureQueueId } });
      template.hasOutput('TableName', { Value: { Ref: tableId } });
      template.hasOutput('AggregatorFunctionName', { Value: { Ref: aggregatorId } });
      template.hasOutput('ApiUrl', {
        Value: { 'Fn::Join': ['', Match.arrayWith(['https://', { Ref: httpApiId }])] },
      });
    });

    it.each([
      ['ApplierEventSourceMappingId', applierId],
      ['AggregatorEventSourceMappingId', aggregatorId],
    ])('name the event source mapping to disable in %s', (output, functionId) => {
      const [mappingId] = Object.keys(
        template.findResources('AWS::Lambda::EventSourceMapping', {
          Properties: { FunctionName: { Ref: functionId } },
        }),
      );
      template.hasOutput(output, { Value: { Ref: mappingId } });
    });

    it('name no alarm topic when there is none', () => {
      expect(template.findOutputs('AlarmTopicArn')).toEqual({});
    });
  });
});
