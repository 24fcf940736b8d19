/**
 * What a reader sees of a task: the counts, and a sentence in the wording of Open edX's instructor dashboard
 * (`get_task_completion_info`), with the task's `action_name` as the verb.
 */

import { taskSucceeded } from './fold';
import { type ItemCounts, remainingSubtasks, type TaskOutput, type TaskRecord, type TaskState } from './task';

export interface ProgressReport {
  readonly task_id: string;
  readonly task_state: TaskState;
  readonly in_progress: boolean;
  readonly task_progress: TaskOutput;
  /** Latest counts of the subtasks still running, not yet in `task_progress`. */
  readonly in_flight: ItemCounts;
  readonly message: string;
  /** True only once the task ended, every subtask ended `SUCCESS` and no item failed. */
  readonly succeeded: boolean;
  readonly subtasks: {
    readonly total: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly remaining: number;
  };
  readonly cancel_requested: boolean;
  readonly generation: string;
  readonly version: number;
  readonly updated_at: string;
  readonly ended_at?: string;
  readonly end_reason?: string;
}

function outcomeSentence(task: TaskRecord, succeededFlag: boolean): string {
  const { action_name: action, attempted, succeeded } = task.task_output;
  if (task.task_state === 'PROGRESS') return `Progress: ${action} ${succeeded} of ${attempted} so far`;
  if (task.task_state === 'CANCELED') return `Canceled: ${action} ${succeeded} of ${attempted}`;
  if (attempted === 0) {
    return task.subtasks.failed > 0
      ? `Message failed to be ${action}: no recipients were attempted`
      : `Unable to find any recipients to be ${action}`;
  }
  if (succeeded === 0) return `Message failed to be ${action} for any of ${attempted} recipients`;
  if (succeededFlag) return `Message successfully ${action} for ${attempted} recipients`;
  return `Message ${action} for ${succeeded} of ${attempted} recipients`;
}

/**
 * The dashboard's sentence and `succeeded` flag. "(skipping N)" and "(out of N)" follow the reference: the
 * latter whenever attempted differs from the total; failed subtasks are named once any failed, since a
 * subtask that failed before reporting items leaves no trace in the item counts.
 */
export function completionMessage(task: TaskRecord): { message: string; succeeded: boolean } {
  const { attempted, skipped, total } = task.task_output;
  const succeeded = taskSucceeded(task);
  let message = outcomeSentence(task, succeeded);
  if (skipped > 0) message += ` (skipping ${skipped})`;
  if (attempted !== total) message += ` (out of ${total})`;
  if (task.subtasks.failed > 0) {
    message += ` (${task.subtasks.failed} of ${task.subtasks.total} subtasks failed)`;
  }
  if (task.end_reason !== undefined) message += ` (${task.end_reason})`;
  return { message, succeeded };
}

export function progressReport(task: TaskRecord): ProgressReport {
  const { message, succeeded } = completionMessage(task);
  return {
    task_id: task.task_id,
    task_state: task.task_state,
    in_progress: task.task_state === 'PROGRESS',
    task_progress: task.task_output,
    in_flight: task.in_flight,
    message,
    succeeded,
    subtasks: { ...task.subtasks, remaining: remainingSubtasks(task) },
    cancel_requested: task.cancel_requested === true,
    generation: task.generation,
    version: task.version,
    updated_at: task.updated_at,
    ...(task.ended_at === undefined ? {} : { ended_at: task.ended_at }),
    ...(task.end_reason === undefined ? {} : { end_reason: task.end_reason }),
  };
}
