/**
 * The post-deploy smoke test: one small task taken through every function of the service, and a second one
 * canceled, each step waited for with a deadline. The first step that fails throws `SmokeTestFailure` naming the
 * piece most likely at fault, so an operator knows where to look before opening any log.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ProgressApiError, ProgressApiUnreachableError, SubtaskProgressClientError } from '../client/errors';
import type { ApiOptions } from '../client/http';
import { type SubtaskStatus, sendSubtaskStatuses } from '../client/producer';
import { getProgress, listSubtasks, type Progress } from '../client/progress-api';
import { cancelTask, initializeTask } from '../client/task-api';
import {
  ACTION,
  AFTER_FIRST_ROUND,
  AT_THE_END,
  FIRST_ROUND,
  SECOND_ROUND,
  TASK_A,
  TASK_B,
  TTL_DAYS,
} from './smoke-scenario';
import type { SmokeTarget } from './smoke-target';

export type SmokeStep = 'initialize' | 'cancel' | 'send' | 'apply' | 'fold' | 'end' | 'canceled';

export class SmokeTestFailure extends Error {
  override readonly name = 'SmokeTestFailure';
  constructor(
    readonly step: SmokeStep,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface StepReport {
  readonly step: SmokeStep;
  /** What was checked, in a line. */
  readonly detail: string;
  readonly ms: number;
}

export interface SmokeTestOptions {
  readonly target: SmokeTarget;
  /** Sends the statuses and reads the queues' depths when a step times out. */
  readonly sqs: SQSClient;
  /** How the API is called: credentials to sign with, another fetch. @default the client's */
  readonly api?: Pick<ApiOptions, 'credentials' | 'fetch'>;
  /** How long statuses may take from the queue to their subtask items. @default 60 s */
  readonly applyTimeoutMs?: number;
  /** How long applied statuses may take to reach the task's totals, and the last of them to end it. @default 60 s */
  readonly foldTimeoutMs?: number;
  /** How long a cancel may take to end the task: the deployed sweeper runs once a minute. @default 180 s */
  readonly cancelTimeoutMs?: number;
  /** @default 1 s */
  readonly pollIntervalMs?: number;
  /** Prefix of the two tasks' ids. @default `smoke-<UTC time>-<random>` */
  readonly taskPrefix?: string;
  readonly onStep?: (report: StepReport) => void;
}

export const SMOKE_DEFAULTS = {
  applyTimeoutMs: 60_000,
  foldTimeoutMs: 60_000,
  cancelTimeoutMs: 180_000,
  pollIntervalMs: 1_000,
} as const;

/** Each route the smoke test calls, and the construct's grant that lets a caller call it. */
const GRANTS = {
  'PUT /tasks/{task_id}': 'grantInitialize',
  'POST /tasks/{task_id}/cancel': 'grantCancel',
  'GET /tasks/{task_id}': 'grantReadProgress',
  'GET /tasks/{task_id}/subtasks': 'grantReadProgress',
} as const;
type Route = keyof typeof GRANTS;

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

function defaultPrefix(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `smoke-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** An API call's failure in an operator's words: what answered, and what to check. */
function apiFailureReason(error: unknown, route: Route, apiUrl: string): string | undefined {
  if (error instanceof ProgressApiUnreachableError) {
    return `${error.message}: is ${apiUrl} the stack's ApiUrl output (or is \`npm start\` running)?`;
  }
  if (error instanceof ProgressApiError) {
    const answered = `API answered ${error.status} to ${route} (${error.message})`;
    if (error.status === 403) {
      return (
        `${answered}: the caller needs ${GRANTS[route]} (execute-api:Invoke on the route); ` +
        'a signature complaint means the wrong region or credentials'
      );
    }
    if (error.status === 404) {
      return `${answered}: is ${apiUrl} the stack's ApiUrl output?`;
    }
    if (error.status === 429)
      return `${answered}: the stage's throttling; run again, or raise throttlingRateLimit`;
    if (error.status >= 500) {
      return `${answered}: read the API function's log (ApiServerErrorAlarm in docs/operations.md)`;
    }
    return answered;
  }
  if (error instanceof SubtaskProgressClientError) return error.message;
  if (error instanceof Error && error.name === 'CredentialsProviderError') {
    return `no AWS credentials to sign with (${error.message}): set AWS_PROFILE or AWS_ACCESS_KEY_ID`;
  }
  return undefined;
}

