import { describe, expect, it } from 'vitest';
import { subtaskTimedOutEvent, taskEndedEvent } from '../../lambdas/core/events';
import { completionMessage } from '../../lambdas/core/progress-report';
import type { TaskRecord } from '../../lambdas/core/task';
import { EVENTS } from '../../lambdas/service-settings';
import { initializeRequest, readyTask, subtaskRecord, terminal } from '../support/factories';

const ENDED_AT = '2026-01-01T00:10:00.000Z';

function endedTask(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const task = readyTask(initializeRequest('task-1', 2, { total: 200 }));
  return {
    ...task,
    task_state: 'SUCCESS',
    task_output: { ...task.task_output, attempted: 200, succeeded: 200 },
    subtasks: { total: 2, succeeded: 2, failed: 0 },
    version: 9,
    ended_at: ENDED_AT,
    updated_at: ENDED_AT,
    ...overrides,
  };
}

describe('taskEndedEvent', () => {
  it("is a 'Task Ended' event whose id is task:generation:state", () => {
    const event = taskEndedEvent(endedTask());

    expect(event.detailType).toBe(EVENTS.taskEnded);
    expect(event.detail.event_id).toBe('task-1:gen-1:SUCCESS');
  });

  it('keeps its id across deliveries of the same ending, whatever else the record carries', () => {
    const first = endedTask();
    const redelivered = endedTask({ version: 10, updated_at: '2026-01-01T00:11:00.000Z' });

    const ids = [taskEndedEvent(first).detail.event_id, taskEndedEvent(redelivered).detail.event_id];

    expect(ids[1]).toBe(ids[0]);
  });

  it('has another id for another generation of the task', () => {
    const ids = [
      taskEndedEvent(endedTask()).detail.event_id,
      taskEndedEvent(endedTask({ generation: 'gen-2' })).detail.event_id,
    ];

    expect(ids[1]).not.toBe(ids[0]);
  });

  it('carries the outcome as the API reports it', () => {
    const task = endedTask({ task_state: 'FAILURE', end_reason: 'INITIALIZE_INCOMPLETE' });

    const { detail } = taskEndedEvent(task);

    expect(detail).toMatchObject({
      task_id: 'task-1',
      generation: 'gen-1',
      task_state: 'FAILURE',
      succeeded: completionMessage(task).succeeded,
      message: completionMessage(task).message,
      task_progress: task.task_output,
      subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
      ended_at: ENDED_AT,
      end_reason: 'INITIALIZE_INCOMPLETE',
    });
  });

  it('falls back to updated_at when the record has no ended_at', () => {
    const { ended_at: _, ...task } = endedTask({ updated_at: '2026-01-01T00:12:00.000Z' });

    const { detail } = taskEndedEvent(task);

    expect(detail.ended_at).toBe('2026-01-01T00:12:00.000Z');
  });

  it('has no end_reason when the subtasks ended the task', () => {
    const { detail } = taskEndedEvent(endedTask());

    expect(detail).not.toHaveProperty('end_reason');
  });
});

describe('subtaskTimedOutEvent', () => {
  it("is a 'Subtask Timed Out' event whose id is task:generation:subtask:TIMED_OUT, with the subtask's status", () => {
    const subtask = subtaskRecord(terminal('sub-7', { succeeded: 0, state: 'FAILURE' }), {
      version: 3,
      updatedAtMs: Date.parse(ENDED_AT),
      reason: 'TIMED_OUT',
    });

    const event = subtaskTimedOutEvent(subtask);

    expect(event).toEqual({
      detailType: EVENTS.subtaskTimedOut,
      detail: {
        event_id: 'task-1:gen-1:sub-7:TIMED_OUT',
        task_id: 'task-1',
        generation: 'gen-1',
        subtask_id: 'sub-7',
        status: subtask.status,
        timed_out_at: ENDED_AT,
      },
    });
  });
});
