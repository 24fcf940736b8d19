/**
 * The subtask status value and its algebra, with the semantics of Open edX's
 * `create_subtask_status` / `increment_subtask_status`.
 */

/** States after which a subtask never changes again (Celery's READY_STATES). */
export const TERMINAL_STATES = ['SUCCESS', 'FAILURE', 'REVOKED'] as const;

/** Every other Celery state a worker may report while a subtask is still running. */
export const RUNNING_STATES = ['QUEUING', 'PROGRESS', 'RETRY', 'PENDING', 'RECEIVED', 'STARTED'] as const;

export const SUBTASK_STATES = [...RUNNING_STATES, ...TERMINAL_STATES] as const;

export type TerminalState = (typeof TERMINAL_STATES)[number];
export type SubtaskState = (typeof SUBTASK_STATES)[number];

/** Wire shape of a subtask status (field names as in the reference). Counts are cumulative across retries. */
export interface SubtaskStatus {
  readonly task_id: string;
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly retried_nomax: number;
  readonly retried_withmax: number;
  readonly state: SubtaskState;
}

export interface StatusCounts {
  readonly succeeded?: number;
  readonly failed?: number;
  readonly skipped?: number;
  readonly retried_nomax?: number;
  readonly retried_withmax?: number;
  readonly state?: SubtaskState;
}

export function isTerminalState(state: SubtaskState): state is TerminalState {
  return (TERMINAL_STATES as readonly SubtaskState[]).includes(state);
}

/** Retries are what orders two statuses of one subtask: a status never un-retries. */
export function retryCount(status: SubtaskStatus): number {
  return status.retried_nomax + status.retried_withmax;
}

/** A fresh status; `attempted` is derived so that `attempted == succeeded + failed` holds by construction. */
export function createSubtaskStatus(subtaskId: string, counts: StatusCounts = {}): SubtaskStatus {
  const succeeded = counts.succeeded ?? 0;
  const failed = counts.failed ?? 0;
  return {
    task_id: subtaskId,
    attempted: succeeded + failed,
    succeeded,
    failed,
    skipped: counts.skipped ?? 0,
    retried_nomax: counts.retried_nomax ?? 0,
    retried_withmax: counts.retried_withmax ?? 0,
    state: counts.state ?? 'QUEUING',
  };
}

/** Adds `increments` to `status`; `state`, when given, replaces the old one (reference semantics). */
export function incrementSubtaskStatus(status: SubtaskStatus, increments: StatusCounts = {}): SubtaskStatus {
  const succeeded = increments.succeeded ?? 0;
  const failed = increments.failed ?? 0;
  return {
    task_id: status.task_id,
    attempted: status.attempted + succeeded + failed,
    succeeded: status.succeeded + succeeded,
    failed: status.failed + failed,
    skipped: status.skipped + (increments.skipped ?? 0),
    retried_nomax: status.retried_nomax + (increments.retried_nomax ?? 0),
    retried_withmax: status.retried_withmax + (increments.retried_withmax ?? 0),
    state: increments.state ?? status.state,
  };
}

export function sameStatus(a: SubtaskStatus, b: SubtaskStatus): boolean {
  return (
    a.task_id === b.task_id &&
    a.attempted === b.attempted &&
    a.succeeded === b.succeeded &&
    a.failed === b.failed &&
    a.skipped === b.skipped &&
    a.retried_nomax === b.retried_nomax &&
    a.retried_withmax === b.retried_withmax &&
    a.state === b.state
  );
}