/** Runs `call`; a failure of it becomes the step's `SmokeTestFailure`, with the API's likely cause. */
async function calling<T>(step: SmokeStep, route: Route, apiUrl: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const reason = apiFailureReason(error, route, apiUrl);
    if (reason === undefined) throw error;
    throw new SmokeTestFailure(step, reason, { cause: error });
  }
}

interface Wait<T> {
  readonly value: T;
  readonly met: boolean;
}

async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  intervalMs: number,
): Promise<Wait<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return { value, met: true };
    if (Date.now() >= deadline) return { value, met: false };
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Messages waiting in and in flight from a queue; undefined when the caller may not read its attributes. */
async function queueDepth(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number } | undefined> {
  try {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  } catch {
    return undefined;
  }
}

/** The fields of a task's progress that the smoke test checks at its end, under `AT_THE_END`'s names. */
function endOf(progress: Progress): Record<keyof typeof AT_THE_END, string | number | boolean> {
  return {
    task_state: progress.task_state,
    attempted: progress.task_progress.attempted,
    succeeded: progress.task_progress.succeeded,
    failed: progress.task_progress.failed,
    skipped: progress.task_progress.skipped,
    subtasksSucceeded: progress.subtasks.succeeded,
    succeededFlag: progress.succeeded,
    message: progress.message,
  };
}

/** One run's settings and clock, and its steps, each of which either passes or throws `SmokeTestFailure`. */
class SmokeRun {
  private readonly api: ApiOptions;
  private readonly timeouts: Required<Pick<SmokeTestOptions, keyof typeof SMOKE_DEFAULTS>>;
  private stepStarted = Date.now();

  constructor(private readonly options: SmokeTestOptions) {
    const { target } = options;
    this.api = {
      ...options.api,
      apiUrl: target.apiUrl,
      ...(target.region === undefined ? {} : { region: target.region }),
    };
    this.timeouts = {
      applyTimeoutMs: options.applyTimeoutMs ?? SMOKE_DEFAULTS.applyTimeoutMs,
      foldTimeoutMs: options.foldTimeoutMs ?? SMOKE_DEFAULTS.foldTimeoutMs,
      cancelTimeoutMs: options.cancelTimeoutMs ?? SMOKE_DEFAULTS.cancelTimeoutMs,
      pollIntervalMs: options.pollIntervalMs ?? SMOKE_DEFAULTS.pollIntervalMs,
    };
  }

  private passed(step: SmokeStep, detail: string): void {
    this.options.onStep?.({ step, detail, ms: Date.now() - this.stepStarted });
    this.stepStarted = Date.now();
  }

  private call<T>(step: SmokeStep, route: Route, call: () => Promise<T>): Promise<T> {
    return calling(step, route, this.options.target.apiUrl, call);
  }

  private poll<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<Wait<T>> {
    return pollUntil(probe, done, timeoutMs, this.timeouts.pollIntervalMs);
  }

  private progress(step: SmokeStep, taskId: string): Promise<Progress> {
    return this.call(step, 'GET /tasks/{task_id}', async () => {
      const result = await getProgress(taskId, this.api);
      // No ETag was sent, so the API has no reason to answer 304.
      if (result.status !== 200) throw new SubtaskProgressClientError(`GET /tasks/${taskId} answered 304`);
      return result.progress;
    });
  }

  /** Creates the task over the API; returns it as the API answered, ready and in `PROGRESS`. */
  async initialize(taskId: string, task: { readonly subtaskIds: readonly string[]; readonly total: number }) {
    const { progress } = await this.call('initialize', 'PUT /tasks/{task_id}', () =>
      initializeTask(
        { taskId, actionName: ACTION, total: task.total, subtaskIds: task.subtaskIds, ttlDays: TTL_DAYS },
        this.api,
      ),
    );
    if (progress.task_state !== 'PROGRESS' || progress.subtasks.total !== task.subtaskIds.length) {
      throw new SmokeTestFailure(
        'initialize',
        `PUT /tasks/${taskId} answered a task ${progress.task_state} with ${progress.subtasks.total} subtasks, ` +
          `not a new task in PROGRESS with ${task.subtaskIds.length}: ${progress.message}`,
      );
    }
    this.passed('initialize', `${taskId} initialized over the API (${task.subtaskIds.length} subtasks)`);
    return progress;
  }

  async cancel(taskId: string): Promise<void> {
    const progress = await this.call('cancel', 'POST /tasks/{task_id}/cancel', () =>
      cancelTask(taskId, this.api),
    );
    if (!progress.cancel_requested) {
      throw new SmokeTestFailure('cancel', `POST /tasks/${taskId}/cancel answered without cancel_requested`);
    }
    this.passed('cancel', `cancel of ${taskId} accepted`);
  }

