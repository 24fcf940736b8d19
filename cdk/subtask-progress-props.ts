import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { AGGREGATOR, API, APPLIER, STATUS_QUEUE, SWEEPER } from '../lambdas/service-settings';

/** Defaults of the default stage's throttling, sized for dashboards and CLIs polling a few tasks each. */
const API_THROTTLING = { rateLimit: 50, burstLimit: 100 } as const;

/** Defaults of the alarms whose threshold is worth tuning; the others go off at the first occurrence. */
const ALARM_DEFAULTS = {
  oldestStatusAgeMinutes: 15,
  iteratorAgeMinutes: AGGREGATOR.iteratorAgeAlarmMinutes,
  statusesRetriedPerFiveMinutes: 100,
  apiServerErrorsPerFiveMinutes: 0,
  functionThrottlesPerFiveMinutes: 0,
  tableThrottlesPerFiveMinutes: 0,
} as const;

/** Limits AWS sets on the settings below (Lambda, SQS, event source mappings, HTTP API integrations). */
const LIMITS = {
  maxConcurrency: { min: 2, max: 1000 },
  batchSize: { min: 1, max: 10_000 },
  /** An SQS event source needs a batching window of at least 1 s for batches over 10 messages. */
  sqsBatchSizeWithoutWindow: 10,
  batchingWindowSeconds: { min: 0, max: 300 },
  parallelizationFactor: { min: 1, max: 10 },
  functionTimeoutSeconds: { min: 1, max: 900 },
  apiTimeoutSeconds: { min: 1, max: 30 },
  memoryMiB: { min: 128, max: 10_240 },
  /** Our own bound: a run's subtask writes must fit its timeout, and the sweeper's config accepts no more. */
  sweeperSubtasksPerRun: { min: 1, max: 1_000_000 },
  retentionSeconds: { min: 60, max: 14 * 24 * 60 * 60 },
  /** Stream records live 24 hours: an iterator-age alarm at or above that would fire after the loss. */
  iteratorAgeMinutes: { max: 24 * 60 },
} as const;

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

/** Every setting with its default filled in, after validation. */
export interface ResolvedSettings {
  readonly applier: {
    readonly batchSize: number;
    readonly maxBatchingWindow: Duration;
    readonly timeout: Duration;
    readonly memorySize: number;
    readonly maxConcurrency: number;
  };
  readonly aggregator: {
    readonly batchSize: number;
    readonly maxBatchingWindow: Duration;
    readonly parallelizationFactor: number;
    readonly timeout: Duration;
    readonly memorySize: number;
    readonly reservedConcurrency: number;
  };
  readonly api: {
    readonly timeout: Duration;
    readonly memorySize: number;
    readonly reservedConcurrency: number;
    readonly throttlingRateLimit: number;
    readonly throttlingBurstLimit: number;
  };
  readonly sweeper: {
    readonly timeout: Duration;
    readonly memorySize: number;
    readonly subtasksPerRun: number;
  };
  readonly statusRetention: Duration;
  readonly deadLetterRetention: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly deletionProtection: boolean;
  readonly alarmThresholds: Required<SubtaskProgressAlarmThresholds>;
}

/**
 * Validates the props and fills in the defaults. Throws on the first setting AWS would reject at deployment
 * (or that would make an alarm useless), naming the prop.
 */
