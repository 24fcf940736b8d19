import { remainingSubtasks, type TaskOutput, type TaskRecord, type TaskState } from './task';

/**
 * What a reader sees of a task: the counts, and a sentence in the wording of Open edX's instructor dashboard
 * (`get_task_completion_info`), with the task's `action_name` as the verb.
 */

export interface ProgressReport {
  readonly task_id: string;
  readonly task_state: TaskState;
  readonly in_progress: boolean;
  readonly task_progress: TaskOutput;
  readonly message: string;
  /** True only once the task is done and every attempted item succeeded. */
  readonly succeeded: boolean;
  readonly subtasks: {
    readonly total: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly remaining: number;
  };
  readonly version: number;
  readonly updated_at: string;
}

export function completionMessage(task: TaskRecord): { message: string; succeeded: boolean } {
  const { action_name: action, attempted, succeeded, skipped, total } = task.task_output;
  let message: string;
  let allSucceeded = false;
  if (task.task_state === 'PROGRESS') {
    message = `Progress: ${action} ${succeeded} of ${attempted} so far`;
  } else if (attempted === 0) {
    message = `Unable to find any recipients to be ${action}`;
  } else if (succeeded === 0) {
    message = `Message failed to be ${action} for any of ${attempted} recipients`;
  } else if (succeeded === attempted) {
    allSucceeded = true;
    message = `Message successfully ${action} for ${attempted} recipients`;
  } else {
    message = `Message ${action} for ${succeeded} of ${attempted} recipients`;
  }
  if (skipped > 0) message += ` (skipping ${skipped})`;
  if (total > attempted) message += ` (out of ${total})`;
  return { message, succeeded: allSucceeded };
}

export function progressReport(task: TaskRecord): ProgressReport {
  const { message, succeeded } = completionMessage(task);
  return {
    task_id: task.task_id,
    task_state: task.task_state,
    in_progress: task.task_state === 'PROGRESS',
    task_progress: task.task_output,
    message,
    succeeded,
    subtasks: { ...task.subtasks, remaining: remainingSubtasks(task) },
    version: task.version,
    updated_at: task.updated_at,
  };
}