  /** Sends statuses through the queue and waits until the applier wrote each into its subtask's item. */
  async sendAndApply(taskId: string, statuses: readonly SubtaskStatus[]): Promise<void> {
    const { target, sqs } = this.options;
    const { failed } = await sendSubtaskStatuses(taskId, statuses, {
      queueUrl: target.queueUrl,
      client: sqs,
    });
    if (failed.length > 0) {
      throw new SmokeTestFailure(
        'send',
        `SQS refused ${failed.length} of ${statuses.length} statuses (${failed[0]?.reason}): the sender needs ` +
          'grantSendStatus (sqs:SendMessage on the QueueUrl output)',
      );
    }
    this.passed('send', `${statuses.length} statuses sent to the status queue`);
    const applied = await this.poll(
      () =>
        this.call('apply', 'GET /tasks/{task_id}/subtasks', () =>
          listSubtasks(taskId, { ...this.api, limit: 100 }),
        ),
      (page) =>
        statuses.every((status) =>
          page.subtasks.some(
            (subtask) =>
              subtask.subtask_id === status.task_id &&
              subtask.state === status.state &&
              subtask.attempted === status.attempted,
          ),
        ),
      this.timeouts.applyTimeoutMs,
    );
    if (!applied.met) throw await notApplied(this.options, statuses.length, this.timeouts.applyTimeoutMs);
    this.passed('apply', `the applier wrote ${statuses.length} subtask items`);
  }

  /** Waits until the first round is in the task's totals; `initialVersion` tells "never folded" from "wrong". */
  async folded(taskId: string, initialVersion: number): Promise<void> {
    const { foldTimeoutMs } = this.timeouts;
    const folded = await this.poll(
      () => this.progress('fold', taskId),
      (progress) =>
        progress.task_progress.attempted === AFTER_FIRST_ROUND.attempted &&
        progress.task_progress.succeeded === AFTER_FIRST_ROUND.succeeded &&
        progress.in_flight.attempted === AFTER_FIRST_ROUND.inFlightAttempted &&
        progress.subtasks.succeeded === AFTER_FIRST_ROUND.subtasksSucceeded,
      foldTimeoutMs,
    );
    const progress = folded.value;
    if (!folded.met) {
      // Every fold moves the task's version (its ETag), whatever it wrote.
      throw new SmokeTestFailure(
        'fold',
        progress.version === initialVersion
          ? `no aggregator invocation within ${seconds(foldTimeoutMs)}: the task's totals never moved although ` +
              "its subtasks were applied: check the aggregator's event source mapping " +
              '(AggregatorEventSourceMappingId: State Enabled, its filters) and its log for "Fold skipped" ' +
              '(an AccessDenied there is a missing grant)'
          : `the aggregator folded task ${taskId} (version ${progress.version}) but not to what was applied ` +
              `within ${seconds(foldTimeoutMs)}: ${progress.task_progress.succeeded} of ` +
              `${progress.task_progress.attempted} items, ${progress.in_flight.attempted} in flight (expected ` +
              `${AFTER_FIRST_ROUND.succeeded} of ${AFTER_FIRST_ROUND.attempted}, ` +
              `${AFTER_FIRST_ROUND.inFlightAttempted}): read the aggregator's log`,
      );
    }
    this.passed('fold', `the aggregator folded the progress: "${progress.message}"`);
  }

  /** Waits for the ending the last round makes, and checks it is the one `Task Ended` announces. */
  async ended(taskId: string): Promise<void> {
    const { foldTimeoutMs } = this.timeouts;
    const ended = await this.poll(
      () => this.progress('end', taskId),
      (progress) => progress.task_state !== 'PROGRESS',
      foldTimeoutMs,
    );
    const progress = ended.value;
    if (!ended.met) {
      throw new SmokeTestFailure(
        'end',
        `task ${taskId} still PROGRESS ${seconds(foldTimeoutMs)} after its last subtask ended ` +
          `(${progress.subtasks.remaining} subtasks remaining in its totals): the fold that sees every subtask ` +
          "ended ends the task: read the aggregator's log (FoldsSkipped, AggregatorErrorAlarm in " +
          'docs/operations.md)',
      );
    }
    const expected: Readonly<Record<string, unknown>> = AT_THE_END;
    const differing = Object.entries(endOf(progress))
      .filter(([field, value]) => value !== expected[field])
      .map(
        ([field, value]) => `${field} ${JSON.stringify(value)} (expected ${JSON.stringify(expected[field])})`,
      );
    if (differing.length > 0 || progress.ended_at === undefined) {
      throw new SmokeTestFailure(
        'end',
        `task ${taskId} ended ${progress.task_state}${progress.end_reason ? ` (${progress.end_reason})` : ''} ` +
          `but not as its statuses say: ${differing.join(', ') || 'no ended_at'}: the deployed code is not the ` +
          'code tested, or a status was lost (see the dead-letter queue)',
      );
    }
    this.passed('end', `task ${taskId} ended ${progress.task_state}: "${progress.message}"`);
  }