export function resolveSettings(props: SubtaskProgressProps): ResolvedSettings {
  const settings: ResolvedSettings = {
    applier: {
      batchSize: props.applierBatchSize ?? APPLIER.batchSize,
      maxBatchingWindow: props.applierMaxBatchingWindow ?? Duration.seconds(APPLIER.maxBatchingWindowSeconds),
      timeout: props.applierTimeout ?? Duration.seconds(APPLIER.timeoutSeconds),
      memorySize: props.applierMemorySize ?? APPLIER.memoryMiB,
      maxConcurrency: props.maxConcurrency ?? APPLIER.maxConcurrency,
    },
    aggregator: {
      batchSize: props.aggregatorBatchSize ?? AGGREGATOR.batchSize,
      maxBatchingWindow:
        props.aggregatorMaxBatchingWindow ?? Duration.seconds(AGGREGATOR.maxBatchingWindowSeconds),
      parallelizationFactor: props.aggregatorParallelizationFactor ?? AGGREGATOR.parallelizationFactor,
      timeout: props.aggregatorTimeout ?? Duration.seconds(AGGREGATOR.timeoutSeconds),
      memorySize: props.aggregatorMemorySize ?? AGGREGATOR.memoryMiB,
      reservedConcurrency: props.aggregatorReservedConcurrency ?? AGGREGATOR.reservedConcurrency,
    },
    api: {
      timeout: props.apiTimeout ?? Duration.seconds(API.timeoutSeconds),
      memorySize: props.apiMemorySize ?? API.memoryMiB,
      reservedConcurrency: props.apiReservedConcurrency ?? API.reservedConcurrency,
      throttlingRateLimit: props.throttlingRateLimit ?? API_THROTTLING.rateLimit,
      throttlingBurstLimit: props.throttlingBurstLimit ?? API_THROTTLING.burstLimit,
    },
    sweeper: {
      timeout: props.sweeperTimeout ?? Duration.seconds(SWEEPER.timeoutSeconds),
      memorySize: props.sweeperMemorySize ?? SWEEPER.memoryMiB,
      subtasksPerRun: props.sweeperSubtasksPerRun ?? SWEEPER.subtasksPerRun,
    },
    statusRetention: props.statusRetention ?? Duration.days(STATUS_QUEUE.retentionDays),
    deadLetterRetention: props.deadLetterRetention ?? Duration.days(STATUS_QUEUE.deadLetterRetentionDays),
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    deletionProtection: props.deletionProtection ?? true,
    alarmThresholds: { ...ALARM_DEFAULTS, ...definedOnly(props.alarmThresholds ?? {}) },
  };
  validate(settings);
  return settings;
}

