import { describe, expect, it } from 'vitest';
import { completionMessage, progressReport } from '../../lambdas/core/progress-report';
import { initializeTask, type TaskRecord, type TaskState } from '../../lambdas/core/task';
import { initializeRequest, T0 } from '../support/factories';

function task(
  state: TaskState,
  counts: { attempted: number; succeeded: number; skipped?: number; total: number },
): TaskRecord {
  const { task: fresh } = initializeTask(initializeRequest('task-1', 4, { total: counts.total }), T0);
  return {
    ...fresh,
    task_state: state,
    task_output: {
      ...fresh.task_output,
      attempted: counts.attempted,
      succeeded: counts.succeeded,
      failed: counts.attempted - counts.succeeded,
      skipped: counts.skipped ?? 0,
    },
  };
}

describe('completion message (reference dashboard wording)', () => {
  it.each([
    [
      'running',
      task('PROGRESS', { attempted: 3, succeeded: 2, skipped: 1, total: 5 }),
      'Progress: emailed 2 of 3 so far (skipping 1) (out of 5)',
      false,
    ],
    [
      'running, all covered',
      task('PROGRESS', { attempted: 5, succeeded: 5, total: 5 }),
      'Progress: emailed 5 of 5 so far',
      false,
    ],
    [
      'done with nothing attempted',
      task('SUCCESS', { attempted: 0, succeeded: 0, total: 0 }),
      'Unable to find any recipients to be emailed',
      false,
    ],
    [
      'done with nothing attempted of some',
      task('SUCCESS', { attempted: 0, succeeded: 0, skipped: 4, total: 4 }),
      'Unable to find any recipients to be emailed (skipping 4) (out of 4)',
      false,
    ],
    [
      'done, all failed',
      task('SUCCESS', { attempted: 8, succeeded: 0, total: 8 }),
      'Message failed to be emailed for any of 8 recipients',
      false,
    ],
    [
      'done, all succeeded',
      task('SUCCESS', { attempted: 10, succeeded: 10, total: 10 }),
      'Message successfully emailed for 10 recipients',
      true,
    ],
    [
      'done, some failed',
      task('SUCCESS', { attempted: 10, succeeded: 8, total: 10 }),
      'Message emailed for 8 of 10 recipients',
      false,
    ],
    [
      'ended FAILURE, some failed, fewer attempted than total',
      task('FAILURE', { attempted: 10, succeeded: 8, skipped: 2, total: 12 }),
      'Message emailed for 8 of 10 recipients (skipping 2) (out of 12)',
      false,
    ],
  ])('%s', (_, record, message, succeeded) => {
    expect(completionMessage(record)).toEqual({ message, succeeded });
  });
});

describe('progress report', () => {
  it('derives in_progress and remaining subtasks from the task record', () => {
    const record = {
      ...task('PROGRESS', { attempted: 1, succeeded: 1, total: 4 }),
      subtasks: { total: 4, succeeded: 1, failed: 1 },
    };

    const report = progressReport(record);

    expect(report).toMatchObject({
      task_id: 'task-1',
      in_progress: true,
      subtasks: { total: 4, succeeded: 1, failed: 1, remaining: 2 },
      version: 1,
      task_progress: record.task_output,
    });
  });
});
