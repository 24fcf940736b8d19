/**
 * Rules 3–6 of the design: how a batch of valid statuses changes the subtask items they name. Pure: time comes
 * in as an argument and the caller decides how to store the result. The task's totals are not touched here:
 * the fold recounts them from the subtask items.
 */

import { type ProgressError, StaleGenerationError, UnknownSubtaskError } from './errors';
import { isTerminalState, retryCount, type SubtaskStatus, sameStatus } from './subtask-status';
import type { EndReason, SubtaskRecord, TaskRecord } from './task';

export interface StatusUpdate {
  readonly subtaskId: string;
  readonly status: SubtaskStatus;
  /** Set when the service itself ends the subtask (deadline, cancel) instead of its worker. */
  readonly reason?: EndReason;
  /** The task generation the sender meant, when it said; a status for a replaced generation is refused. */
  readonly generation?: string;
}

/** What judging needs of the task. */
export type TaskIdentity = Pick<TaskRecord, 'task_id' | 'generation'>;

export type Outcome =
  | { readonly kind: 'applied' }
  /** The subtask already ended, or the status is the one stored: nothing to do (rule 4). */
  | { readonly kind: 'duplicate' }
  /** An older delivery overtaken by a newer one (rule 5). */
  | { readonly kind: 'stale' }
  | { readonly kind: 'rejected'; readonly error: ProgressError };

export interface ApplyResult {
  /** Subtask records to write, one per changed subtask, in first-touched order, each at version + 1. */
  readonly changed: readonly SubtaskRecord[];
  /** One outcome per update, in the order given. */
  readonly outcomes: readonly Outcome[];
}

const APPLIED: Outcome = { kind: 'applied' };
const DUPLICATE: Outcome = { kind: 'duplicate' };
const STALE: Outcome = { kind: 'stale' };

/**
 * Rule 5: retries order two statuses of one subtask, and within the same retry count cumulative counts never go
 * down, so fewer attempted items is an older status too.
 */
export function isStale(incoming: SubtaskStatus, stored: SubtaskStatus): boolean {
  const incomingRetries = retryCount(incoming);
  const storedRetries = retryCount(stored);
  if (incomingRetries !== storedRetries) return incomingRetries < storedRetries;
  return incoming.attempted < stored.attempted;
}

export function judge(task: TaskIdentity, stored: SubtaskRecord | undefined, update: StatusUpdate): Outcome {
  if (update.generation !== undefined && update.generation !== task.generation)
    return { kind: 'rejected', error: new StaleGenerationError(task.task_id, update.generation) };
  if (stored === undefined)
    return { kind: 'rejected', error: new UnknownSubtaskError(task.task_id, update.subtaskId) };
  if (isTerminalState(stored.status.state)) return DUPLICATE;
  if (isStale(update.status, stored.status)) return STALE;
  if (sameStatus(update.status, stored.status)) return DUPLICATE;
  return APPLIED;
}

/**
 * Applies `updates` (in order) to the subtasks as read, `subtasks` (keyed by subtask id; a missing key is a
 * subtask the task does not have). A later update of the same subtask is judged against the earlier one, so a
 * batch behaves exactly like its messages one by one, and several statuses of one subtask cost one write.
 */
export function applyStatuses(
  task: TaskIdentity,
  subtasks: ReadonlyMap<string, SubtaskRecord>,
  updates: readonly StatusUpdate[],
  nowMs: number,
): ApplyResult {
  const current = new Map(subtasks);
  const changed = new Map<string, SubtaskRecord>();
  const updatedAt = new Date(nowMs).toISOString();

  const outcomes = updates.map((update) => {
    const stored = current.get(update.subtaskId);
    const outcome = judge(task, stored, update);
    if (outcome.kind !== 'applied' || stored === undefined) return outcome;
    const read = subtasks.get(update.subtaskId) ?? stored;
    const { reason: _previous, ...rest } = stored;
    const record: SubtaskRecord = {
      ...rest,
      status: update.status,
      version: read.version + 1,
      updated_at: updatedAt,
      ...(update.reason === undefined ? {} : { reason: update.reason }),
    };
    current.set(update.subtaskId, record);
    changed.set(update.subtaskId, record);
    return outcome;
  });

  return { changed: [...changed.values()], outcomes };
}
