import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  retryCount,
  SUBTASK_STATES,
  type SubtaskState,
  type SubtaskStatus,
  sameStatus,
} from '../../lambdas/core/subtask-status';
import { status } from '../support/factories';

const count = fc.nat({ max: 1_000_000 });
const state = fc.constantFrom(...SUBTASK_STATES);
const counts = fc.record(
  {
    succeeded: count,
    failed: count,
    skipped: count,
    retried_nomax: count,
    retried_withmax: count,
    state,
  },
  { requiredKeys: [] },
);

describe('createSubtaskStatus (reference create_subtask_status)', () => {
  it('starts a subtask QUEUING with every count at zero', () => {
    const created = createSubtaskStatus('sub-1');

    expect(created).toEqual({
      task_id: 'sub-1',
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      retried_nomax: 0,
      retried_withmax: 0,
      state: 'QUEUING',
    });
  });

  it('derives attempted as succeeded + failed and keeps every given count', () => {
    fc.assert(
      fc.property(counts, (given) => {
        const created = createSubtaskStatus('sub-1', given);

        expect(created.attempted).toBe((given.succeeded ?? 0) + (given.failed ?? 0));
        expect(created.succeeded).toBe(given.succeeded ?? 0);
        expect(created.failed).toBe(given.failed ?? 0);
        expect(created.skipped).toBe(given.skipped ?? 0);
        expect(created.retried_nomax).toBe(given.retried_nomax ?? 0);
        expect(created.retried_withmax).toBe(given.retried_withmax ?? 0);
      }),
    );
  });

  it('uses the given state and QUEUING when none is given', () => {
    fc.assert(
      fc.property(fc.option(state, { nil: undefined }), (given) => {
        const created = createSubtaskStatus('sub-1', given === undefined ? {} : { state: given });

        expect(created.state).toBe(given ?? 'QUEUING');
      }),
    );
  });
});

describe('incrementSubtaskStatus (reference increment_subtask_status)', () => {
  const base = fc.record({
    succeeded: count,
    failed: count,
    skipped: count,
    retried_nomax: count,
    retried_withmax: count,
    state,
  });

  it('adds each given count to the stored one', () => {
    fc.assert(
      fc.property(base, counts, (start, increments) => {
        const before = createSubtaskStatus('sub-1', start);

        const after = incrementSubtaskStatus(before, increments);

        expect(after.succeeded).toBe(before.succeeded + (increments.succeeded ?? 0));
        expect(after.failed).toBe(before.failed + (increments.failed ?? 0));
        expect(after.skipped).toBe(before.skipped + (increments.skipped ?? 0));
        expect(after.retried_nomax).toBe(before.retried_nomax + (increments.retried_nomax ?? 0));
        expect(after.retried_withmax).toBe(before.retried_withmax + (increments.retried_withmax ?? 0));
        expect(after.task_id).toBe(before.task_id);
      }),
    );
  });

  it('grows attempted by succeeded + failed, keeping attempted == succeeded + failed', () => {
    fc.assert(
      fc.property(base, counts, (start, increments) => {
        const before = createSubtaskStatus('sub-1', start);

        const after = incrementSubtaskStatus(before, increments);

        expect(after.attempted).toBe(
          before.attempted + (increments.succeeded ?? 0) + (increments.failed ?? 0),
        );
        expect(after.attempted).toBe(after.succeeded + after.failed);
      }),
    );
  });

  it('replaces the state only when one is given', () => {
    fc.assert(
      fc.property(state, fc.option(state, { nil: undefined }), (stored, given) => {
        const before = status('sub-1', { state: stored });

        const after = incrementSubtaskStatus(
          before,
          given === undefined ? { succeeded: 1 } : { state: given },
        );

        expect(after.state).toBe(given ?? stored);
      }),
    );
  });

  it('with no increments returns an equal status as a new object', () => {
    const before = status('sub-1', { succeeded: 3, failed: 1, skipped: 2, retried_nomax: 1, state: 'RETRY' });

    const after = incrementSubtaskStatus(before);

    expect(after).toEqual(before);
    expect(after).not.toBe(before);
  });

  it('leaves the input status untouched', () => {
    fc.assert(
      fc.property(base, counts, (start, increments) => {
        const before = Object.freeze(createSubtaskStatus('sub-1', start));
        const copy = { ...before };

        incrementSubtaskStatus(before, increments);

        expect(before).toEqual(copy);
      }),
    );
  });

  it('builds a cumulative history whose last status holds the sum of every step', () => {
    const steps = [
      { succeeded: 10, failed: 1, skipped: 0, retried_nomax: 0, retried_withmax: 0, state: 'PROGRESS' },
      { succeeded: 5, failed: 0, skipped: 2, retried_nomax: 0, retried_withmax: 1, state: 'RETRY' },
      { succeeded: 7, failed: 2, skipped: 0, retried_nomax: 1, retried_withmax: 0, state: 'SUCCESS' },
    ] as const;

    const last = steps.reduce<SubtaskStatus>(
      (current, step) => incrementSubtaskStatus(current, step),
      createSubtaskStatus('sub-1'),
    );

    const sum = (field: 'succeeded' | 'failed' | 'skipped' | 'retried_nomax' | 'retried_withmax') =>
      steps.reduce((total, step) => total + step[field], 0);
    expect(last).toEqual({
      task_id: 'sub-1',
      attempted: sum('succeeded') + sum('failed'),
      succeeded: sum('succeeded'),
      failed: sum('failed'),
      skipped: sum('skipped'),
      retried_nomax: sum('retried_nomax'),
      retried_withmax: sum('retried_withmax'),
      state: 'SUCCESS',
    });
  });
});

