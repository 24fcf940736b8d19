import { Duration, Validations } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ROUTES, type RouteKey } from '../lambdas/core/routes';
import {
  DUE_INDEX,
  ENVIRONMENT,
  LIST_INDEX_LIST,
  STATUS_QUEUE,
  SWEEPER,
  TABLE_KEYS,
  TABLE_STREAM_VIEW,
} from '../lambdas/service-settings';
import { SUBTASK_SORT_KEY_PREFIX, TASK_SORT_KEY } from '../lambdas/store/task-items';
import { createAlarms, type ServiceAlarms } from './alarms';
import { type ApiRoute, createProgressHttpApi, parseRouteKey } from './progress-http-api';
import { createServiceFunction } from './service-function';
import type { SubtaskProgressProps } from './subtask-progress-props';
import { resolveSettings } from './subtask-progress-settings';

export type { SubtaskProgressAlarmThresholds, SubtaskProgressProps } from './subtask-progress-props';

/** The data actions each function needs on the table; anything not listed here is denied. */
const TABLE_ACTIONS = {
  /** Reads the task item and the subtask items, then one conditional put per changed subtask: no transaction. */
  applier: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem'],
  /**
   * Reads the task item, queries one shard's subtask items, reads the shard counters; a recount replaces its
   * counter with a conditional put, the task refresh is a conditional update. Both writes require the item to
   * exist in the generation read, so a fold never creates a task, counter or subtask item; the one item it may
   * create, an event EventBridge did not take, is written by a conditional update.
   */
  aggregator: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
  ],
  /**
   * Reads progress, pages of subtasks and the task items of a listing page (BatchGetItem); initialize puts the
   * task, counter and subtask items; cancel updates.
   */
  api: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
  ],
  /**
   * Recounts idle shards and ends overdue subtasks and tasks with the same conditional writes as the others;
   * marks the deferred events it published (never deletes them: TTL does).
   */
  sweeper: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
  ],
} as const;

/** The sweeper's only read of the due index: what is due, by when. */
const DUE_INDEX_ACTIONS = ['dynamodb:Query'] as const;
/** The API's only read of the listing indexes: a page of task keys, newest first (the rows are a BatchGetItem). */
const LIST_INDEX_ACTIONS = ['dynamodb:Query'] as const;

/** What the stream filters recognise of the items (DESIGN §3). */
const ITEMS = {
  subtaskSortKeyPrefix: SUBTASK_SORT_KEY_PREFIX,
  taskSortKey: TASK_SORT_KEY,
  taskState: 'task_state',
  inProgress: 'PROGRESS',
} as const;

const SWEEP_SCHEDULE = events.Schedule.rate(Duration.minutes(SWEEPER.rateMinutes));

/**
 * Status messages go to an SQS queue; an applier Lambda writes each subtask's status to its own item; an
 * aggregator Lambda on the table's stream recounts the touched shards and ends tasks; a sweeper enforces
 * deadlines; an API Lambda behind an HTTP API serves progress, initialize and cancel. Callers get access
 * through `grant*`.
 */
export class SubtaskProgress extends Construct {
  readonly table: dynamodb.Table;
  /** Queue the workers send subtask statuses to. */
  readonly queue: sqs.Queue;
  /** Messages the applier could not apply, with the reason attached, and those that ran out of deliveries. */
  readonly deadLetterQueue: sqs.Queue;
  /** Where the aggregator's event source describes stream records it discarded (shard, sequence numbers). */
  readonly aggregatorFailureQueue: sqs.Queue;
  readonly applier: NodejsFunction;
  readonly aggregator: NodejsFunction;
  readonly apiFunction: NodejsFunction;
  readonly sweeper: NodejsFunction;
  /** UUID of the status queue's event source mapping (disable it to pause the applier). */
  readonly applierEventSourceMappingId: string;
  /** UUID of the stream's event source mapping (disable it to pause the aggregator). */
  readonly aggregatorEventSourceMappingId: string;
  /** Runs the sweeper every `SWEEPER.rateMinutes` (1). */
  readonly sweeperSchedule: events.Rule;
  /** Receives `Task Ended` and `Subtask Timed Out`. */
  readonly eventBus: events.IEventBus;
  readonly httpApi: apigw.HttpApi;
  /** Base URL of the API, ending in `/`. */
  readonly apiUrl: string;

  /** One alarm per way a status or a count can be delayed or lost, by name (see `docs/operations.md`). */
  readonly alarms: ServiceAlarms;
  /** Every alarm above; all notify `alarmTopic` when given. */
  readonly allAlarms: readonly cloudwatch.Alarm[];