function validate({
  applier,
  aggregator,
  api,
  sweeper,
  statusRetention,
  deadLetterRetention,
  removalPolicy,
  deletionProtection,
  alarmThresholds,
}: ResolvedSettings): void {
  integerIn('maxConcurrency', applier.maxConcurrency, LIMITS.maxConcurrency, 'limits of an SQS event source');
  integerIn('applierBatchSize', applier.batchSize, LIMITS.batchSize);
  secondsIn('applierMaxBatchingWindow', applier.maxBatchingWindow, LIMITS.batchingWindowSeconds);
  if (applier.batchSize > LIMITS.sqsBatchSizeWithoutWindow && seconds(applier.maxBatchingWindow) < 1) {
    throw new Error(
      `applierMaxBatchingWindow must be at least 1 s when applierBatchSize is over ` +
        `${LIMITS.sqsBatchSizeWithoutWindow} (an SQS event source rule), got ${seconds(applier.maxBatchingWindow)} s`,
    );
  }
  wholeSecondsIn('applierTimeout', applier.timeout, LIMITS.functionTimeoutSeconds);
  integerIn('applierMemorySize', applier.memorySize, LIMITS.memoryMiB);

  integerIn('aggregatorBatchSize', aggregator.batchSize, LIMITS.batchSize);
  secondsIn('aggregatorMaxBatchingWindow', aggregator.maxBatchingWindow, LIMITS.batchingWindowSeconds);
  integerIn(
    'aggregatorParallelizationFactor',
    aggregator.parallelizationFactor,
    LIMITS.parallelizationFactor,
  );
  wholeSecondsIn('aggregatorTimeout', aggregator.timeout, LIMITS.functionTimeoutSeconds);
  integerIn('aggregatorMemorySize', aggregator.memorySize, LIMITS.memoryMiB);
  positiveInteger('aggregatorReservedConcurrency', aggregator.reservedConcurrency);

  wholeSecondsIn('apiTimeout', api.timeout, LIMITS.apiTimeoutSeconds);
  integerIn('apiMemorySize', api.memorySize, LIMITS.memoryMiB);
  positiveInteger('apiReservedConcurrency', api.reservedConcurrency);
  if (!(Number.isFinite(api.throttlingRateLimit) && api.throttlingRateLimit > 0)) {
    throw new Error(
      `throttlingRateLimit must be a positive number of requests per second, got ${api.throttlingRateLimit}`,
    );
  }
  positiveInteger('throttlingBurstLimit', api.throttlingBurstLimit);

  wholeSecondsIn('sweeperTimeout', sweeper.timeout, LIMITS.functionTimeoutSeconds);
  integerIn('sweeperMemorySize', sweeper.memorySize, LIMITS.memoryMiB);
  integerIn('sweeperSubtasksPerRun', sweeper.subtasksPerRun, LIMITS.sweeperSubtasksPerRun, 'the sweeper');

  secondsIn('statusRetention', statusRetention, LIMITS.retentionSeconds);
  secondsIn('deadLetterRetention', deadLetterRetention, LIMITS.retentionSeconds);
  if (seconds(deadLetterRetention) < seconds(statusRetention)) {
    throw new Error(
      'deadLetterRetention must be at least statusRetention: SQS keeps the enqueue time of a dead letter, ' +
        'so a shorter retention would drop statuses as soon as they are dead-lettered',
    );
  }

  if (removalPolicy === RemovalPolicy.DESTROY && deletionProtection) {
    throw new Error(
      'removalPolicy DESTROY cannot delete a table with deletion protection: ' +
        'set deletionProtection: false as well',
    );
  }

  const { oldestStatusAgeMinutes, iteratorAgeMinutes, ...counts } = alarmThresholds;
  positiveNumber('alarmThresholds.oldestStatusAgeMinutes', oldestStatusAgeMinutes);
  positiveNumber('alarmThresholds.iteratorAgeMinutes', iteratorAgeMinutes);
  if (iteratorAgeMinutes >= LIMITS.iteratorAgeMinutes.max) {
    throw new Error(
      `alarmThresholds.iteratorAgeMinutes must be under ${LIMITS.iteratorAgeMinutes.max} ` +
        `(the stream's 24-hour retention), got ${iteratorAgeMinutes}`,
    );
  }
  for (const [name, value] of Object.entries(counts)) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new Error(`alarmThresholds.${name} must be a non-negative number, got ${value}`);
    }
  }
}

function seconds(duration: Duration): number {
  return duration.toMilliseconds({ integral: false }) / 1000;
}

function integerIn(
  name: string,
  value: number,
  range: { min: number; max: number },
  why = 'AWS limits',
): void {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new Error(`${name} must be an integer from ${range.min} to ${range.max} (${why}), got ${value}`);
  }
}

function secondsIn(name: string, duration: Duration, range: { min: number; max: number }): void {
  const value = seconds(duration);
  if (!(value >= range.min && value <= range.max)) {
    throw new Error(`${name} must be from ${range.min} s to ${range.max} s (AWS limits), got ${value} s`);
  }
}

/** Lambda timeouts are whole seconds. */
function wholeSecondsIn(name: string, duration: Duration, range: { min: number; max: number }): void {
  const value = seconds(duration);
  if (!(Number.isInteger(value) && value >= range.min && value <= range.max)) {
    throw new Error(`${name} must be whole seconds from ${range.min} s to ${range.max} s, got ${value} s`);
  }
}

function positiveInteger(name: string, value: number): void {
  if (!(Number.isInteger(value) && value > 0)) {
    throw new Error(`${name} must be a positive integer, got ${value}`);
  }
}

function positiveNumber(name: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new Error(`${name} must be a positive number, got ${value}`);
  }
}

/** Drops keys set to `undefined`, so that they do not override the defaults they were meant to keep. */
function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}
