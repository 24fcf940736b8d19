/**
 * Round 1's records and pure core (`lambdas/core/task.ts` and `apply-statuses.ts` at b7f12fc), frozen here as the
 * bench's comparison row once round 2 replaced them. Trimmed to what the row needs: no options, TTL or
 * initialize digests. One deliberate change: statuses are judged by round 2's rules (rule 5 also calls a status
 * with equal retries and fewer attempted items stale), so both rows of a bench apply exactly the same statuses.
 *
 * Layout: the task item and its subtask items share the partition `TASK#<task_id>`; every status commits the
 * task's totals and the changed subtasks in one transaction conditioned on the task's version.
 */

import { isStale } from '../../lambdas/core/apply-statuses';
import {
  createSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  sameStatus,
} from '../../lambdas/core/subtask-status';
import { TABLE_KEYS } from '../../lambdas/service-settings';

export type Round1TaskState = 'PROGRESS' | 'SUCCESS' | 'FAILURE';

export interface Round1TaskOutput {
  readonly action_name: string;
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly total: number;
  readonly duration_ms: number;
  /** Epoch seconds (float), as in the reference. */
  readonly start_time: number;
}

export interface Round1TaskRecord {
  readonly task_id: string;
  /** Bumped by exactly 1 on every commit: the optimistic lock. */
  readonly version: number;
  readonly task_state: Round1TaskState;
  readonly task_output: Round1TaskOutput;
  readonly subtasks: { readonly total: number; readonly succeeded: number; readonly failed: number };
  readonly created_at: string;
  readonly updated_at: string;
}

export interface Round1SubtaskRecord {
  readonly task_id: string;
  readonly subtask_id: string;
  readonly status: SubtaskStatus;
  /** The task version this status was committed with (0 before any status); guards the subtask's own write. */
  readonly updated_version: number;
  readonly updated_at: string;
}

export interface Round1StatusUpdate {
  readonly subtaskId: string;
  readonly status: SubtaskStatus;
}

export type Round1Outcome = 'applied' | 'duplicate' | 'stale' | 'rejected';

export interface Round1ApplyResult {
  /** The task after the batch; the same object, version unchanged, when nothing applied. */
  readonly task: Round1TaskRecord;
  /** Subtask records to write, one per changed subtask, in first-touched order. */
  readonly changed: readonly Round1SubtaskRecord[];
  readonly outcomes: readonly Round1Outcome[];
}

export interface Round1InitializeRequest {
  readonly taskId: string;
  readonly actionName: string;
  readonly total: number;
  readonly subtaskIds: readonly string[];
}

/** The task `PROGRESS` at version 1 with zero counts; every subtask `QUEUING`. */
export function round1InitializeTask(
  request: Round1InitializeRequest,
  nowMs: number,
): { task: Round1TaskRecord; subtasks: Round1SubtaskRecord[] } {
  const now = new Date(nowMs).toISOString();
  const task: Round1TaskRecord = {
    task_id: request.taskId,
    version: 1,
    task_state: 'PROGRESS',
    task_output: {
      action_name: request.actionName,
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      total: request.total,
      duration_ms: 0,
      start_time: nowMs / 1000,
    },
    subtasks: { total: request.subtaskIds.length, succeeded: 0, failed: 0 },
    created_at: now,
    updated_at: now,
  };
  const subtasks = request.subtaskIds.map(
    (subtaskId): Round1SubtaskRecord => ({
      task_id: request.taskId,
      subtask_id: subtaskId,
      status: createSubtaskStatus(subtaskId),
      updated_version: 0,
      updated_at: now,
    }),
  );
  return { task, subtasks };
}

function round1Judge(stored: SubtaskStatus | undefined, update: Round1StatusUpdate): Round1Outcome {
  if (stored === undefined) return 'rejected';
  if (isTerminalState(stored.state)) return 'duplicate';
  if (isStale(update.status, stored)) return 'stale';
  if (sameStatus(update.status, stored)) return 'duplicate';
  return 'applied';
}

/**
 * Applies `updates` (in order) to `task`, whose subtasks as read are `subtasks`: terminal statuses add their
 * counts to the task's totals, and the task ends once every subtask has.
 */