  private readonly usesIamAuthorization: boolean;

  constructor(scope: Construct, id: string, props: SubtaskProgressProps = {}) {
    // Before super(): an invalid configuration leaves nothing half-built in the caller's tree.
    const settings = resolveSettings(props);
    super(scope, id);

    const { logRetention, removalPolicy } = settings;
    const functionLogs = { retention: logRetention, removalPolicy };
    this.usesIamAuthorization =
      props.authorizer === undefined || props.authorizer instanceof HttpIamAuthorizer;

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_KEYS.timeToLiveAttribute,
      // The aggregator learns from the stream which shards changed; the ending needs a task's old and new state.
      stream: dynamodb.StreamViewType[TABLE_STREAM_VIEW],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // A KMS key in the account (aws/dynamodb): key use shows in CloudTrail, and no key grants to manage.
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: settings.deletionProtection,
      removalPolicy,
    });
    // Sparse: only task items that need the sweeper carry `due_pk`; keys are all the sweeper reads from it.
    this.table.addGlobalSecondaryIndex({
      indexName: DUE_INDEX.indexName,
      partitionKey: { name: DUE_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: DUE_INDEX.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
    // Sparse too (task items only), with keys and a state that initialize and the ending write, never a fold.
    for (const index of LIST_INDEX_LIST) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        ...(index.projected.length === 0
          ? { projectionType: dynamodb.ProjectionType.KEYS_ONLY }
          : { projectionType: dynamodb.ProjectionType.INCLUDE, nonKeyAttributes: [...index.projected] }),
      });
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: settings.deadLetterRetention,
    });

    this.queue = new sqs.Queue(this, 'StatusQueue', {
      // SQS-managed keys: producers need no KMS permissions, only sqs:SendMessage.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS asks for at least 6 times the function timeout, so that a batch is not redelivered while it runs.
      visibilityTimeout: Duration.seconds(6 * settings.applier.timeout.toSeconds()),
      retentionPeriod: settings.statusRetention,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: STATUS_QUEUE.receiveLimit },
    });

    this.aggregatorFailureQueue = new sqs.Queue(this, 'AggregatorFailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: settings.deadLetterRetention,
    });
    Validations.of(this.aggregatorFailureQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is itself a dead-letter destination: the on-failure destination of the aggregator's " +
        'stream event source. Nothing consumes it automatically, so a dead-letter queue behind it would never ' +
        'receive anything.',
    });

    this.applier = createServiceFunction(this, 'Applier', {
      entry: 'lambdas/applier/handler.ts',
      description: 'Subtask status applier: status queue to subtask items',
      sizing: settings.applier,
      environment: {
        [ENVIRONMENT.tableName]: this.table.tableName,
        [ENVIRONMENT.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
        [ENVIRONMENT.receiveLimit]: String(STATUS_QUEUE.receiveLimit),
      },
      logs: functionLogs,
    });
    this.grantTable(this.applier, TABLE_ACTIONS.applier);
    // The applier dead-letters permanent failures itself, with the reason attached.
    this.deadLetterQueue.grant(this.applier, 'sqs:SendMessage');
    const statusSource = new SqsEventSource(this.queue, {
      batchSize: settings.applier.batchSize,
      maxBatchingWindow: settings.applier.maxBatchingWindow,
      reportBatchItemFailures: true,
      maxConcurrency: settings.applier.maxConcurrency,
    });
    this.applier.addEventSource(statusSource);
    this.applierEventSourceMappingId = statusSource.eventSourceMappingId;

    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    this.aggregator = createServiceFunction(this, 'Aggregator', {
      entry: 'lambdas/aggregator/handler.ts',
      description: "Aggregator: recounts the shards the table's stream reports as changed, ends tasks",
      sizing: settings.aggregator,
      environment: {
        [ENVIRONMENT.tableName]: this.table.tableName,
        [ENVIRONMENT.eventBusName]: this.eventBus.eventBusName,
      },
      logs: functionLogs,
      otherActionsOnEveryResource:
        'the stream event source grant (Table.grantStreamRead) puts dynamodb:ListStreams, a listing of the ' +
        'account\'s stream ARNs that returns no item data, on "*"; the stream reads themselves ' +
        "(DescribeStream, GetRecords, GetShardIterator) are limited to this table's stream ARN",
    });
    this.grantTable(this.aggregator, TABLE_ACTIONS.aggregator);
    this.eventBus.grantPutEventsTo(this.aggregator);
    const streamSource = new DynamoEventSource(this.table, {
      // A new mapping (first deployment, or one CloudFormation replaced) starts at the oldest record still in
      // the stream, so it skips nothing it can still read.
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: settings.aggregator.batchSize,
      maxBatchingWindow: settings.aggregator.maxBatchingWindow,
      parallelizationFactor: settings.aggregator.parallelizationFactor,
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      // Retry a failing record until it leaves the stream (24 hours): recounts are idempotent, and a record
      // given up early is a change no fold sees. -1 is also the service default; explicit, the template says it.
      retryAttempts: -1,
      onFailure: new SqsDlq(this.aggregatorFailureQueue),
      filters: aggregatorFilters(),
    });
    this.aggregator.addEventSource(streamSource);
    this.aggregatorEventSourceMappingId = streamSource.eventSourceMappingId;

    this.apiFunction = createServiceFunction(this, 'ApiFunction', {
      entry: 'lambdas/api/handler.ts',
      description: 'Progress API: task progress, subtask pages, initialize and cancel',
      sizing: settings.api,
      environment: { [ENVIRONMENT.tableName]: this.table.tableName },
      logs: functionLogs,
    });
    this.grantTable(this.apiFunction, TABLE_ACTIONS.api);
    this.grantTable(
      this.apiFunction,
      LIST_INDEX_ACTIONS,
      LIST_INDEX_LIST.map((index) => `${this.table.tableArn}/index/${index.indexName}`),
    );

    this.sweeper = createServiceFunction(this, 'Sweeper', {
      entry: 'lambdas/sweeper/handler.ts',
      description: 'Sweeper: deadlines, subtask timeouts, unfinished initializations, idle recounts',
      sizing: settings.sweeper,
      environment: {
        [ENVIRONMENT.tableName]: this.table.tableName,
        [ENVIRONMENT.eventBusName]: this.eventBus.eventBusName,
        [ENVIRONMENT.sweepSubtasksPerRun]: String(settings.sweeper.subtasksPerRun),
      },
      logs: functionLogs,
    });
    this.grantTable(this.sweeper, TABLE_ACTIONS.sweeper);
    // It publishes again the events that are still marked unpublished.
    this.eventBus.grantPutEventsTo(this.sweeper);
    this.grantTable(this.sweeper, DUE_INDEX_ACTIONS, [`${this.table.tableArn}/index/${DUE_INDEX.indexName}`]);
    // Each run handles everything due at that moment, so a failed run is not retried: the next one, a minute
    // later, takes its place instead of overlapping a retry.
    this.sweeper.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
    // An EventBridge rule rather than EventBridge Scheduler: a rule invokes through a resource-based permission
    // on the function, limited to this rule's ARN, while a schedule needs a role whose lambda:InvokeFunction
    // statement (on the function and its `:*` versions) cdk-nag reports as AwsSolutions-IAM5. A fixed
    // one-minute rate needs none of Scheduler's extras (time zones, one-off schedules, flexible windows).
    this.sweeperSchedule = new events.Rule(this, 'SweeperSchedule', {
      description: 'Runs the subtask progress sweeper',
      schedule: SWEEP_SCHEDULE,
    });
    this.sweeperSchedule.addTarget(
      new targets.LambdaFunction(this.sweeper, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
    );

    const api = createProgressHttpApi(this, {
      apiFunction: this.apiFunction,
      authorizer: props.authorizer ?? new HttpIamAuthorizer(),
      throttling: {
        rateLimit: settings.api.throttlingRateLimit,
        burstLimit: settings.api.throttlingBurstLimit,
      },
      logRetention,
      removalPolicy,
    });
    this.httpApi = api.httpApi;
    this.apiUrl = api.url;

    const alarms = createAlarms(
      this,
      {
        statusQueue: this.queue,
        deadLetterQueue: this.deadLetterQueue,
        aggregatorFailureQueue: this.aggregatorFailureQueue,
        applier: this.applier,
        aggregator: this.aggregator,
        apiFunction: this.apiFunction,
        sweeper: this.sweeper,
        httpApi: this.httpApi,
        table: this.table,
        tableOperations: [...new Set(Object.values(TABLE_ACTIONS).flat())].map((action) =>
          action.replace(/^dynamodb:/, ''),
        ),
      },
      settings.alarmThresholds,
    );
    this.alarms = alarms;
    const { throttleAlarms, ...singleAlarms } = alarms;
    this.allAlarms = [...Object.values(singleAlarms), ...Object.values(throttleAlarms)];

    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.allAlarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Lets a worker send subtask status messages to the status queue, and nothing else. */
  grantSendStatus(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grant(grantee, 'sqs:SendMessage');
  }

  /**
   * Lets a producer initialize tasks through the API (`PUT /tasks/{task_id}`, SigV4-signed). Producers get no
   * table rights: the API function alone writes tasks. Needs IAM authorization on the API.
   *
   * The route ARN ends in wildcards (any stage, any task id), so cdk-nag reports AwsSolutions-IAM5 on the
   * grantee's policy; acknowledge it there, where the grantee is defined.
   */
  grantInitialize(grantee: iam.IGrantable): iam.Grant {
    return this.grantRoutes('grantInitialize', grantee, [ROUTES.initialize]);
  }

  /**
   * Lets a producer cancel tasks through the API (`POST /tasks/{task_id}/cancel`). Needs IAM authorization on
   * the API; acknowledge AwsSolutions-IAM5 on the grantee as for `grantInitialize`.
   */
  grantCancel(grantee: iam.IGrantable): iam.Grant {
    return this.grantRoutes('grantCancel', grantee, [ROUTES.cancel]);
  }

  /**
   * Lets a reader call the GET routes of the API (the task listing, progress, subtask pages). Needs IAM authorization on the API: with a custom
   * authorizer, readers authenticate through that authorizer instead. Acknowledge AwsSolutions-IAM5 on the
   * grantee as for `grantInitialize`.
   */
  grantReadProgress(grantee: iam.IGrantable): iam.Grant {
    return this.grantRoutes('grantReadProgress', grantee, [ROUTES.list, ROUTES.task, ROUTES.subtasks]);
  }

  private grantRoutes(method: string, grantee: iam.IGrantable, routeKeys: readonly RouteKey[]): iam.Grant {
    if (!this.usesIamAuthorization) {
      throw new Error(
        `${method} needs IAM authorization on the API; ` +
          'with a custom authorizer, grant access through that authorizer.',
      );
    }
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: routeKeys.map((routeKey) => this.routeArn(parseRouteKey(routeKey))),
    });
  }

  /**
   * Grants table actions on the table itself (or the given ARNs), never on `<table>/index/*`, which
   * `table.grant` adds as soon as the table has an index: only the sweeper reads the due index, only the API
   * the listing indexes.
   */
  private grantTable(
    grantee: iam.IGrantable,
    actions: readonly string[],
    resourceArns: readonly string[] = [this.table.tableArn],
  ): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns: [...resourceArns] });
  }

  /** ARN of a route in any stage; path parameters become wildcards, as IAM matches the request path. */
  private routeArn({ method, path }: ApiRoute): string {
    return this.httpApi.arnForExecuteApi(method, path.replace(/\{[^}]+\}/g, '*'));
  }
}

