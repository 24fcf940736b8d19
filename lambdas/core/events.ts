/**
 * What the service tells the world, built from the records whose stream record marks the change. `event_id` is
 * the same for every delivery of one change, so a consumer drops repeats by it.
 */

import { EVENTS } from '../service-settings';
import { progressReport } from './progress-report';
import type { SubtaskRecord, TaskRecord } from './task';

export interface ServiceEvent {
  readonly detailType: string;
  readonly detail: { readonly event_id: string } & Readonly<Record<string, unknown>>;
}

export function taskEndedEvent(task: TaskRecord): ServiceEvent {
  const report = progressReport(task);
  return {
    detailType: EVENTS.taskEnded,
    detail: {
      event_id: `${task.task_id}:${task.generation}:${task.task_state}`,
      task_id: task.task_id,
      generation: task.generation,
      task_state: task.task_state,
      succeeded: report.succeeded,
      task_progress: report.task_progress,
      subtasks: report.subtasks,
      message: report.message,
      ended_at: task.ended_at ?? task.updated_at,
      ...(task.end_reason === undefined ? {} : { end_reason: task.end_reason }),
    },
  };
}

export function subtaskTimedOutEvent(subtask: SubtaskRecord): ServiceEvent {
  return {
    detailType: EVENTS.subtaskTimedOut,
    detail: {
      event_id: `${subtask.task_id}:${subtask.generation}:${subtask.subtask_id}:TIMED_OUT`,
      task_id: subtask.task_id,
      generation: subtask.generation,
      subtask_id: subtask.subtask_id,
      status: subtask.status,
      timed_out_at: subtask.updated_at,
    },
  };
}
