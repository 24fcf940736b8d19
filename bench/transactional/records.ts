import { isStale } from '../../lambdas/core/apply-statuses';
import {
  createSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  sameStatus,
} from '../../lambdas/core/subtask-status';
import { TABLE_KEYS } from '../../lambdas/service-settings';

/**
 * Round 1's records and pure core (`lambdas/core/task.ts` and `apply-statuses.ts` at b7f12fc), frozen here as the
 * bench's comparison row once round 2 replaced them. Trimmed to what the row needs: no options, TTL or
 * initialize digests. One deliberate change: statuses are judged by round 2's rules (rule 5 also calls a status
 * with equal retries and fewer attempted items stale), so both rows of a bench apply exactly the same statuses.
 *
 * Layout: the task item and its subtask items share the partition `TASK#<task_id>`; every status commits the
 * task's totals and the changed subtasks in one transaction conditioned on the task's version.
 */

export type TaskState = 'PROGRESS' | 'SUCCESS' | 'FAILURE';

export interface TaskOutput {
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

export interface TaskRecord {
  readonly task_id: string;
  /** Bumped by exactly 1 on every commit: the optimistic lock. */
  readonly version: number;
  readonly task_state: TaskState;
  readonly task_output: TaskOutput;
  readonly subtasks: { readonly total: number; readonly succeeded: number; readonly failed: number };
  readonly created_at: string;
  readonly updated_at: string;
}

export interface SubtaskRecord {
  readonly task_id: string;
  readonly subtask_id: string;
  readonly status: SubtaskStatus;
  /** The task version this status was committed with (0 before any status); guards the subtask's own write. */
  readonly updated_version: number;
  readonly updated_at: string;
}

export interface StatusUpdate {
  readonly subtaskId: string;
  readonly status: SubtaskStatus;
}

export type Outcome = 'applied' | 'duplicate' | 'stale' | 'rejected';

export interface ApplyResult {
  /** The task after the batch; the same object, version unchanged, when nothing applied. */
  readonly task: TaskRecord;
  /** Subtask records to write, one per changed subtask, in first-touched order. */
  readonly changed: readonly SubtaskRecord[];
  readonly outcomes: readonly Outcome[];
}

export interface InitializeRequest {
  readonly taskId: string;
  readonly actionName: string;
  readonly total: number;
  readonly subtaskIds: readonly string[];
}

/** The task `PROGRESS` at version 1 with zero counts; every subtask `QUEUING`. */
export function initializeTask(
  request: InitializeRequest,
  nowMs: number,
): { task: TaskRecord; subtasks: SubtaskRecord[] } {
  const now = new Date(nowMs).toISOString();
  const task: TaskRecord = {
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
    (subtaskId): SubtaskRecord => ({
      task_id: request.taskId,
      subtask_id: subtaskId,
      status: createSubtaskStatus(subtaskId),
      updated_version: 0,
      updated_at: now,
    }),
  );
  return { task, subtasks };
}

function judge(stored: SubtaskStatus | undefined, update: StatusUpdate): Outcome {
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
export function applyStatuses(
  task: TaskRecord,
  subtasks: ReadonlyMap<string, SubtaskRecord>,
  updates: readonly StatusUpdate[],
  nowMs: number,
): ApplyResult {
  const current = new Map(subtasks);
  const changed = new Map<string, SubtaskRecord>();
  let output = task.task_output;
  let counters = task.subtasks;

  const outcomes = updates.map((update) => {
    const stored = current.get(update.subtaskId);
    const outcome = judge(stored?.status, update);
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
  const next: TaskRecord = {
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

const TASK_SORT_KEY = 'TASK';
export const SUBTASK_SORT_KEY_PREFIX = 'SUB#';

export type ItemKey = { readonly [K in typeof TABLE_KEYS.partitionKey | typeof TABLE_KEYS.sortKey]: string };

export function taskPartition(taskId: string): string {
  return `TASK#${taskId}`;
}

export function taskKey(taskId: string): ItemKey {
  return { [TABLE_KEYS.partitionKey]: taskPartition(taskId), [TABLE_KEYS.sortKey]: TASK_SORT_KEY };
}

export function subtaskKey(taskId: string, subtaskId: string): ItemKey {
  return {
    [TABLE_KEYS.partitionKey]: taskPartition(taskId),
    [TABLE_KEYS.sortKey]: `${SUBTASK_SORT_KEY_PREFIX}${subtaskId}`,
  };
}

export function taskItem(task: TaskRecord): TaskRecord & ItemKey {
  return { ...task, ...taskKey(task.task_id) };
}

export function subtaskItem(subtask: SubtaskRecord): SubtaskRecord & ItemKey {
  return { ...subtask, ...subtaskKey(subtask.task_id, subtask.subtask_id) };
}

function withoutKeys<T>(item: Record<string, unknown>): T {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, ...record } = item;
  return record as T;
}

/** Items come from the bench's own writes, so they are trusted as records. */
export function taskFromItem(item: Record<string, unknown>): TaskRecord {
  return withoutKeys<TaskRecord>(item);
}

export function subtaskFromItem(item: Record<string, unknown>): SubtaskRecord {
  return withoutKeys<SubtaskRecord>(item);
}
