/** How the CLI shows a task's progress to a person. */

import type { Progress, SubtaskListing } from '../progress-api';
import type { TaskRow } from '../task-list-api';

/** `45 s`, `3 min 05 s`, `2 h 04 min`: precise enough for an operator, short enough for a bar. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

function stateLine(progress: Progress): string {
  if (progress.in_progress) {
    return `${progress.task_state} (running${progress.cancel_requested ? ', cancel requested' : ''})`;
  }
  const why = progress.end_reason === undefined ? '' : `, ${progress.end_reason}`;
  return `${progress.task_state} (finished${why}${progress.succeeded ? ', every item succeeded' : ''})`;
}

/** A few lines a person can read at a glance; `--json` is for scripts. */
export function progressSummary(progress: Progress): string {
  const items = progress.task_progress;
  const flight = progress.in_flight;
  const subtasks = progress.subtasks;
  const updated =
    progress.ended_at === undefined ? `updated ${progress.updated_at}` : `ended ${progress.ended_at}`;
  return [
    `Task ${progress.task_id}: ${stateLine(progress)}`,
    `  ${progress.message}`,
    `  items     ${items.attempted} attempted: ${items.succeeded} succeeded, ${items.failed} failed; ` +
      `${items.skipped} skipped; ${items.total} in all`,
    ...(progress.in_progress
      ? [
          `  running   ${flight.attempted} more attempted by subtasks not ended yet: ${flight.succeeded} ` +
            `succeeded, ${flight.failed} failed; ${flight.skipped} skipped`,
        ]
      : []),
    `  subtasks  ${subtasks.total}: ${subtasks.succeeded} succeeded, ${subtasks.failed} failed, ` +
      `${subtasks.remaining} remaining`,
    `  version ${progress.version}, ran ${formatDuration(items.duration_ms)}, ${updated}`,
  ].join('\n');
}

/** One subtask of a listing: its id, state, counts, and why the service ended it, when it did. */
export function subtaskLine(subtask: SubtaskListing): string {
  const reason = subtask.reason === undefined ? '' : ` (${subtask.reason})`;
  const retries = subtask.retried_nomax + subtask.retried_withmax;
  return (
    `${subtask.subtask_id}  ${subtask.state}${reason}  ${subtask.attempted} attempted: ` +
    `${subtask.succeeded} succeeded, ${subtask.failed} failed; ${subtask.skipped} skipped; ${retries} retries` +
    (subtask.updated_at === undefined ? '' : `  ${subtask.updated_at}`)
  );
}

/** The one line `watch` ends with. */
export function finalLine(progress: Progress): string {
  return `Task ${progress.task_id} ended ${progress.task_state}: ${progress.message}`;
}

/** One task of a listing: id, state, group, items done of the total, subtasks ended, when it was created. */
export function taskLine(task: TaskRow): string {
  const items = task.task_progress;
  const done = task.subtasks.total - task.subtasks.remaining;
  const group = task.group === null ? '' : `  [${task.group}]`;
  return (
    `${task.task_id}  ${task.task_state}${task.end_reason === null ? '' : ` (${task.end_reason})`}${group}  ` +
    `${items.attempted + items.skipped} of ${items.total} items ${task.action_name}, ` +
    `${done}/${task.subtasks.total} subtasks  created ${task.created_at}`
  );
}
