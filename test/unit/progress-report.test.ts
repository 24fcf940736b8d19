import { describe, expect, it } from 'vitest';
import { completionMessage, progressReport } from '../../lambdas/core/progress-report';
import type { SubtaskCounters, TaskRecord, TaskState } from '../../lambdas/core/task';
import { initializeRequest, readyTask } from '../support/factories';

interface Shape {
  readonly attempted: number;
  readonly succeeded: number;
  readonly skipped?: number;
  readonly total: number;
  /** Defaults to 4 subtasks, all ended SUCCESS once the task ended, none while it runs. */
  readonly subtasks?: SubtaskCounters;
  readonly endReason?: string;
  readonly actionName?: string;
}

/** A task of 4 subtasks in `state` with these item counts (failed = attempted − succeeded). */
function task(state: TaskState, shape: Shape): TaskRecord {
  const fresh = readyTask(
    initializeRequest('task-1', 4, { total: shape.total, actionName: shape.actionName ?? 'emailed' }),
  );
  const subtasks =
    shape.subtasks ?? (state === 'PROGRESS' ? fresh.subtasks : { total: 4, succeeded: 4, failed: 0 });
  return {
    ...fresh,
    task_state: state,
    task_output: {
      ...fresh.task_output,
      attempted: shape.attempted,
      succeeded: shape.succeeded,
      failed: shape.attempted - shape.succeeded,
      skipped: shape.skipped ?? 0,
    },
    subtasks,
    ...(shape.endReason === undefined ? {} : { end_reason: shape.endReason }),
  };
}

describe('completionMessage: the dashboard sentence (Open edX get_task_completion_info, email wording)', () => {
  it.each<[string, TaskRecord, string]>([
    [
      'running: "Progress: {action} {succeeded} of {attempted} so far"',
      task('PROGRESS', { attempted: 5, succeeded: 4, total: 5 }),
      'Progress: emailed 4 of 5 so far',
    ],
    [
      'running with items skipped and not all attempted',
      task('PROGRESS', { attempted: 3, succeeded: 2, skipped: 1, total: 5 }),
      'Progress: emailed 2 of 3 so far (skipping 1) (out of 5)',
    ],
    [
      'ended with nothing attempted: "Unable to find any recipients to be {action}"',
      task('SUCCESS', { attempted: 0, succeeded: 0, total: 0 }),
      'Unable to find any recipients to be emailed',
    ],
    [
      'ended with nothing attempted, everything skipped',
      task('SUCCESS', { attempted: 0, succeeded: 0, skipped: 4, total: 4 }),
      'Unable to find any recipients to be emailed (skipping 4) (out of 4)',
    ],
    [
      'ended, every item failed: "Message failed to be {action} for any of {attempted} recipients"',
      task('FAILURE', { attempted: 8, succeeded: 0, total: 8 }),
      'Message failed to be emailed for any of 8 recipients',
    ],
    [
      'ended, every item succeeded: "Message successfully {action} for {attempted} recipients"',
      task('SUCCESS', { attempted: 10, succeeded: 10, total: 10 }),
      'Message successfully emailed for 10 recipients',
    ],
    [
      'ended, some items failed: "Message {action} for {succeeded} of {attempted} recipients"',
      task('SUCCESS', { attempted: 10, succeeded: 8, total: 10 }),
      'Message emailed for 8 of 10 recipients',
    ],
    [
      'ended with skipped items and fewer attempted than the total',
      task('FAILURE', { attempted: 10, succeeded: 8, skipped: 2, total: 12 }),
      'Message emailed for 8 of 10 recipients (skipping 2) (out of 12)',
    ],
    [
      'ended with more attempted than the total',
      task('SUCCESS', { attempted: 12, succeeded: 12, total: 10 }),
      'Message successfully emailed for 12 recipients (out of 10)',
    ],
    [
      'ended with a failed subtask though every attempted item succeeded',
      task('SUCCESS', {
        attempted: 30,
        succeeded: 30,
        total: 30,
        subtasks: { total: 4, succeeded: 3, failed: 1 },
      }),
      'Message emailed for 30 of 30 recipients (1 of 4 subtasks failed)',
    ],
    [
      'ended with every subtask failed before attempting anything',
      task('FAILURE', {
        attempted: 0,
        succeeded: 0,
        total: 400,
        subtasks: { total: 4, succeeded: 0, failed: 4 },
      }),
      'Message failed to be emailed: no recipients were attempted (out of 400) (4 of 4 subtasks failed)',
    ],
    [
      'canceled',
      task('CANCELED', {
        attempted: 5,
        succeeded: 3,
        total: 10,
        subtasks: { total: 4, succeeded: 2, failed: 2 },
      }),
      'Canceled: emailed 3 of 5 (out of 10) (2 of 4 subtasks failed)',
    ],
    [
      'ended by the service, with its reason last',
      task('FAILURE', {
        attempted: 0,
        succeeded: 0,
        total: 40,
        subtasks: { total: 4, succeeded: 0, failed: 0 },
        endReason: 'INITIALIZE_INCOMPLETE',
      }),
      'Unable to find any recipients to be emailed (out of 40) (INITIALIZE_INCOMPLETE)',
    ],
  ])('%s', (_, record, message) => {
    const result = completionMessage(record);

    expect(result.message).toBe(message);
  });

  it('uses the action name as the verb', () => {
    const record = task('SUCCESS', { attempted: 2, succeeded: 2, total: 2, actionName: 'graded' });

    const { message } = completionMessage(record);

    expect(message).toBe('Message successfully graded for 2 recipients');
  });
});

