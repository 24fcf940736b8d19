/**
 * The construct's settings as it builds with them: every prop of `SubtaskProgressProps` with its default filled in,
 * checked against the limits AWS sets before anything is built.
 */

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AGGREGATOR, API, APPLIER, STATUS_QUEUE, SWEEPER } from '../lambdas/service-settings';
import type { SubtaskProgressAlarmThresholds, SubtaskProgressProps } from './subtask-progress-props';

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

/** A function's timeout and memory: the props where given, else the function's defaults. */
function sizing(
  timeout: Duration | undefined,
  memorySize: number | undefined,
  defaults: { readonly timeoutSeconds: number; readonly memoryMiB: number },
) {
  return {
    timeout: timeout ?? Duration.seconds(defaults.timeoutSeconds),
    memorySize: memorySize ?? defaults.memoryMiB,
  };
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
      ...sizing(props.applierTimeout, props.applierMemorySize, APPLIER),
      maxConcurrency: props.maxConcurrency ?? APPLIER.maxConcurrency,
    },
    aggregator: {
      batchSize: props.aggregatorBatchSize ?? AGGREGATOR.batchSize,
      maxBatchingWindow:
        props.aggregatorMaxBatchingWindow ?? Duration.seconds(AGGREGATOR.maxBatchingWindowSeconds),
      parallelizationFactor: props.aggregatorParallelizationFactor ?? AGGREGATOR.parallelizationFactor,
      ...sizing(props.aggregatorTimeout, props.aggregatorMemorySize, AGGREGATOR),
      reservedConcurrency: props.aggregatorReservedConcurrency ?? AGGREGATOR.reservedConcurrency,
    },
    api: {
      ...sizing(props.apiTimeout, props.apiMemorySize, API),
      reservedConcurrency: props.apiReservedConcurrency ?? API.reservedConcurrency,
      throttlingRateLimit: props.throttlingRateLimit ?? API_THROTTLING.rateLimit,
      throttlingBurstLimit: props.throttlingBurstLimit ?? API_THROTTLING.burstLimit,
    },
    sweeper: {
      ...sizing(props.sweeperTimeout, props.sweeperMemorySize, SWEEPER),
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