describe('isTerminalState (Celery READY_STATES)', () => {
  const expected: readonly [SubtaskState, boolean][] = [
    ['QUEUING', false],
    ['PENDING', false],
    ['RECEIVED', false],
    ['STARTED', false],
    ['PROGRESS', false],
    ['RETRY', false],
    ['SUCCESS', true],
    ['FAILURE', true],
    ['REVOKED', true],
  ];

  it('knows exactly the nine states of the design', () => {
    const known = [...SUBTASK_STATES].sort();

    expect(known).toEqual(expected.map(([name]) => name).sort());
  });

  it.each(expected)('%s is terminal: %s', (name, terminal) => {
    const result = isTerminalState(name);

    expect(result).toBe(terminal);
  });
});

describe('retryCount', () => {
  it('is retried_nomax + retried_withmax', () => {
    fc.assert(
      fc.property(count, count, (nomax, withmax) => {
        const subject = status('sub-1', { retried_nomax: nomax, retried_withmax: withmax });

        const result = retryCount(subject);

        expect(result).toBe(nomax + withmax);
      }),
    );
  });
});

describe('sameStatus', () => {
  const reference = status('sub-1', {
    succeeded: 4,
    failed: 1,
    skipped: 2,
    retried_nomax: 1,
    retried_withmax: 3,
    state: 'RETRY',
  });

  it('holds for two statuses with equal fields', () => {
    const copy = { ...reference };

    const result = sameStatus(reference, copy);

    expect(result).toBe(true);
  });

  it.each<[string, SubtaskStatus]>([
    ['task_id', { ...reference, task_id: 'sub-2' }],
    ['attempted', { ...reference, attempted: reference.attempted + 1 }],
    ['succeeded', { ...reference, succeeded: reference.succeeded + 1 }],
    ['failed', { ...reference, failed: reference.failed + 1 }],
    ['skipped', { ...reference, skipped: reference.skipped + 1 }],
    ['retried_nomax', { ...reference, retried_nomax: reference.retried_nomax + 1 }],
    ['retried_withmax', { ...reference, retried_withmax: reference.retried_withmax + 1 }],
    ['state', { ...reference, state: 'PROGRESS' }],
  ])('fails when only %s differs', (_, other) => {
    const forward = sameStatus(reference, other);
    const backward = sameStatus(other, reference);

    expect(forward).toBe(false);
    expect(backward).toBe(false);
  });
});