  /** Waits for the canceled task to end `CANCELED`: the sweeper revokes its subtasks, the fold ends it. */
  async canceled(taskId: string): Promise<void> {
    const { cancelTimeoutMs } = this.timeouts;
    const canceled = await this.poll(
      () => this.progress('canceled', taskId),
      (progress) => progress.task_state !== 'PROGRESS',
      cancelTimeoutMs,
    );
    if (!canceled.met) {
      const revoked = await this.call('canceled', 'GET /tasks/{task_id}/subtasks', () =>
        listSubtasks(taskId, { ...this.api, state: 'REVOKED', limit: 100 }),
      );
      throw new SmokeTestFailure(
        'canceled',
        revoked.subtasks.length === 0
          ? `no subtask of ${taskId} revoked within ${seconds(cancelTimeoutMs)} of its cancel: the sweeper ` +
              'revokes them on its one-minute schedule: check that its rule is enabled and read its log ' +
              '(SweeperErrorAlarm)'
          : `${revoked.subtasks.length} subtasks of ${taskId} revoked, but the task not ended CANCELED within ` +
              `${seconds(cancelTimeoutMs)}: read the aggregator's log (FoldsSkipped, AggregatorErrorAlarm)`,
      );
    }
    if (canceled.value.task_state !== 'CANCELED') {
      throw new SmokeTestFailure(
        'canceled',
        `task ${taskId} ended ${canceled.value.task_state}, not CANCELED: "${canceled.value.message}"`,
      );
    }
    this.passed('canceled', `task ${taskId} ended CANCELED`);
  }
}

/**
 * Runs the smoke test; resolves when every step passed, throws `SmokeTestFailure` at the first that did not.
 * Task B is canceled first, so that the deployed sweeper's minute passes while task A goes through the applier
 * and the aggregator.
 */
export async function runSmokeTest(options: SmokeTestOptions): Promise<void> {
  const prefix = options.taskPrefix ?? defaultPrefix();
  const [taskA, taskB] = [`${prefix}-a`, `${prefix}-b`];
  const run = new SmokeRun(options);
  const { version } = await run.initialize(taskA, TASK_A);
  await run.initialize(taskB, TASK_B);
  await run.cancel(taskB);
  await run.sendAndApply(taskA, FIRST_ROUND);
  await run.folded(taskA, version);
  await run.sendAndApply(taskA, SECOND_ROUND);
  await run.ended(taskA);
  await run.canceled(taskB);
}

/** Why statuses did not reach their subtask items, from where they are now. */
async function notApplied(
  options: SmokeTestOptions,
  sent: number,
  timeoutMs: number,
): Promise<SmokeTestFailure> {
  const { sqs, target } = options;
  const waited = seconds(timeoutMs);
  const [queue, deadLetters] = await Promise.all([
    queueDepth(sqs, target.queueUrl),
    target.deadLetterQueueUrl === undefined ? undefined : queueDepth(sqs, target.deadLetterQueueUrl),
  ]);
  if (queue !== undefined && queue.visible > 0) {
    return new SmokeTestFailure(
      'apply',
      `status messages not consumed within ${waited} (${queue.visible} still waiting in the queue): check the ` +
        "applier's SQS event source (ApplierEventSourceMappingId: State Enabled) and that the queue is the " +
        "stack's QueueUrl output",
    );
  }
  const dead =
    deadLetters !== undefined && deadLetters.visible > 0 ? `${deadLetters.visible} dead letters, ` : '';
  return new SmokeTestFailure(
    'apply',
    `${sent} statuses sent but not applied within ${waited} (${dead}${queue?.inFlight ?? 'unknown'} in flight): ` +
      "the applier consumes them but does not write: read its log and the dead-letter queue's error_code " +
      '(DeadLetterAlarm in docs/operations.md)',
  );
}
