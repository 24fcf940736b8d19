/**
 * Rules 3–6 of the design, as the pure core judges them against the subtask items alone: the task's totals are
 * the fold's business now (see fold.test.ts).
 */

import { describe, expect, it } from 'vitest';
import {
  type ApplyResult,
  applyStatuses,
  isStale,
  judge,
  type StatusUpdate,
} from '../../lambdas/core/apply-statuses';
import { StaleGenerationError, UnknownSubtaskError } from '../../lambdas/core/errors';
import { type SubtaskStatus, TERMINAL_STATES } from '../../lambdas/core/subtask-status';
import { type InitializeRequest, initializeTask, type SubtaskRecord } from '../../lambdas/core/task';
import { GENERATION, initializeRequest, status, T0, terminal } from '../support/factories';

const TASK_ID = 'task-1';
const TASK = { task_id: TASK_ID, generation: GENERATION };
const LATER = T0 + 1_000;

type Subtasks = ReadonlyMap<string, SubtaskRecord>;

/** The subtask items of a freshly initialized task over `ids`, as the applier would read them. */
function started(ids: readonly string[], extra: Partial<InitializeRequest> = {}): Subtasks {
  const { subtasks } = initializeTask(initializeRequest(TASK_ID, ids, extra), T0, GENERATION);
  return new Map(subtasks.map((record) => [record.subtask_id, record]));
}

function updates(statuses: readonly SubtaskStatus[]): StatusUpdate[] {
  return statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus }));
}

function apply(subtasks: Subtasks, statuses: readonly SubtaskStatus[], nowMs = LATER): ApplyResult {
  return applyStatuses(TASK, subtasks, updates(statuses), nowMs);
}

/** The items as a store would hold them after writing `result`. */
function stored(subtasks: Subtasks, result: ApplyResult): Subtasks {
  const next = new Map(subtasks);
  for (const record of result.changed) next.set(record.subtask_id, record);
  return next;
}

/** `subtasks` after each group of statuses was applied and written in its own call. */
function afterCalls(
  subtasks: Subtasks,
  calls: readonly (readonly SubtaskStatus[])[],
  nowMs = LATER,
): Subtasks {
  return calls.reduce((current, statuses) => stored(current, apply(current, statuses, nowMs)), subtasks);
}

function kinds(result: ApplyResult): string[] {
  return result.outcomes.map((outcome) => outcome.kind);
}

describe('rule 3: a status for a subtask the task does not have is rejected permanently', () => {
  it('rejects it with a permanent UnknownSubtaskError naming the task and the subtask', () => {
    const subtasks = started(['a', 'b']);

    const result = apply(subtasks, [terminal('ghost')]);

    const outcome = result.outcomes[0];
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
    const subtasks = started(['a', 'b']);

    const result = apply(subtasks, [
      terminal('a', { succeeded: 40, failed: 2 }),
      terminal('ghost'),
      status('b', { succeeded: 3, state: 'PROGRESS' }),
    ]);

    expect(kinds(result)).toEqual(['applied', 'rejected', 'applied']);
    expect(result.changed.map((record) => record.subtask_id)).toEqual(['a', 'b']);
  });

  it('writes nothing when every status of the batch is rejected', () => {
    const subtasks = started(['a']);

    const result = apply(subtasks, [terminal('ghost'), status('phantom', { state: 'PROGRESS' })]);

    expect(kinds(result)).toEqual(['rejected', 'rejected']);
    expect(result.changed).toEqual([]);
  });
});

describe('a status that names its generation', () => {
  it('is rejected permanently with StaleGenerationError when the task was initialized again since', () => {
    const subtasks = started(['a']);
    const update: StatusUpdate = { subtaskId: 'a', status: terminal('a'), generation: 'gen-0' };

    const result = applyStatuses(TASK, subtasks, [update], LATER);

    const outcome = result.outcomes[0];
    const error = outcome?.kind === 'rejected' ? outcome.error : undefined;
    expect(error).toBeInstanceOf(StaleGenerationError);
    expect(error).toMatchObject({ code: 'STALE_GENERATION', permanent: true, generation: 'gen-0' });
    expect(result.changed).toEqual([]);
  });

  it("is applied when it names the task's own generation", () => {
    const subtasks = started(['a']);
    const update: StatusUpdate = { subtaskId: 'a', status: terminal('a'), generation: GENERATION };

    const result = applyStatuses(TASK, subtasks, [update], LATER);

    expect(kinds(result)).toEqual(['applied']);
  });

  it('is judged on its generation before the subtask is looked up', () => {
    const update: StatusUpdate = { subtaskId: 'ghost', status: terminal('ghost'), generation: 'gen-0' };

    const outcome = judge(TASK, undefined, update);

    expect(outcome.kind === 'rejected' && outcome.error).toBeInstanceOf(StaleGenerationError);
  });
});