describe('completionMessage: the succeeded flag', () => {
  it('is true once the task ended, every subtask ended SUCCESS and every attempted item succeeded', () => {
    const record = task('SUCCESS', { attempted: 10, succeeded: 10, total: 10 });

    const { succeeded } = completionMessage(record);

    expect(succeeded).toBe(true);
  });

  it('is false while the task runs, even if nothing failed so far', () => {
    const record = task('PROGRESS', {
      attempted: 10,
      succeeded: 10,
      total: 10,
      subtasks: { total: 4, succeeded: 4, failed: 0 },
    });

    const { succeeded } = completionMessage(record);

    expect(succeeded).toBe(false);
  });

  it('is false when an item failed', () => {
    const record = task('SUCCESS', { attempted: 10, succeeded: 9, total: 10 });

    const { succeeded } = completionMessage(record);

    expect(succeeded).toBe(false);
  });

  it('is false when a subtask failed, even if every attempted item succeeded', () => {
    const record = task('SUCCESS', {
      attempted: 10,
      succeeded: 10,
      total: 10,
      subtasks: { total: 4, succeeded: 3, failed: 1 },
    });

    const { succeeded } = completionMessage(record);

    expect(succeeded).toBe(false);
  });
});

describe('progressReport', () => {
  it('derives in_progress and remaining subtasks from the task record', () => {
    const record = {
      ...task('PROGRESS', { attempted: 1, succeeded: 1, total: 4 }),
      subtasks: { total: 4, succeeded: 1, failed: 1 },
    };

    const report = progressReport(record);

    expect(report).toMatchObject({
      task_id: 'task-1',
      task_state: 'PROGRESS',
      in_progress: true,
      subtasks: { total: 4, succeeded: 1, failed: 1, remaining: 2 },
      task_progress: record.task_output,
      in_flight: record.in_flight,
      generation: record.generation,
      version: record.version,
      updated_at: record.updated_at,
      cancel_requested: false,
      succeeded: false,
    });
  });

  it('carries the message and the flag of completionMessage', () => {
    const record = task('SUCCESS', { attempted: 10, succeeded: 10, total: 10 });

    const report = progressReport(record);

    expect({ message: report.message, succeeded: report.succeeded }).toEqual(completionMessage(record));
  });

  it('says when a cancel was requested', () => {
    const record = { ...task('PROGRESS', { attempted: 0, succeeded: 0, total: 4 }), cancel_requested: true };

    const report = progressReport(record);

    expect(report.cancel_requested).toBe(true);
  });

  it('shows ended_at and end_reason only when the task has them', () => {
    const running = task('PROGRESS', { attempted: 0, succeeded: 0, total: 4 });
    const ended = {
      ...task('FAILURE', { attempted: 0, succeeded: 0, total: 4, endReason: 'INITIALIZE_INCOMPLETE' }),
      ended_at: '2026-01-01T00:15:00.000Z',
    };

    const reports = [progressReport(running), progressReport(ended)];

    expect(reports[0]).not.toHaveProperty('ended_at');
    expect(reports[0]).not.toHaveProperty('end_reason');
    expect(reports[1]).toMatchObject({
      in_progress: false,
      ended_at: '2026-01-01T00:15:00.000Z',
      end_reason: 'INITIALIZE_INCOMPLETE',
    });
  });
});
