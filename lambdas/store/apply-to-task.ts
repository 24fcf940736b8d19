import { type ApplyResult, applyStatuses, type Outcome, type StatusUpdate } from '../core/apply-statuses';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy, sleep } from '../core/backoff';
import { RetriesExhaustedError, TaskNotFoundError, TaskNotReadyError } from '../core/errors';
import type { SubtaskRecord, TaskRecord } from '../core/task';
import type { TaskStore } from './task-store';

/**
 * The applier's optimistic-locking cycle (DESIGN §2 apply): read the task once, then the touched subtasks;
 * judge with the pure core; write each changed subtask conditioned on its own version and the generation. Only
 * statuses of the same subtask contend; on a conflict those alone are re-read, re-judged and retried.
 */

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
  /** Subtask writes that lost to another writer and were retried. */
  readonly conflicts: number;
  /** Subtask items written. */
  readonly writes: number;
}

/** Ready task or a transient error: until `ready`, subtask items may still be on their way (rule 2). */
export async function readyTask(store: TaskStore, taskId: string): Promise<TaskRecord> {
  const task = await store.getTask(taskId);
  if (task === undefined) throw new TaskNotFoundError(taskId);
  if (!task.ready) throw new TaskNotReadyError(taskId);
  return task;
}

/**
 * Applies `updates` to the subtasks of task `taskId` exactly once each, however many appliers race. Throws
 * `TaskNotFoundError` / `TaskNotReadyError` (transient), and `RetriesExhaustedError` when conflicts outlast the
 * attempt budget or the time left; whatever was written before a throw stays correct when the same updates are
 * delivered again.
 */
export async function applyToTask(
  store: TaskStore,
  taskId: string,
  updates: readonly StatusUpdate[],
  options: ApplyToTaskOptions = {},
): Promise<ApplyReport> {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const remaining = options.remainingTimeMs ?? (() => Number.POSITIVE_INFINITY);
  const minRemainingMs = options.minRemainingMs ?? 1_000;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? sleep;

  let task = await readyTask(store, taskId);
  const outcomes: (Outcome | undefined)[] = updates.map(() => undefined);
  let pending = updates.map((_, index) => index);
  let conflicts = 0;
  let writes = 0;

  for (let attempt = 1; pending.length > 0; attempt++) {
    if (remaining() < minRemainingMs) {
      throw new RetriesExhaustedError(
        `Out of time applying to task '${taskId}' after ${attempt - 1} attempts`,
      );
    }
    const batch = pending.map((index) => updates[index] as StatusUpdate);
    const subtasks = await store.getSubtasks(task, [...new Set(batch.map((update) => update.subtaskId))]);
    const result: ApplyResult = applyStatuses(task, subtasks, batch, now());
    const lost = await writeChanged(store, task, subtasks, result.changed);
    writes += result.changed.length - lost.size;
    const retry: number[] = [];
    result.outcomes.forEach((outcome, position) => {
      const index = pending[position] as number;
      if (lost.has((updates[index] as StatusUpdate).subtaskId)) retry.push(index);
      else outcomes[index] = outcome;
    });
    pending = retry;
    if (pending.length === 0) break;
    conflicts += lost.size;
    const delay = backoffDelayMs(policy, attempt, random);
    if (attempt >= policy.maxAttempts || remaining() - delay < minRemainingMs) {
      throw new RetriesExhaustedError(
        `Subtasks of task '${taskId}' kept changing: ${conflicts} conflicts in ${attempt} attempts`,
      );
    }
    await wait(delay);
    // A conflict may mean the task was initialized again: re-read it before rule 3 judges the subtasks.
    task = await readyTask(store, taskId);
  }
  return { outcomes: outcomes as Outcome[], conflicts, writes };
}

/** Writes every changed subtask at once; returns the ids whose write lost to another writer. */
async function writeChanged(
  store: TaskStore,
  task: TaskRecord,
  read: ReadonlyMap<string, SubtaskRecord>,
  changed: readonly SubtaskRecord[],
): Promise<Set<string>> {
  const results = await Promise.all(
    changed.map(async (subtask) => {
      const expected = read.get(subtask.subtask_id)?.version ?? 0;
      return (await store.writeSubtask(task, subtask, expected)) ? undefined : subtask.subtask_id;
    }),
  );
  return new Set(results.filter((id): id is string => id !== undefined));
}