describe('rule 4: a status for a subtask already in a terminal state is a duplicate and changes nothing', () => {
  it.each(TERMINAL_STATES)('after %s, no later status of any kind changes anything', (endState) => {
    const subtasks = afterCalls(started(['a', 'b']), [[terminal('a', { succeeded: 10, state: endState })]]);
    const later = [
      terminal('a', { succeeded: 90, retried_nomax: 3 }),
      terminal('a', { failed: 5, retried_withmax: 1, state: 'FAILURE' }),
      status('a', { succeeded: 20, retried_withmax: 4, state: 'RETRY' }),
      status('a', { succeeded: 20, retried_nomax: 5, state: 'PROGRESS' }),
    ];

    const result = apply(subtasks, later, LATER + 5_000);

    expect(result.outcomes).toEqual(later.map(() => ({ kind: 'duplicate' })));
    expect(result.changed).toEqual([]);
  });

  it('judges a redelivered terminal status a duplicate', () => {
    const done = terminal('a', { succeeded: 70, failed: 3, skipped: 2 });
    const subtasks = afterCalls(started(['a', 'b']), [[done]]);

    const result = apply(subtasks, [{ ...done }]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect(result.changed).toEqual([]);
  });

  it('judges a status identical to the stored running one a duplicate', () => {
    const running = status('a', { succeeded: 12, failed: 1, retried_withmax: 1, state: 'RETRY' });
    const subtasks = afterCalls(started(['a']), [[running]]);

    const result = apply(subtasks, [{ ...running }]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect(result.changed).toEqual([]);
  });

  it('judges the initial QUEUING status sent again a duplicate', () => {
    const subtasks = started(['a']);

    const result = apply(subtasks, [status('a')]);

    expect(result.outcomes).toEqual([{ kind: 'duplicate' }]);
  });
});

describe('rule 5: an older status is stale and changes nothing', () => {
  const retried = status('a', { succeeded: 30, retried_withmax: 2, state: 'RETRY' });

  it('ignores a running status with fewer retries', () => {
    const subtasks = afterCalls(started(['a']), [[retried]]);

    const result = apply(subtasks, [status('a', { succeeded: 50, retried_withmax: 1, state: 'PROGRESS' })]);

    expect(result.outcomes).toEqual([{ kind: 'stale' }]);
    expect(result.changed).toEqual([]);
  });

  it('ignores a terminal status with fewer retries: the subtask does not end', () => {
    const subtasks = afterCalls(started(['a']), [[retried]]);

    const result = apply(subtasks, [terminal('a', { succeeded: 80, retried_withmax: 1 })]);

    expect(result.outcomes).toEqual([{ kind: 'stale' }]);
    expect(result.changed).toEqual([]);
  });

  it('ignores a status with as many retries and fewer attempted items', () => {
    const subtasks = afterCalls(started(['a']), [[retried]]);

    const result = apply(subtasks, [status('a', { succeeded: 29, retried_withmax: 2, state: 'PROGRESS' })]);

    expect(result.outcomes).toEqual([{ kind: 'stale' }]);
  });

  it('applies a status with as many retries and as many attempted items that differs otherwise', () => {
    const subtasks = afterCalls(started(['a']), [[retried]]);
    const done = terminal('a', { succeeded: 30, skipped: 2, retried_withmax: 2 });

    const result = apply(subtasks, [done]);

    expect(result.outcomes).toEqual([{ kind: 'applied' }]);
    expect(result.changed.map((record) => record.status)).toEqual([done]);
  });

  it('applies a status with more retries even with fewer attempted items', () => {
    const subtasks = afterCalls(started(['a']), [[retried]]);

    const result = apply(subtasks, [status('a', { succeeded: 1, retried_withmax: 3, state: 'RETRY' })]);

    expect(result.outcomes).toEqual([{ kind: 'applied' }]);
  });

  it('compares retried_nomax + retried_withmax, not each counter alone', () => {
    const subtasks = afterCalls(started(['a']), [[status('a', { retried_nomax: 2, state: 'RETRY' })]]);
    const fewer = status('a', { succeeded: 5, retried_withmax: 1, state: 'RETRY' });
    const asMany = status('a', { succeeded: 5, retried_withmax: 2, state: 'RETRY' });

    const outcomes = [apply(subtasks, [fewer]).outcomes, apply(subtasks, [asMany]).outcomes];

    expect(outcomes).toEqual([[{ kind: 'stale' }], [{ kind: 'applied' }]]);
  });
});

describe('isStale', () => {
  const stored = status('a', {
    succeeded: 10,
    failed: 2,
    retried_nomax: 1,
    retried_withmax: 1,
    state: 'RETRY',
  });

  it.each([
    ['fewer retries, more attempted', { succeeded: 50, retried_nomax: 1 }, true],
    ['as many retries, fewer attempted', { succeeded: 11, retried_nomax: 2 }, true],
    ['as many retries, as many attempted', { succeeded: 12, retried_withmax: 2 }, false],
    ['as many retries, more attempted', { succeeded: 13, retried_nomax: 2 }, false],
    ['more retries, fewer attempted', { succeeded: 0, retried_nomax: 3 }, false],
  ] as const)('%s', (_, counts, expected) => {
    const incoming = status('a', { ...counts, state: 'PROGRESS' });

    const stale = isStale(incoming, stored);

    expect(stale).toBe(expected);
  });
});

describe('rule 6: otherwise the subtask item is replaced at its version + 1', () => {
  it.each(['PROGRESS', 'RETRY', 'STARTED'] as const)(
    'stores a %s status with the version read + 1 and the time of the call',
    (state) => {
      const subtasks = started(['a', 'b']);
      const running = status('a', { succeeded: 25, failed: 4, skipped: 1, retried_nomax: 1, state });

      const result = apply(subtasks, [running], T0 + 42_000);

      expect(result.outcomes).toEqual([{ kind: 'applied' }]);
      expect(result.changed).toEqual([
        {
          ...subtasks.get('a'),
          status: running,
          version: 1,
          updated_at: new Date(T0 + 42_000).toISOString(),
        },
      ]);
    },
  );

  it.each(TERMINAL_STATES)('stores a %s status as it came: cumulative counts, not a difference', (state) => {
    const subtasks = afterCalls(started(['a', 'b']), [[status('a', { succeeded: 30, state: 'PROGRESS' })]]);
    const ended = terminal('a', { succeeded: 60, failed: 2, skipped: 3, state });

    const result = apply(subtasks, [ended]);

    expect(result.changed.map((record) => [record.status, record.version])).toEqual([[ended, 2]]);
  });

  it("keeps the item's task, generation and expiry", () => {
    const subtasks = started(['a'], { ttlDays: 30 });

    const result = apply(subtasks, [status('a', { state: 'PROGRESS' })]);

    const before = subtasks.get('a');
    expect(result.changed[0]).toMatchObject({
      task_id: TASK_ID,
      subtask_id: 'a',
      generation: GENERATION,
      expires_at: before?.expires_at,
    });
    expect(before?.expires_at).toBeGreaterThan(0);
  });

  it('records why the service ended a subtask when the update says so', () => {
    const subtasks = started(['a']);
    const update: StatusUpdate = {
      subtaskId: 'a',
      status: terminal('a', { succeeded: 0, state: 'FAILURE' }),
      reason: 'TIMED_OUT',
    };

    const result = applyStatuses(TASK, subtasks, [update], LATER);

    expect(result.changed[0]?.reason).toBe('TIMED_OUT');
  });

  it("stores no reason for a worker's own status", () => {
    const subtasks = started(['a']);

    const result = apply(subtasks, [terminal('a')]);

    expect(result.changed[0]).not.toHaveProperty('reason');
  });

  it('writes one record per changed subtask, in first-touched order', () => {
    const subtasks = started(['a', 'b', 'c']);

    const result = apply(subtasks, [
      status('c', { state: 'PROGRESS' }),
      status('a', { state: 'PROGRESS' }),
      terminal('c'),
    ]);

    expect(result.changed.map((record) => record.subtask_id)).toEqual(['c', 'a']);
  });

  it('raises each version by one per applying call', () => {
    const subtasks = started(['a', 'b']);
    const calls = [[status('a', { state: 'PROGRESS' })], [terminal('a')], [terminal('a')], [terminal('b')]];

    let current = subtasks;
    const versions = calls.map((statuses) => {
      current = stored(current, apply(current, statuses));
      return [current.get('a')?.version, current.get('b')?.version];
    });

    expect(versions).toEqual([
      [1, 0],
      [2, 0],
      [2, 0],
      [2, 1],
    ]);
  });
});

describe('statuses of one subtask within a batch are judged one after the other and cost one write', () => {
  it('applies PROGRESS then SUCCESS and writes only the SUCCESS, at the version read + 1', () => {
    const subtasks = started(['a', 'b']);
    const done = terminal('a', { succeeded: 70 });

    const result = apply(subtasks, [status('a', { succeeded: 20, state: 'PROGRESS' }), done]);

    expect(kinds(result)).toEqual(['applied', 'applied']);
    expect(result.changed.map((record) => [record.status, record.version])).toEqual([[done, 1]]);
  });

  it('applies the first SUCCESS and judges the second a duplicate', () => {
    const subtasks = started(['a', 'b']);
    const done = terminal('a', { succeeded: 70 });

    const result = apply(subtasks, [done, { ...done }]);

    expect(kinds(result)).toEqual(['applied', 'duplicate']);
    expect(result.changed).toHaveLength(1);
  });

  it('applies retry 2 and judges a later retry 1 stale', () => {
    const subtasks = started(['a']);
    const second = status('a', { succeeded: 8, retried_nomax: 2, state: 'RETRY' });

    const result = apply(subtasks, [second, status('a', { succeeded: 4, retried_nomax: 1, state: 'RETRY' })]);

    expect(kinds(result)).toEqual(['applied', 'stale']);
    expect(result.changed.map((record) => record.status)).toEqual([second]);
  });

  it('gives the same outcomes and statuses as applying its statuses one call at a time', () => {
    const subtasks = started(['a', 'b']);
    const batch = [
      status('a', { succeeded: 2, retried_withmax: 1, state: 'RETRY' }),
      status('b', { succeeded: 5, state: 'PROGRESS' }),
      status('a', { succeeded: 1, state: 'PROGRESS' }),
      terminal('b', { succeeded: 9, failed: 1, state: 'FAILURE' }),
      terminal('a', { succeeded: 3, retried_withmax: 1 }),
      terminal('b', { succeeded: 10 }),
    ];

    const together = apply(subtasks, batch);
    const oneByOne = batch.reduce<{ subtasks: Subtasks; kinds: string[] }>(
      (acc, subtaskStatus) => {
        const result = apply(acc.subtasks, [subtaskStatus]);
        return { subtasks: stored(acc.subtasks, result), kinds: [...acc.kinds, ...kinds(result)] };
      },
      { subtasks, kinds: [] },
    );

    const statusesOf = (records: Subtasks) => [...records.values()].map((record) => record.status);
    expect(kinds(together)).toEqual(oneByOne.kinds);
    expect(statusesOf(stored(subtasks, together))).toEqual(statusesOf(oneByOne.subtasks));
  });
});

describe('applyStatuses is pure', () => {
  it('does not mutate the subtask map or the records it is given', () => {
    const subtasks = afterCalls(started(['a', 'b', 'c']), [
      [status('a', { succeeded: 1, state: 'PROGRESS' })],
    ]);
    const before = structuredClone(subtasks);

    apply(subtasks, [terminal('a'), terminal('b', { state: 'FAILURE' }), terminal('ghost')], LATER + 1);

    expect(subtasks).toEqual(before);
  });
});
