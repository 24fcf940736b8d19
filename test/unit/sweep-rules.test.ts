/** The sweeper's pure rules: what is due, what ends, what shows a stopped fold, and a run's budget. */

import { describe, expect, it } from 'vitest';
import { oldestRunningMs } from '../../lambdas/core/fold';
import { SWEEPER } from '../../lambdas/service-settings';
import { endingFor } from '../../lambdas/sweeper/end-subtasks';
import { hasUnfoldedChanges } from '../../lambdas/sweeper/idle-recount';
import { RunBudget } from '../../lambdas/sweeper/run-budget';
import { initializeRequest, readyTask, shardCounter, status, subtaskRecord, T0 } from '../support/factories';

const MINUTE = 60_000;

describe('oldestRunningMs', () => {
  const task = readyTask(initializeRequest('task-1', 4), { write_shards: 2, shard_sizes: [2, 2] });

  it('takes a shard never recounted since initialize as running since its counter was written', () => {
    const counters = [
      shardCounter(task, 0, { oldest_running_ms: T0 + 5 * MINUTE, latest_change_ms: T0 + 5 * MINUTE }),
      shardCounter(task, 1),
    ];

    expect(oldestRunningMs(task, counters)).toBe(T0);
  });

  it('ignores a shard whose subtasks have all ended', () => {
    const counters = [
      shardCounter(task, 0, { oldest_running_ms: T0 + 5 * MINUTE }),
      shardCounter(task, 1, { done: 2, latest_change_ms: T0 + MINUTE }),
    ];

    expect(oldestRunningMs(task, counters)).toBe(T0 + 5 * MINUTE);
  });
});

describe('endingFor', () => {
  const timed = readyTask(initializeRequest('task-1', 2, { subtaskTimeoutSeconds: 600 }));
  const counters = [shardCounter(timed, 0, { oldest_running_ms: T0 })];

  it('starts a timeout pass only once the oldest running subtask is overdue, for those heard from before the cutoff', () => {
    expect(endingFor(timed, counters, T0 + 10 * MINUTE - 1)).toBeUndefined();
    expect(endingFor(timed, counters, T0 + 10 * MINUTE)).toEqual({
      state: 'FAILURE',
      reason: 'TIMED_OUT',
      pass: 'TIMEOUT',
      heardBefore: T0,
    });
  });

  it('goes on with a timeout pass left unfinished, whatever the counters say', () => {
    const resumed = { ...timed, end_cursor: { reason: 'TIMEOUT' as const, shard: 0 } };

    expect(endingFor(resumed, [], T0 + MINUTE)?.pass).toBe('TIMEOUT');
  });

  it('puts a cancel before the deadline, and the deadline before timeouts', () => {
    const deadline = T0 + 5 * MINUTE;
    const both = readyTask(
      initializeRequest('task-1', 2, {
        subtaskTimeoutSeconds: 60,
        deadline: new Date(deadline).toISOString(),
      }),
    );

    expect(endingFor(both, counters, deadline)?.pass).toBe('DEADLINE');
    expect(endingFor({ ...both, cancel_requested: true }, counters, deadline)).toMatchObject({
      pass: 'CANCELED',
      state: 'REVOKED',
    });
  });
});

describe('hasUnfoldedChanges', () => {
  const task = readyTask();
  const settled = T0 + 20 * MINUTE;
  const folded = shardCounter(task, 0, { latest_change_ms: T0 + MINUTE });

  it('is true for a change older than the grace that the counter does not show', () => {
    const items = [subtaskRecord(status('sub-00000'), { updatedAtMs: T0 + 2 * MINUTE })];

    expect(hasUnfoldedChanges(task, items, folded, settled)).toBe(true);
  });

  it('is false for a change the counter shows, or one too recent for the fold to have counted', () => {
    const shown = [subtaskRecord(status('sub-00000'), { updatedAtMs: T0 + MINUTE })];
    const recent = [
      subtaskRecord(status('sub-00000'), {
        updatedAtMs: settled - SWEEPER.unfoldedAfterMinutes * MINUTE + 1,
      }),
    ];

    expect(hasUnfoldedChanges(task, shown, folded, settled)).toBe(false);
    expect(hasUnfoldedChanges(task, recent, folded, settled)).toBe(false);
  });

  it('ignores items of another generation', () => {
    const leftover = [
      subtaskRecord(status('sub-00000'), { updatedAtMs: T0 + 2 * MINUTE, generation: 'old' }),
    ];

    expect(hasUnfoldedChanges(task, leftover, folded, settled)).toBe(false);
  });
});

describe('RunBudget', () => {
  it('has time while more than the margin is left, and spends subtasks down to zero', () => {
    let remaining = 30_000;
    const budget = new RunBudget(() => remaining, 10_000, 5);

    const before = budget.hasTime;
    remaining = 10_000;
    budget.spend(7);

    expect([before, budget.hasTime, budget.subtasksLeft, budget.timeLeftMs()]).toEqual([true, false, 0, 0]);
  });
});
