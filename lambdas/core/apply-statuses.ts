import type { ProgressError } from './errors';
import { UnknownSubtaskError } from './errors';
import { isTerminalState, retryCount, type SubtaskStatus, sameStatus } from './subtask-status';
import type { SubtaskRecord, TaskOutput, TaskRecord, TaskState } from './task';

/**
 * Rules 3–8 of the design: how a batch of valid status messages changes one task. Pure: time comes in as an
 * argument and the caller decides how to store the result.
 */

export interface StatusUpdate {
  readonly subtaskId: string;
  readonly status: SubtaskStatus;
}

export type Outcome =
  | { readonly kind: 'applied' }
  /** The subtask already ended, or the status is the one stored: nothing to do (rule 4). */
  | { readonly kind: 'duplicate' }
  /** Fewer retries than the stored status: an older delivery overtaken by a newer one (rule 5). */
  | { readonly kind: 'stale' }
  | { readonly kind: 'rejected'; readonly error: ProgressError };

export interface ApplyResult {
  /** The task after the batch; the same object, version unchanged, when nothing applied. */
  readonly task: TaskRecord;
  /** Subtask records to write, one per changed subtask, in first-touched order. */
  readonly changed: readonly SubtaskRecord[];
  /** One outcome per update, in the order given. */
  readonly outcomes: readonly Outcome[];
}

const APPLIED: Outcome = { kind: 'applied' };
const DUPLICATE: Outcome = { kind: 'duplicate' };
const STALE: Outcome = { kind: 'stale' };

function judge(taskId: string, stored: SubtaskStatus | undefined, update: StatusUpdate): Outcome {
  if (stored === undefined)
    return { kind: 'rejected', error: new UnknownSubtaskError(taskId, update.subtaskId) };
  if (isTerminalState(stored.state)) return DUPLICATE;
  if (retryCount(update.status) < retryCount(stored)) return STALE;
  if (sameStatus(update.status, stored)) return DUPLICATE;
  return APPLIED;
}

function finalState(task: TaskRecord, output: TaskOutput): TaskState {
  const { total, succeeded, failed } = task.subtasks;
  if (succeeded + failed < total) return 'PROGRESS';
  const tolerated = task.options.tolerated_failure_percentage;
  if (tolerated !== undefined && output.failed * 100 > tolerated * output.attempted) return 'FAILURE';
  return 'SUCCESS';
}

/**
 * Applies `updates` (in order) to `task`, whose subtasks as read are `subtasks`. A later update of the same
 * subtask is judged against the earlier one, so a batch behaves exactly like its messages one by one.
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
    const outcome = judge(task.task_id, stored?.status, update);
    if (outcome.kind !== 'applied' || stored === undefined) return outcome;
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
  const next: TaskRecord = {
    ...task,
    version,
    task_output: output,
    subtasks: counters,
    updated_at: updatedAt,
  };
  const written = [...changed.values()].map((record) => ({
    ...record,
    updated_version: version,
    updated_at: updatedAt,
  }));
  return { task: { ...next, task_state: finalState(next, output) }, changed: written, outcomes };
}