export function round1ApplyStatuses(
  task: Round1TaskRecord,
  subtasks: ReadonlyMap<string, Round1SubtaskRecord>,
  updates: readonly Round1StatusUpdate[],
  nowMs: number,
): Round1ApplyResult {
  const current = new Map(subtasks);
  const changed = new Map<string, Round1SubtaskRecord>();
  let output = task.task_output;
  let counters = task.subtasks;

  const outcomes = updates.map((update) => {
    const stored = current.get(update.subtaskId);
    const outcome = round1Judge(stored?.status, update);
    if (outcome !== 'applied' || stored === undefined) return outcome;
    const { status } = update;
    const record = { ...stored, status };
    current.set(update.subtaskId, record);
    changed.set(update.subtaskId, record);
    if (isTerminalState(status.state)) {
      output = {
        ...output,
        attempted: output.attempted + status.attempted,
        succeeded: output.succeeded + status.succeeded,
        failed: output.failed + status.failed,
        skipped: output.skipped + status.skipped,
      };
      counters =
        status.state === 'SUCCESS'
          ? { ...counters, succeeded: counters.succeeded + 1 }
          : { ...counters, failed: counters.failed + 1 };
    }
    return outcome;
  });

  if (changed.size === 0) return { task, changed: [], outcomes };

  const version = task.version + 1;
  const updatedAt = new Date(nowMs).toISOString();
  const elapsedMs = Math.round(nowMs - output.start_time * 1000);
  output = { ...output, duration_ms: Math.max(output.duration_ms, elapsedMs) };
  const ended = counters.succeeded + counters.failed >= counters.total;
  const next: Round1TaskRecord = {
    ...task,
    version,
    task_state: ended ? 'SUCCESS' : 'PROGRESS',
    task_output: output,
    subtasks: counters,
    updated_at: updatedAt,
  };
  const written = [...changed.values()].map((record) => ({
    ...record,
    updated_version: version,
    updated_at: updatedAt,
  }));
  return { task: next, changed: written, outcomes };
}

// --- Items -----------------------------------------------------------------------------------------------------

const ROUND1_TASK_SORT_KEY = 'TASK';
export const ROUND1_SUBTASK_SORT_KEY_PREFIX = 'SUB#';

export type Round1ItemKey = {
  readonly [K in typeof TABLE_KEYS.partitionKey | typeof TABLE_KEYS.sortKey]: string;
};

export function round1TaskPartition(taskId: string): string {
  return `TASK#${taskId}`;
}

export function round1TaskKey(taskId: string): Round1ItemKey {
  return {
    [TABLE_KEYS.partitionKey]: round1TaskPartition(taskId),
    [TABLE_KEYS.sortKey]: ROUND1_TASK_SORT_KEY,
  };
}

export function round1SubtaskKey(taskId: string, subtaskId: string): Round1ItemKey {
  return {
    [TABLE_KEYS.partitionKey]: round1TaskPartition(taskId),
    [TABLE_KEYS.sortKey]: `${ROUND1_SUBTASK_SORT_KEY_PREFIX}${subtaskId}`,
  };
}

export function round1TaskItem(task: Round1TaskRecord): Round1TaskRecord & Round1ItemKey {
  return { ...task, ...round1TaskKey(task.task_id) };
}

export function round1SubtaskItem(subtask: Round1SubtaskRecord): Round1SubtaskRecord & Round1ItemKey {
  return { ...subtask, ...round1SubtaskKey(subtask.task_id, subtask.subtask_id) };
}

function round1WithoutKeys<T>(item: Record<string, unknown>): T {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, ...record } = item;
  return record as T;
}

/** Items come from the bench's own writes, so they are trusted as records. */
export function round1TaskFromItem(item: Record<string, unknown>): Round1TaskRecord {
  return round1WithoutKeys<Round1TaskRecord>(item);
}

export function round1SubtaskFromItem(item: Record<string, unknown>): Round1SubtaskRecord {
  return round1WithoutKeys<Round1SubtaskRecord>(item);
}
