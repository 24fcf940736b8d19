import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { METRICS } from '../lambdas/service-settings';
import type { SubtaskProgressAlarmThresholds } from './subtask-progress-props';

/** One window for every alarm, so that each threshold reads as "per 5 minutes". */
const PERIOD = Duration.minutes(5);

/** Where an operator reads what each alarm means and what to do. */
const RUNBOOK = 'Runbook: docs/operations.md';

export interface AlarmSources {
  readonly statusQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly aggregatorFailureQueue: sqs.IQueue;
  readonly applier: lambda.IFunction;
  readonly aggregator: lambda.IFunction;
  readonly apiFunction: lambda.IFunction;
  readonly sweeper: lambda.IFunction;
  readonly httpApi: apigw.IHttpApi;
  readonly table: dynamodb.Table;
  /** The table operations the service calls, e.g. `GetItem`: each one's throttled requests are counted. */
  readonly tableOperations: readonly string[];
}

/** The service's functions, by the name alarms and the runbook use. */
export interface PerFunction<T> {
  readonly applier: T;
  readonly aggregator: T;
  readonly api: T;
  readonly sweeper: T;
}

export interface ServiceAlarms {
  readonly oldestStatusAlarm: cloudwatch.Alarm;
  readonly deadLetterAlarm: cloudwatch.Alarm;
  readonly applierErrorAlarm: cloudwatch.Alarm;
  readonly statusesDeadLetteredAlarm: cloudwatch.Alarm;
  readonly statusesRetriedAlarm: cloudwatch.Alarm;
  readonly iteratorAgeAlarm: cloudwatch.Alarm;
  readonly aggregatorFailureAlarm: cloudwatch.Alarm;
  readonly aggregatorErrorAlarm: cloudwatch.Alarm;
  readonly foldsSkippedAlarm: cloudwatch.Alarm;
  readonly apiServerErrorAlarm: cloudwatch.Alarm;
  readonly sweeperErrorAlarm: cloudwatch.Alarm;
  readonly sweepErrorsAlarm: cloudwatch.Alarm;
  readonly eventsUndeliverableAlarm: cloudwatch.Alarm;
  readonly unfoldedChangesAlarm: cloudwatch.Alarm;
  readonly throttleAlarms: PerFunction<cloudwatch.Alarm>;
  readonly tableThrottleAlarm: cloudwatch.Alarm;
}

/**
 * What each alarm means, by its id. The id names the construct (and so the logical id) and the runbook's section
 * that says what to do; the description CloudWatch shows ends with a pointer to that section.
 */
const MEANINGS = {
  OldestStatusAlarm:
    'A status has waited in the status queue longer than the threshold: the applier is disabled, failing or ' +
    'falling behind, and the queue drops statuses when their retention ends.',
  DeadLetterAlarm:
    'Status messages reached the dead-letter queue: rejected as invalid, or not applied within the receive limit.',
  ApplierErrorAlarm:
    'The status applier failed whole invocations (not single records): statuses are delayed.',
  StatusesDeadLetteredAlarm:
    'The applier dead-lettered statuses in the last 5 minutes (metric StatusesDeadLettered).',
  StatusesRetriedAlarm:
    'The applier handed many statuses back for a retry (metric StatusesRetried): throttling, errors, or ' +
    'statuses of tasks that are not initialized.',
  IteratorAgeAlarm:
    "The aggregator is behind on the table's stream: progress is stale, and stream records expire after 24 hours.",
  AggregatorFailureAlarm:
    "The aggregator's event source discarded stream records and sent their description to the on-failure " +
    'queue: the shards they touched are not recounted until they change again or are reconciled.',
  AggregatorErrorAlarm:
    'The aggregator failed whole invocations (not single records): the batch is retried and its stream ' +
    'shard waits.',
  FoldsSkippedAlarm:
    'The aggregator skipped records whose fold failed with a non-transient error (metric FoldsSkipped).',
  ApiServerErrorAlarm:
    'The API answered with 5xx statuses (handler errors become 500 responses, so Lambda Errors misses them).',
  SweeperErrorAlarm:
    'The sweeper failed whole runs: deadlines, cancels and idle recounts wait for the next run.',
  SweepErrorsAlarm: 'The sweeper could not handle some due tasks (metric SweepErrors).',
  EventsUndeliverableAlarm:
    'EventBridge refused events for good (metric EventsUndeliverable: no permission, a bus policy, an ' +
    'invalid entry). They stay marked on their tasks and go out once the cause is fixed.',
  UnfoldedChangesAlarm:
    "An idle recount found subtask changes minutes old that no fold counted (metric UnfoldedShards): the table's " +
    'stream consumer is stopped, disabled or failing, and progress is stale.',
  ApplierThrottleAlarm: 'Applier invocations were throttled: statuses wait in the queue.',
  AggregatorThrottleAlarm:
    'Aggregator invocations were throttled: its reserved concurrency is below stream shards times the ' +
    'parallelization factor, and progress lags.',
  ApiThrottleAlarm:
    'API function invocations were throttled at its reserved concurrency: callers got 5xx responses.',
  SweeperThrottleAlarm: 'Sweeper invocations were throttled: deadlines and idle recounts are late.',
  TableThrottleAlarm:
    'DynamoDB throttled requests to the table (a hot partition or the on-demand throughput limits).',
} as const;

