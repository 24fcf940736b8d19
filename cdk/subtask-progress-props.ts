import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';

/**
 * Alarm thresholds. The dead-letter queue, the aggregator's on-failure queue, function errors, dead-lettered
 * statuses, skipped folds and sweep errors have none to tune: each goes off at the first occurrence.
 */
export interface SubtaskProgressAlarmThresholds {
  /**
   * Age, in minutes, of the oldest status waiting in the status queue above which the alarm goes off.
   * A disabled or failing applier shows here long before the queue's retention drops anything.
   *
   * @default 15
   */
  readonly oldestStatusAgeMinutes?: number;

  /**
   * Age, in minutes, of the newest stream record the aggregator last read above which the alarm goes off.
   * Must be well under the stream's 24-hour retention.
   *
   * @default 15
   */
  readonly iteratorAgeMinutes?: number;

  /**
   * Statuses the applier hands back for a retry (metric `StatusesRetried`) per 5 minutes above which the
   * alarm goes off. Some retries are normal (a status arriving before its task is initialized).
   *
   * @default 100
   */
  readonly statusesRetriedPerFiveMinutes?: number;

  /**
   * API responses with a 5xx status per 5 minutes above which the alarm goes off.
   *
   * @default 0
   */
  readonly apiServerErrorsPerFiveMinutes?: number;

  /**
   * Throttled invocations of any one function per 5 minutes above which that function's alarm goes off.
   *
   * @default 0
   */
  readonly functionThrottlesPerFiveMinutes?: number;

  /**
   * Throttled table requests (all operations the service uses) per 5 minutes above which the alarm goes off.
   *
   * @default 0
   */
  readonly tableThrottlesPerFiveMinutes?: number;
}

export interface SubtaskProgressProps {
  /**
   * Most applier invocations the status queue may run at once. Statuses of a hot task contend only per
   * subtask, so this is sized for many tasks at once.
   *
   * @default 50
   */
  readonly maxConcurrency?: number;

  /**
   * Status messages per applier invocation (1–10,000; over 10 needs a batching window of at least 1 s).
   *
   * @default 100
   */
  readonly applierBatchSize?: number;

  /**
   * How long the status queue's event source gathers messages before invoking the applier (0–300 s).
   *
   * @default Duration.seconds(1)
   */
  readonly applierMaxBatchingWindow?: Duration;

  /**
   * Timeout of the applier (1–900 s). The status queue's visibility timeout is 6 times this.
   *
   * @default Duration.seconds(30)
   */
  readonly applierTimeout?: Duration;

  /**
   * Memory of the applier, in MiB (128–10,240).
   *
   * @default 512
   */
  readonly applierMemorySize?: number;

  /**
   * Stream records per aggregator invocation (1–10,000).
   *
   * @default 1000
   */
  readonly aggregatorBatchSize?: number;

  /**
   * How long the stream's event source gathers records before invoking the aggregator (0–300 s). Longer
   * windows let one recount cover more statuses of a hot shard, and delay progress by as much.
   *
   * @default Duration.seconds(1)
   */
  readonly aggregatorMaxBatchingWindow?: Duration;

  /**
   * Concurrent batches per stream shard (1–10).
   *
   * @default 2
   */
  readonly aggregatorParallelizationFactor?: number;

  /**
   * Timeout of the aggregator (1–900 s).
   *
   * @default Duration.seconds(60)
   */
  readonly aggregatorTimeout?: Duration;

  /**
   * Memory of the aggregator, in MiB (128–10,240).
   *
   * @default 512
   */
  readonly aggregatorMemorySize?: number;

  /**
   * Concurrency reserved for the aggregator, so that applier or API bursts cannot starve the fold; also its
   * ceiling. Needs at least stream shards × parallelization factor, and leaves less for the rest of the account.
   *
   * @default 20
   */
  readonly aggregatorReservedConcurrency?: number;

  /**
   * Timeout of the API function (1–30 s: an HTTP API integration gives up after 30 s). Reads take
   * milliseconds; an initialize of a large fan-out writes subtask items until 8 s before this runs out and
   * answers 202 for the client to repeat, so a longer timeout means fewer repeats.
   *
   * @default Duration.seconds(29)
   */
  readonly apiTimeout?: Duration;

  /**
   * Memory of the API function, in MiB (128–10,240).
   *
   * @default 256
   */
  readonly apiMemorySize?: number;

  /**
   * Concurrency reserved for the API function, and its ceiling: a burst of reads cannot take the concurrency
   * the applier and the aggregator need. Requests beyond it fail with a 5xx until an instance is free.
   *
   * @default 10
   */
  readonly apiReservedConcurrency?: number;

  /**
   * Timeout of the sweeper (1–900 s). It runs every minute; a longer sweep overlaps the next one, which its
   * conditional writes tolerate.
   *
   * @default Duration.seconds(60)
   */
  readonly sweeperTimeout?: Duration;

  /**
   * Memory of the sweeper, in MiB (128–10,240).
   *
   * @default 512
   */
  readonly sweeperMemorySize?: number;

  /**
   * Subtasks one sweeper run ends at most, over all its tasks (a cancel, a deadline, timeouts): the rest in the
   * next runs, from the cursor a run leaves on its task. Each run also stops taking on work 10 s before its
   * timeout, whatever this budget.
   *
   * @default 20,000
   */
  readonly sweeperSubtasksPerRun?: number;

  /**
   * How long the status queue keeps a status nobody applied (1 minute – 14 days). The default is SQS's maximum,
   * so a long outage of the applier loses no status.
   *
   * @default Duration.days(14)
   */
  readonly statusRetention?: Duration;

  /**
   * How long the dead-letter queue and the aggregator's on-failure queue keep their messages (1 minute –
   * 14 days, and no shorter than `statusRetention`: SQS ages a dead letter from its first enqueue).
   *
   * @default Duration.days(14)
   */
  readonly deadLetterRetention?: Duration;

  /**
   * How long the log groups of the functions and the API access log keep their events.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Authorizer for every API route, e.g. an `HttpJwtAuthorizer` for a Cognito user pool. When set, callers
   * authenticate through it and `grantReadProgress`, `grantInitialize` and `grantCancel` are not available.
   *
   * @default HttpIamAuthorizer: callers sign requests with SigV4 and need `execute-api:Invoke`
   */
  readonly authorizer?: apigw.IHttpRouteAuthorizer;

  /**
   * Steady-state requests per second the API's default stage accepts before answering 429.
   *
   * @default 50
   */
  readonly throttlingRateLimit?: number;

  /**
   * Requests the API's default stage accepts in a burst above the steady rate.
   *
   * @default 100
   */
  readonly throttlingBurstLimit?: number;

  /**
   * Event bus that receives `Task Ended` and `Subtask Timed Out` events.
   *
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * Topic notified when any alarm goes off and when it clears.
   *
   * @default - no notification; the alarms are only visible in CloudWatch
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * Thresholds of the alarms that have one worth tuning.
   *
   * @default - the defaults of `SubtaskProgressAlarmThresholds`
   */
  readonly alarmThresholds?: SubtaskProgressAlarmThresholds;

  /**
   * What happens to the table and the log groups when they leave the stack or the stack is deleted.
   * `DESTROY` also requires `deletionProtection: false`.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Whether DynamoDB refuses to delete the table, whoever asks (CloudFormation included).
   *
   * @default true
   */
  readonly deletionProtection?: boolean;
}
