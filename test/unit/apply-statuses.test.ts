import { describe, expect, it } from 'vitest';
import { type ApplyResult, applyStatuses, type StatusUpdate } from '../../lambdas/core/apply-statuses';
import { UnknownSubtaskError } from '../../lambdas/core/errors';
import { type SubtaskStatus, TERMINAL_STATES } from '../../lambdas/core/subtask-status';
import {
  type InitializeRequest,
  initializeTask,
  type SubtaskRecord,
  type TaskRecord,
} from '../../lambdas/core/task';
import { initializeRequest, status, T0, terminal } from '../support/factories';

const TASK_ID = 'task-1';
const LATER = T0 + 1_000;

interface Progress {
  readonly task: TaskRecord;
  readonly subtasks: ReadonlyMap<string, SubtaskRecord>;
}

/** A freshly initialized task over `ids`, as the applier would read it. */
function started(ids: readonly string[], extra: Partial<InitializeRequest> = {}): Progress {
  const { task, subtasks } = initializeTask(initializeRequest(TASK_ID, ids, extra), T0);
  return { task, subtasks: new Map(subtasks.map((record) => [record.subtask_id, record])) };
}

function updates(statuses: readonly SubtaskStatus[]): StatusUpdate[] {
  return statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus }));
}

function apply(progress: Progress, statuses: readonly SubtaskStatus[], nowMs = LATER): ApplyResult {
  return applyStatuses(progress.task, progress.subtasks, updates(statuses), nowMs);
}

/** The records as a store would hold them after writing `result`. */
function stored(progress: Progress, result: ApplyResult): Progress {
  const subtasks = new Map(progress.subtasks);
  for (const record of result.changed) subtasks.set(record.subtask_id, record);
  return { task: result.task, subtasks };
}

/** `progress` after each group of statuses was applied in its own call. */
function afterCalls(
  progress: Progress,
  calls: readonly (readonly SubtaskStatus[])[],
  nowMs = LATER,
): Progress {
  return calls.reduce((current, statuses) => stored(current, apply(current, statuses, nowMs)), progress);
}

function sum(statuses: readonly SubtaskStatus[], field: 'attempted' | 'succeeded' | 'failed' | 'skipped') {
  return statuses.reduce((total, subtaskStatus) => total + subtaskStatus[field], 0);
}

describe('rule 3: a status for a subtask the task does not have is rejected permanently', () => {
  it('rejects it with a permanent UnknownSubtaskError naming the task and the subtask', () => {
    const progress = started(['a', 'b']);

    const result = apply(progress, [terminal('ghost')]);

    const outcome = result.outcomes[0];
    expect(outcome?.kind).toBe('rejected');
    const error = outcome?.kind === 'rejected' ? outcome.error : undefined;
    expect(error).toBeInstanceOf(UnknownSubtaskError);
    expect(error).toMatchObject({
      code: 'UNKNOWN_SUBTASK',
      permanent: true,
      taskId: TASK_ID,
      subtaskId: 'ghost',
    });
  });

  it('still applies the rest of the batch', () => {
    const progress = started(['a', 'b']);
    const done = terminal('a', { succeeded: 40, failed: 2 });

    const result = apply(progress, [
      done,
      terminal('ghost'),
      status('b', { succeeded: 3, state: 'PROGRESS' }),
    ]);

    expect(result.outcomes.map((outcome) => outcome.kind)).toEqual(['applied', 'rejected', 'applied']);
    expect(result.changed.map((record) => record.subtask_id)).toEqual(['a', 'b']);
    expect(result.task.version).toBe(progress.task.version + 1);
    expect(result.task.task_output.succeeded).toBe(done.succeeded);
  });

  it('changes nothing when every status of the batch is rejected', () => {
    const progress = started(['a']);

    const result = apply(progress, [terminal('ghost'), status('phantom', { state: 'PROGRESS' })]);

    expect(result.task).toBe(progress.task);
    expect(result.changed).toEqual([]);
  });
});

