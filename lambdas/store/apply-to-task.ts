/**
 * The applier's optimistic-locking cycle (DESIGN §2 apply): read the task once, then the touched subtasks;
 * judge with the pure core; write each changed subtask conditioned on its own version and the generation. Only
 * statuses of the same subtask contend; on a conflict those alone are re-read, re-judged and retried.
 *
 * The first judgement rests on eventually consistent reads (half the read units; most deliveries change
 * nothing): a missed write can only make a changing status fail its version condition, which re-reads
 * consistently, or make a status look unknown, which is never dead-lettered before the task and then its
 * subtasks are read again consistently. A duplicate or stale verdict on an older item is one the latest item
 * gives too (stored statuses only move forward), or one a delivery a moment earlier would have had.
 */

import { type ApplyResult, applyStatuses, type Outcome, type StatusUpdate } from '../core/apply-statuses';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy, sleep } from '../core/backoff';
import { RetriesExhaustedError, TaskNotFoundError, TaskNotReadyError } from '../core/errors';
import type { SubtaskRecord, TaskRecord } from '../core/task';
import type { ApplierStore } from './task-store';

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

/**
 * Ready task or a transient error: until `ready`, subtask items may still be on their way (rule 2). An absent or
 * not-ready task on an eventually consistent read is read again consistently before it is said to be so.
 */
export async function readyTask(store: ApplierStore, taskId: string, consistent = true): Promise<TaskRecord> {
  const read = await store.getTask(taskId, { consistent });
  const task = read?.ready === true || consistent ? read : await store.getTask(taskId);
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
  store: ApplierStore,
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

  let consistent = false;
  /** Whether the judgement stands on a consistent read of the task, then of its subtasks, since the last conflict. */
  let confirmed = false;
  let task = await readyTask(store, taskId, consistent);
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
    const ids = [...new Set(batch.map((update) => update.subtaskId))];
    let subtasks = await store.getSubtasks(task, ids, { consistent });
    let result: ApplyResult = applyStatuses(task, subtasks, batch, now());
    if (!confirmed && result.outcomes.some((outcome) => outcome.kind === 'rejected')) {
      // Rule 3 on a read that may have missed a new item or a re-initialization: the task first (its
      // generation), then its subtasks, both consistently, before anything is dead-lettered.
      consistent = true;
      confirmed = true;
      task = await readyTask(store, taskId, consistent);
      subtasks = await store.getSubtasks(task, ids, { consistent });
      result = applyStatuses(task, subtasks, batch, now());
    }
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
    // A conflict means another writer, a stale read or a re-initialization: the subtasks are read consistently
    // from now on, and the task again only if they then look unknown (a new generation shows as absent items).
    consistent = true;
    confirmed = false;
  }
  return { outcomes: outcomes as Outcome[], conflicts, writes };
}

/** Writes every changed subtask at once; returns the ids whose write lost to another writer. */
async function writeChanged(
  store: ApplierStore,
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
