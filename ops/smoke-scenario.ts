/**
 * What the smoke test sends and what it expects back: two small tasks, and task A's statuses in two rounds, the
 * first leaving one subtask running, the second ending every subtask. The expectations follow DESIGN §2's fold
 * and ending rules and the dashboard wording of `lambdas/core/progress-report.ts`.
 */

import { createSubtaskStatus, type SubtaskStatus } from '../client/producer';
import { STATUS_QUEUE } from '../lambdas/service-settings';

export const ACTION = 'smoke-tested';
// The TTL removes the smoke tasks once no status of theirs can still be queued (the shortest ttl_days allowed).
export const TTL_DAYS = STATUS_QUEUE.retentionDays + 1;

export const FIRST_ROUND: readonly SubtaskStatus[] = [
  createSubtaskStatus('a', { succeeded: 10, state: 'SUCCESS' }),
  createSubtaskStatus('b', { succeeded: 4, failed: 1, state: 'PROGRESS' }),
];
export const SECOND_ROUND: readonly SubtaskStatus[] = [
  createSubtaskStatus('b', { succeeded: 9, failed: 1, state: 'SUCCESS' }),
  createSubtaskStatus('c', { succeeded: 10, skipped: 2, state: 'SUCCESS' }),
];
export const TASK_A = { subtaskIds: ['a', 'b', 'c'], total: 30 } as const;
export const TASK_B = { subtaskIds: ['a', 'b'], total: 20 } as const;

/** What task A's totals must be after each round (DESIGN §2's fold and ending rules). */
export const AFTER_FIRST_ROUND = {
  attempted: 10,
  succeeded: 10,
  inFlightAttempted: 5,
  subtasksSucceeded: 1,
} as const;
export const AT_THE_END = {
  task_state: 'SUCCESS',
  attempted: 30,
  succeeded: 29,
  failed: 1,
  skipped: 2,
  subtasksSucceeded: 3,
  // One item failed: the task succeeds (no tolerance given, not everything failed), its `succeeded` flag does not.
  succeededFlag: false,
  message: `Message ${ACTION} for 29 of 30 recipients (skipping 2)`,
} as const;