/**
 * What the aggregator is invoked for (DESIGN §2, "The fold's rules at its edges"). The handler applies the
 * same predicate again, since the local poller has no filters. Neither the fold's own task writes (still
 * `PROGRESS`) nor its counter writes (`SHARD#…`) match, so the aggregator never triggers itself.
 */
function aggregatorFilters(): Array<Record<string, unknown>> {
  const { FilterCriteria, FilterRule } = lambda;
  const sortKey = (match: unknown) => ({ [TABLE_KEYS.sortKey]: { S: match } });
  const taskState = (match: unknown) => ({ [ITEMS.taskState]: { S: match } });
  return [
    // A subtask's status changed (a status, a sweeper's TIMED_OUT, a cancel's REVOKED) or its item was removed:
    // its shard needs a recount. Initialize's INSERTs change no counter.
    FilterCriteria.filter({
      eventName: FilterRule.or('MODIFY', 'REMOVE'),
      dynamodb: { Keys: sortKey(FilterRule.beginsWith(ITEMS.subtaskSortKeyPrefix)) },
    }),
    // A task left PROGRESS: the one record the `Task Ended` event is published from.
    FilterCriteria.filter({
      eventName: FilterRule.isEqual('MODIFY'),
      dynamodb: {
        Keys: sortKey(FilterRule.isEqual(ITEMS.taskSortKey)),
        OldImage: taskState(FilterRule.isEqual(ITEMS.inProgress)),
        NewImage: taskState(FilterRule.notEquals(ITEMS.inProgress)),
      },
    }),
  ];
}