type AlarmId = keyof typeof MEANINGS;

/**
 * The alarms an operator must hear about: every way a status or a count can be delayed or lost, each going off
 * on one breaching 5-minute window. Missing data (an idle service publishes nothing) is not breaching.
 */
export function createAlarms(
  scope: Construct,
  sources: AlarmSources,
  thresholds: Required<SubtaskProgressAlarmThresholds>,
): ServiceAlarms {
  const alarm = (id: AlarmId, metric: cloudwatch.IMetric, threshold: number) =>
    new cloudwatch.Alarm(scope, id, {
      alarmDescription: `${MEANINGS[id]} ${RUNBOOK}, "${id}".`,
      metric,
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  const sum = { period: PERIOD, statistic: cloudwatch.Stats.SUM };
  const maximum = { period: PERIOD, statistic: cloudwatch.Stats.MAXIMUM };
  const visible = (queue: sqs.IQueue) => queue.metricApproximateNumberOfMessagesVisible(maximum);
  // The names the handlers publish under (`METRICS`): an alarm on any other name would wait for data forever.
  const count = (name: keyof typeof METRICS.names, service: keyof typeof METRICS.services) =>
    new cloudwatch.Metric({
      namespace: METRICS.namespace,
      metricName: METRICS.names[name],
      dimensionsMap: { [METRICS.dimension]: METRICS.services[service] },
      ...sum,
    });
  const { applier, aggregator, apiFunction, sweeper } = sources;
  const throttled = (id: AlarmId, fn: lambda.IFunction) =>
    alarm(id, fn.metricThrottles(sum), thresholds.functionThrottlesPerFiveMinutes);

  return {
    oldestStatusAlarm: alarm(
      'OldestStatusAlarm',
      sources.statusQueue.metricApproximateAgeOfOldestMessage(maximum),
      thresholds.oldestStatusAgeMinutes * 60,
    ),
    deadLetterAlarm: alarm('DeadLetterAlarm', visible(sources.deadLetterQueue), 0),
    applierErrorAlarm: alarm('ApplierErrorAlarm', applier.metricErrors(sum), 0),
    statusesDeadLetteredAlarm: alarm(
      'StatusesDeadLetteredAlarm',
      count('statusesDeadLettered', 'applier'),
      0,
    ),
    statusesRetriedAlarm: alarm(
      'StatusesRetriedAlarm',
      count('statusesRetried', 'applier'),
      thresholds.statusesRetriedPerFiveMinutes,
    ),
    iteratorAgeAlarm: alarm(
      'IteratorAgeAlarm',
      aggregator.metric('IteratorAge', maximum),
      thresholds.iteratorAgeMinutes * 60 * 1000,
    ),
    aggregatorFailureAlarm: alarm('AggregatorFailureAlarm', visible(sources.aggregatorFailureQueue), 0),
    aggregatorErrorAlarm: alarm('AggregatorErrorAlarm', aggregator.metricErrors(sum), 0),
    foldsSkippedAlarm: alarm('FoldsSkippedAlarm', count('foldsSkipped', 'aggregator'), 0),
    apiServerErrorAlarm: alarm(
      'ApiServerErrorAlarm',
      sources.httpApi.metricServerError(sum),
      thresholds.apiServerErrorsPerFiveMinutes,
    ),
    sweeperErrorAlarm: alarm('SweeperErrorAlarm', sweeper.metricErrors(sum), 0),
    sweepErrorsAlarm: alarm('SweepErrorsAlarm', count('sweepErrors', 'sweeper'), 0),
    eventsUndeliverableAlarm: alarm('EventsUndeliverableAlarm', count('eventsUndeliverable', 'sweeper'), 0),
    unfoldedChangesAlarm: alarm('UnfoldedChangesAlarm', count('unfoldedShards', 'sweeper'), 0),
    throttleAlarms: {
      applier: throttled('ApplierThrottleAlarm', applier),
      aggregator: throttled('AggregatorThrottleAlarm', aggregator),
      api: throttled('ApiThrottleAlarm', apiFunction),
      sweeper: throttled('SweeperThrottleAlarm', sweeper),
    },
    tableThrottleAlarm: alarm(
      'TableThrottleAlarm',
      tableThrottledRequests(sources.table, sources.tableOperations),
      thresholds.tableThrottlesPerFiveMinutes,
    ),
  };
}

/**
 * The table's `ThrottledRequests` summed over the given operations. DynamoDB publishes the metric per
 * operation and only when it has something to count, so each term is filled with 0 where it has no data: the
 * sum then has a value whenever any one operation was throttled, whatever the others published.
 */
function tableThrottledRequests(table: dynamodb.Table, operations: readonly string[]): cloudwatch.IMetric {
  const usingMetrics = Object.fromEntries(
    operations.map((operation) => [
      operation.toLowerCase(),
      table.metricThrottledRequestsForOperation(operation, {
        period: PERIOD,
        statistic: cloudwatch.Stats.SUM,
      }),
    ]),
  );
  return new cloudwatch.MathExpression({
    expression: Object.keys(usingMetrics)
      .map((id) => `FILL(${id}, 0)`)
      .join(' + '),
    usingMetrics,
    label: 'Throttled table requests',
    period: PERIOD,
  });
}