describe('rule 4: a status for a subtask already in a terminal state is a duplicate and changes nothing', () => {
  it.each(TERMINAL_STATES)('after %s, no later status of any kind changes anything', (endState) => {
    const progress = afterCalls(started(['a', 'b']), [[terminal('a', { succeeded: 10, state: endState })]]);
    const later = [
      terminal('a', { succeeded: 90, retried_nomax: 3 }),
      terminal('a', { failed: 5, retried_withmax: 1, state: 'FAILURE' }),
      status('a', { succeeded: 20, retried_withmax: 4, state: 'RETRY' }),
      status('a', { succeeded: 20, retried_nomax: 5, state: 'PROGRESS' }),
    ];

    const result = apply(progress, later, LATER + 5_000);

    expect(result.outcomes).toEqual(later.map(() => ({ kind: 'duplicate' })));
    expect(result.task).toBe(progress.task);
    expect(result.changed).toEqual([]);
  });

  it('counts a redelivered terminal status once', () => {
    const done = terminal('a', { succeeded: 70, failed: 3, skipped: 2 });
    const progress = afterCalls(started(['a', 'b']), [[done]]);

    const result = apply(progress, [done]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect(result.task.task_output).toMatchObject({
      attempted: done.attempted,
      succeeded: done.succeeded,
      failed: done.failed,
      skipped: done.skipped,
    });
    expect(result.task.subtasks).toEqual({ total: 2, succeeded: 1, failed: 0 });
  });

  it('treats a status identical to the stored running one as a duplicate', () => {
    const running = status('a', { succeeded: 12, failed: 1, retried_withmax: 1, state: 'RETRY' });
    const progress = afterCalls(started(['a']), [[running]]);

    const result = apply(progress, [{ ...running }]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect(result.task).toBe(progress.task);
  });

  it('treats the initial QUEUING status sent again as a duplicate', () => {
    const progress = started(['a']);

    const result = apply(progress, [status('a')]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect(result.task).toBe(progress.task);
  });
});

describe('rule 5: a status with fewer retries than the stored one is stale and changes nothing', () => {
  const retried = status('a', { succeeded: 30, retried_withmax: 2, state: 'RETRY' });

  it('ignores a running status with fewer retries', () => {
    const progress = afterCalls(started(['a']), [[retried]]);

    const result = apply(progress, [status('a', { succeeded: 50, retried_withmax: 1, state: 'PROGRESS' })]);

    expect(result.outcomes).toEqual([{ kind: 'stale' }]);
    expect(result.task).toBe(progress.task);
    expect(result.changed).toEqual([]);
  });

  it('ignores a terminal status with fewer retries: it neither ends the subtask nor adds counts', () => {
    const progress = afterCalls(started(['a']), [[retried]]);

    const result = apply(progress, [terminal('a', { succeeded: 80, retried_withmax: 1 })]);

    expect(result.outcomes).toEqual([{ kind: 'stale' }]);
    expect(result.task.task_state).toBe('PROGRESS');
    expect(result.task.task_output.succeeded).toBe(0);
    expect(result.task.subtasks).toEqual({ total: 1, succeeded: 0, failed: 0 });
  });

  it('compares retried_nomax + retried_withmax, not each counter alone', () => {
    const progress = afterCalls(started(['a']), [[status('a', { retried_nomax: 2, state: 'RETRY' })]]);
    const fewer = status('a', { succeeded: 5, retried_withmax: 1, state: 'RETRY' });
    const asMany = status('a', { succeeded: 5, retried_withmax: 2, state: 'RETRY' });

    const outcomes = [apply(progress, [fewer]).outcomes, apply(progress, [asMany]).outcomes];

    expect(outcomes).toEqual([[{ kind: 'stale' }], [{ kind: 'applied' }]]);
  });
});

describe('rule 6: otherwise the stored status is replaced; a terminal status adds its counts and ends the subtask', () => {
  it.each(['PROGRESS', 'RETRY', 'STARTED'] as const)(
    'a %s status replaces the stored status but adds nothing to task_output or the subtask counters',
    (state) => {
      const progress = started(['a', 'b']);
      const running = status('a', { succeeded: 25, failed: 4, skipped: 1, retried_nomax: 1, state });

      const result = apply(progress, [running]);

      expect(result.outcomes).toEqual([{ kind: 'applied' }]);
      expect(result.changed.map((record) => record.status)).toEqual([running]);
      expect(result.task.task_output).toMatchObject({ attempted: 0, succeeded: 0, failed: 0, skipped: 0 });
      expect(result.task.subtasks).toEqual(progress.task.subtasks);
      expect(result.task.task_state).toBe('PROGRESS');
    },
  );

  it('a SUCCESS status adds its counts to task_output and counts a succeeded subtask', () => {
    const progress = started(['a', 'b']);
    const done = terminal('a', { succeeded: 95, failed: 5, skipped: 7 });

    const result = apply(progress, [done]);

    expect(result.task.task_output).toMatchObject({
      attempted: done.attempted,
      succeeded: done.succeeded,
      failed: done.failed,
      skipped: done.skipped,
    });
    expect(result.task.subtasks).toEqual({ total: 2, succeeded: 1, failed: 0 });
  });

  it.each(['FAILURE', 'REVOKED'] as const)(
    'a %s status adds its counts to task_output and counts a failed subtask',
    (state) => {
      const progress = started(['a', 'b']);
      const ended = terminal('a', { succeeded: 10, failed: 3, skipped: 4, state });

      const result = apply(progress, [ended]);

      expect(result.task.task_output).toMatchObject({
        attempted: ended.attempted,
        succeeded: ended.succeeded,
        failed: ended.failed,
        skipped: ended.skipped,
      });
      expect(result.task.subtasks).toEqual({ total: 2, succeeded: 0, failed: 1 });
    },
  );

  it('adds the cumulative counts of the terminal status, not its difference from the stored running one', () => {
    const running = status('a', { succeeded: 30, failed: 1, state: 'PROGRESS' });
    const progress = afterCalls(started(['a', 'b']), [[running]]);
    const done = terminal('a', { succeeded: 60, failed: 2, skipped: 3 });

    const result = apply(progress, [done]);

    expect(result.task.task_output).toMatchObject({
      attempted: done.attempted,
      succeeded: done.succeeded,
      failed: done.failed,
      skipped: done.skipped,
    });
  });

  it('keeps the task PROGRESS while any subtask has not ended', () => {
    const progress = started(['a', 'b', 'c']);

    const result = apply(progress, [terminal('a'), terminal('b', { state: 'FAILURE' })]);

    expect(result.task.task_state).toBe('PROGRESS');
  });

  it('ends the task SUCCESS when the last subtask ends, even if some subtasks failed, with the split kept', () => {
    const ends = [
      terminal('a', { succeeded: 100 }),
      terminal('b', { succeeded: 60, failed: 40, state: 'FAILURE' }),
      terminal('c', { succeeded: 0, skipped: 9, state: 'REVOKED' }),
    ];
    const progress = afterCalls(started(['a', 'b', 'c']), [ends.slice(0, 2)]);

    const result = apply(progress, ends.slice(2));

    expect(result.task.task_state).toBe('SUCCESS');
    expect(result.task.subtasks).toEqual({ total: 3, succeeded: 1, failed: 2 });
    expect(result.task.task_output).toMatchObject({
      attempted: sum(ends, 'attempted'),
      succeeded: sum(ends, 'succeeded'),
      failed: sum(ends, 'failed'),
      skipped: sum(ends, 'skipped'),
    });
  });

  it('ends the task SUCCESS even when every subtask failed, as the reference does, if no tolerance is set', () => {
    const progress = started(['a', 'b']);
    const ends = [
      terminal('a', { succeeded: 0, failed: 5, state: 'FAILURE' }),
      terminal('b', { succeeded: 0, state: 'REVOKED' }),
    ];

    const result = apply(progress, ends);

    expect(result.task.task_state).toBe('SUCCESS');
    expect(result.task.subtasks).toEqual({ total: 2, succeeded: 0, failed: 2 });
  });

  describe('with tolerated_failure_percentage', () => {
    const tolerated = 10;
    const endWith = (failed: number, succeeded: number) => [
      terminal('a', { succeeded, failed: 0 }),
      terminal('b', { succeeded: 0, failed, state: 'FAILURE' }),
    ];

    it('ends FAILURE when failed items exceed the tolerated share of attempted items', () => {
      const progress = started(['a', 'b'], { toleratedFailurePercentage: tolerated });
      const ends = endWith(11, 89);

      const result = apply(progress, ends);

      expect(sum(ends, 'failed') * 100).toBeGreaterThan(tolerated * sum(ends, 'attempted'));
      expect(result.task.task_state).toBe('FAILURE');
    });

    it('ends SUCCESS when failed items stay under the tolerated share', () => {
      const progress = started(['a', 'b'], { toleratedFailurePercentage: tolerated });
      const ends = endWith(9, 91);

      const result = apply(progress, ends);

      expect(sum(ends, 'failed') * 100).toBeLessThan(tolerated * sum(ends, 'attempted'));
      expect(result.task.task_state).toBe('SUCCESS');
    });

    it('ends SUCCESS when failed items are exactly the tolerated share', () => {
      const progress = started(['a', 'b'], { toleratedFailurePercentage: tolerated });
      const ends = endWith(10, 90);

      const result = apply(progress, ends);

      expect(sum(ends, 'failed') * 100).toBe(tolerated * sum(ends, 'attempted'));
      expect(result.task.task_state).toBe('SUCCESS');
    });

    it('does not end the task before its last subtask, however many items failed', () => {
      const progress = started(['a', 'b', 'c'], { toleratedFailurePercentage: 0 });

      const result = apply(progress, [terminal('a', { succeeded: 0, failed: 100, state: 'FAILURE' })]);

      expect(result.task.task_state).toBe('PROGRESS');
    });
  });
});

describe('rule 7: duration_ms becomes max(stored, now − start_time) on every applied change', () => {
  it('is the time elapsed since start_time', () => {
    const progress = started(['a', 'b']);
    const elapsedMs = 1_234;

    const result = apply(progress, [status('a', { state: 'PROGRESS' })], T0 + elapsedMs);

    expect(result.task.task_output.duration_ms).toBe(elapsedMs);
  });

  it('never shrinks when a later call sees an earlier clock, and grows again afterwards', () => {
    const progress = started(['a', 'b', 'c']);

    const first = stored(progress, apply(progress, [status('a', { state: 'PROGRESS' })], T0 + 5_000));
    const skewed = stored(first, apply(first, [status('b', { state: 'PROGRESS' })], T0 + 2_000));
    const caughtUp = apply(skewed, [status('c', { state: 'PROGRESS' })], T0 + 9_000);

    expect(skewed.task.task_output.duration_ms).toBe(5_000);
    expect(skewed.task.version).toBe(first.task.version + 1);
    expect(caughtUp.task.task_output.duration_ms).toBe(9_000);
  });

  it('stays 0 when the clock reads earlier than start_time', () => {
    const progress = started(['a']);

    const result = apply(progress, [status('a', { state: 'PROGRESS' })], T0 - 60_000);

    expect(result.task.task_output.duration_ms).toBe(0);
  });

  it('is not touched when nothing applies', () => {
    const progress = afterCalls(started(['a']), [[terminal('a')]], T0 + 3_000);

    const result = apply(progress, [terminal('a')], T0 + 8_000);

    expect(result.task.task_output.duration_ms).toBe(3_000);
  });
});

describe('rule 8: a call that applies anything increments version by exactly 1; one that applies nothing writes nothing', () => {
  it('increments version by 1 however many statuses the call applies', () => {
    const progress = started(['a', 'b', 'c']);
    const batch = [status('a', { state: 'PROGRESS' }), terminal('b'), terminal('c', { state: 'FAILURE' })];

    const result = apply(progress, batch);

    expect(result.outcomes.filter((outcome) => outcome.kind === 'applied')).toHaveLength(batch.length);
    expect(result.task.version).toBe(progress.task.version + 1);
  });

  it('returns the same task object and no changed subtask when nothing applies', () => {
    const progress = afterCalls(started(['a', 'b']), [
      [terminal('a'), status('b', { retried_withmax: 2, state: 'RETRY' })],
    ]);

    const result = apply(progress, [terminal('a'), status('b', { state: 'PROGRESS' }), terminal('ghost')]);

    expect(result.outcomes.map((outcome) => outcome.kind)).toEqual(['duplicate', 'stale', 'rejected']);
    expect(result.task).toBe(progress.task);
    expect(result.changed).toEqual([]);
  });

  it('writes one record per changed subtask, in first-touched order, stamped with the new version and time', () => {
    const progress = started(['a', 'b', 'c']);
    const nowMs = T0 + 42_000;

    const result = apply(
      progress,
      [status('c', { state: 'PROGRESS' }), status('a', { state: 'PROGRESS' }), terminal('c')],
      nowMs,
    );

    expect(result.changed.map((record) => record.subtask_id)).toEqual(['c', 'a']);
    for (const record of result.changed) {
      expect(record).toMatchObject({
        task_id: TASK_ID,
        updated_version: result.task.version,
        updated_at: new Date(nowMs).toISOString(),
      });
    }
    expect(result.task.updated_at).toBe(new Date(nowMs).toISOString());
  });

  it('counts up by one per applying call across calls', () => {
    const progress = started(['a', 'b']);
    const calls = [[status('a', { state: 'PROGRESS' })], [terminal('a')], [terminal('a')], [terminal('b')]];

    const versions = calls.reduce<{ progress: Progress; versions: number[] }>(
      (acc, statuses) => {
        const next = stored(acc.progress, apply(acc.progress, statuses));
        return { progress: next, versions: [...acc.versions, next.task.version] };
      },
      { progress, versions: [] },
    ).versions;

    const start = progress.task.version;
    expect(versions).toEqual([start + 1, start + 2, start + 2, start + 3]);
  });
});

describe('statuses of one subtask within a batch are judged one after the other', () => {
  it('applies PROGRESS then SUCCESS, and stores and counts the SUCCESS', () => {
    const progress = started(['a', 'b']);
    const done = terminal('a', { succeeded: 70 });

    const result = apply(progress, [status('a', { succeeded: 20, state: 'PROGRESS' }), done]);

    expect(result.outcomes).toEqual([{ kind: 'applied' }, { kind: 'applied' }]);
    expect(result.changed.map((record) => record.status)).toEqual([done]);
    expect(result.task.task_output.succeeded).toBe(done.succeeded);
  });

  it('applies the first SUCCESS and treats the second as a duplicate, counting once', () => {
    const progress = started(['a', 'b']);
    const done = terminal('a', { succeeded: 70 });

    const result = apply(progress, [done, { ...done }]);

    expect(result.outcomes).toEqual([{ kind: 'applied' }, { kind: 'duplicate' }]);
    expect(result.task.task_output.succeeded).toBe(done.succeeded);
    expect(result.task.subtasks.succeeded).toBe(1);
  });

  it('applies retry 2 and treats a later retry 1 as stale', () => {
    const progress = started(['a']);
    const second = status('a', { succeeded: 8, retried_nomax: 2, state: 'RETRY' });

    const result = apply(progress, [second, status('a', { succeeded: 4, retried_nomax: 1, state: 'RETRY' })]);

    expect(result.outcomes).toEqual([{ kind: 'applied' }, { kind: 'stale' }]);
    expect(result.changed.map((record) => record.status)).toEqual([second]);
  });

  it('gives the same records and outcomes as applying its statuses one call at a time', () => {
    const progress = started(['a', 'b']);
    const batch = [
      status('a', { succeeded: 2, retried_withmax: 1, state: 'RETRY' }),
      status('b', { succeeded: 5, state: 'PROGRESS' }),
      status('a', { succeeded: 1, state: 'PROGRESS' }),
      terminal('b', { succeeded: 9, failed: 1, state: 'FAILURE' }),
      terminal('a', { succeeded: 3, retried_withmax: 1 }),
      terminal('b', { succeeded: 10 }),
    ];

    const together = stored(progress, apply(progress, batch));
    const oneByOne = batch.reduce<{ progress: Progress; kinds: string[] }>(
      (acc, subtaskStatus) => {
        const result = apply(acc.progress, [subtaskStatus]);
        return {
          progress: stored(acc.progress, result),
          kinds: [...acc.kinds, ...result.outcomes.map((outcome) => outcome.kind)],
        };
      },
      { progress, kinds: [] },
    );

    expect(apply(progress, batch).outcomes.map((outcome) => outcome.kind)).toEqual(oneByOne.kinds);
    expect(together.task.task_output).toEqual(oneByOne.progress.task.task_output);
    expect(together.task.subtasks).toEqual(oneByOne.progress.task.subtasks);
    expect(together.task.task_state).toBe(oneByOne.progress.task.task_state);
    const statusesOf = (records: ReadonlyMap<string, SubtaskRecord>) =>
      [...records.values()].map((record) => record.status);
    expect(statusesOf(together.subtasks)).toEqual(statusesOf(oneByOne.progress.subtasks));
  });
});

describe('applyStatuses is pure', () => {
  it('does not mutate the task or the subtask map it is given', () => {
    const progress = afterCalls(started(['a', 'b', 'c']), [
      [status('a', { succeeded: 1, state: 'PROGRESS' })],
    ]);
    const taskBefore = structuredClone(progress.task);
    const subtasksBefore = structuredClone(progress.subtasks);

    apply(progress, [terminal('a'), terminal('b', { state: 'FAILURE' }), terminal('ghost')], LATER + 1);

    expect(progress.task).toEqual(taskBefore);
    expect(progress.subtasks).toEqual(subtasksBefore);
  });
});
