import { type ApplyResult, applyStatuses, type Outcome, type StatusUpdate } from '../core/apply-statuses';
import { RetriesExhaustedError, TaskNotFoundError } from '../core/errors';
import type { TaskRecord } from '../core/task';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy, sleep } from './backoff';
import type { TaskStore, TransactionWrite } from './task-store';

/**
 * The optimistic-locking cycle: read the task, then its subtasks; compute with the pure core; commit under a
 * version condition; on conflict, back off and do it all again on fresh data.
 */

/** A transaction holds at most 100 actions: the task update and 99 subtask puts. */
export const MAX_SUBTASKS_PER_TRANSACTION = 99;

export interface ApplyToTaskOptions {
  readonly retry?: RetryPolicy;
  /** How long the caller may still take (a Lambda's `getRemainingTimeInMillis`); unbounded when absent. */
  readonly remainingTimeMs?: () => number;
  /** Give up rather than start a wait or an attempt with less time than this left. */
  readonly minRemainingMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface ApplyReport {
  /** One outcome per update, in the order given. */
  readonly outcomes: readonly Outcome[];
  /** The task as this applier last saw or wrote it. */
  readonly task: TaskRecord;
  /** Read-compute-commit cycles run, first attempts included. */
  readonly attempts: number;
  /** Commits canceled because another writer got there first. */
  readonly conflicts: number;
  /** Every transaction sent, committed or canceled, for metering. */
  readonly transactions: readonly TransactionWrite[];
}

/** Splits updates, in order, into runs that each touch at most `limit` distinct subtasks. */
export function chunkBySubtasks(updates: readonly StatusUpdate[], limit: number): StatusUpdate[][] {
  const chunks: StatusUpdate[][] = [];
  let chunk: StatusUpdate[] = [];
  let subtasks = new Set<string>();
  for (const update of updates) {
    if (!subtasks.has(update.subtaskId) && subtasks.size === limit) {
      chunks.push(chunk);
      chunk = [];
      subtasks = new Set();
    }
    subtasks.add(update.subtaskId);
    chunk.push(update);
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * Applies `updates` to task `taskId` exactly once each, however many appliers race on the task. Throws
 * `TaskNotFoundError` for a task not (yet) initialized and `RetriesExhaustedError` when conflicts outlast the
 * attempt budget or the time left; a batch larger than one transaction commits in chained transactions, and
 * whatever was committed before a throw stays correct when the same updates are delivered again.
 */
export async function applyToTask(
  store: TaskStore,
  taskId: string,
  updates: readonly StatusUpdate[],
  options: ApplyToTaskOptions = {},
): Promise<ApplyReport> {
  if (updates.length === 0) throw new RangeError('applyToTask needs at least one update');
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const remaining = options.remainingTimeMs ?? (() => Number.POSITIVE_INFINITY);
  const minRemainingMs = options.minRemainingMs ?? 1_000;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? sleep;

  const outcomes: Outcome[] = [];
  const transactions: TransactionWrite[] = [];
  let attempts = 0;
  let conflicts = 0;
  let lastTask: TaskRecord | undefined;

  for (const chunk of chunkBySubtasks(updates, MAX_SUBTASKS_PER_TRANSACTION)) {
    const subtaskIds = [...new Set(chunk.map((update) => update.subtaskId))];
    for (let attempt = 1; ; attempt++) {
      if (remaining() < minRemainingMs) {
        throw new RetriesExhaustedError(
          `Out of time applying to task '${taskId}' after ${attempts} attempts`,
        );
      }
      attempts++;
      const task = await store.getTask(taskId);
      if (task === undefined) throw new TaskNotFoundError(taskId);
      const subtasks = await store.getSubtasks(taskId, subtaskIds);
      const result: ApplyResult = applyStatuses(task, subtasks, chunk, now());
      lastTask = result.task;
      if (result.changed.length === 0) {
        outcomes.push(...result.outcomes);
        break;
      }
      const write = await store.commit(task, result.task, result.changed, subtasks);
      transactions.push(write);
      if (write.committed) {
        outcomes.push(...result.outcomes);
        break;
      }
      conflicts++;
      const delay = backoffDelayMs(policy, attempt, random);
      if (attempt >= policy.maxAttempts || remaining() - delay < minRemainingMs) {
        throw new RetriesExhaustedError(
          `Task '${taskId}' kept changing: ${conflicts} conflicts in ${attempts} attempts`,
        );
      }
      await wait(delay);
    }
  }
  if (lastTask === undefined) throw new RangeError('unreachable: every chunk ends with a task read');
  return { outcomes, task: lastTask, attempts, conflicts, transactions };
}
