import { describe, expect, it } from 'vitest';
import { InvalidBodyError, parseInitializeBody } from '../../lambdas/api/initialize-body';
import { applyStatuses } from '../../lambdas/core/apply-statuses';
import {
  endingState,
  foldTask,
  LOST_WEIGHT,
  nextDueAt,
  recountShard,
  taskSucceeded,
} from '../../lambdas/core/fold';
import { completionMessage } from '../../lambdas/core/progress-report';
import type { SubtaskState } from '../../lambdas/core/subtask-status';
import {
  differingFields,
  type InitializeRequest,
  type ItemCounts,
  initializeTask,
  type SubtaskRecord,
  type TaskRecord,
  toBasisPoints,
  ZERO_COUNTS,
} from '../../lambdas/core/task';
import { SWEEPER } from '../../lambdas/service-settings';
import {
  GENERATION,
  initializeRequest,
  readyTask,
  shardCounter,
  status,
  subtaskIds,
  subtaskRecord,
  T0,
  terminal,
} from '../support/factories';

const MINUTE_MS = 60_000;
const NOW = T0 + 60 * MINUTE_MS;

function counts(attempted: number, succeeded: number, skipped = 0): ItemCounts {
  return { attempted, succeeded, failed: attempted - succeeded, skipped };
}

/** A task of `n` subtasks in one write shard, ready. */
function oneShardTask(n: number, extra: Partial<InitializeRequest> = {}): TaskRecord {
  return readyTask(initializeRequest('task-1', n, extra));
}

/** A task of 5 subtasks whose items sit in two write shards of 3 and 2. */
function twoShardTask(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return readyTask(initializeRequest('task-1', 5), { write_shards: 2, shard_sizes: [3, 2], ...overrides });
}

function running(id: string, succeeded: number, options: { version?: number; atMs?: number } = {}) {
  return subtaskRecord(status(id, { succeeded, state: 'PROGRESS' }), {
    version: options.version ?? 1,
    updatedAtMs: options.atMs ?? T0,
  });
}

function ended(
  id: string,
  state: SubtaskState,
  itemCounts: { succeeded?: number; failed?: number; skipped?: number } = {},
  options: { version?: number; atMs?: number } = {},
): SubtaskRecord {
  return subtaskRecord(terminal(id, { succeeded: 0, ...itemCounts, state }), {
    version: options.version ?? 2,
    updatedAtMs: options.atMs ?? T0,
  });
}

/** Recounts the one shard of `task` from `items` and folds the counter into the task. */
function foldOneShard(task: TaskRecord, items: readonly SubtaskRecord[]): TaskRecord | undefined {
  return foldTask(task, [recountShard(task, 0, items)], NOW)?.task;
}

describe('recountShard', () => {
  it('sums the counts of ended subtasks and counts SUCCESS as succeeded, FAILURE and REVOKED as failed', () => {
    const task = oneShardTask(4);
    const items = [
      ended('a', 'SUCCESS', { succeeded: 10, failed: 1, skipped: 2 }),
      ended('b', 'FAILURE', { succeeded: 3, failed: 4 }),
      ended('c', 'REVOKED', { skipped: 5 }),
      running('d', 7),
    ];

    const counter = recountShard(task, 0, items);

    expect(counter).toMatchObject({
      counts: { attempted: 18, succeeded: 13, failed: 5, skipped: 7 },
      subtasks_succeeded: 1,
      subtasks_failed: 2,
      done: 3,
      lost: 0,
    });
  });

  it('reports the latest counts of running subtasks as in_flight, apart from the ended counts', () => {
    const task = oneShardTask(3);
    const items = [
      running('a', 7),
      subtaskRecord(status('b', { succeeded: 2, failed: 1, skipped: 4, retried_nomax: 1, state: 'RETRY' })),
      ended('c', 'SUCCESS', { succeeded: 50 }),
    ];

    const counter = recountShard(task, 0, items);

    expect(counter.in_flight).toEqual({ attempted: 10, succeeded: 9, failed: 1, skipped: 4 });
    expect(counter.counts).toEqual(counts(50, 50));
  });

  it('ignores items of another generation: their subtask counts as lost, weighed in vsum as a loss, not by its version', () => {
    const task = oneShardTask(2);
    const leftover = subtaskRecord(terminal('sub-00001', { succeeded: 99 }), {
      generation: 'gen-0',
      version: 7,
    });
    const items = [ended('sub-00000', 'SUCCESS', { succeeded: 10 }, { version: 3 }), leftover];

    const counter = recountShard(task, 0, items);

    expect(counter).toMatchObject({
      counts: counts(10, 10),
      subtasks_succeeded: 1,
      subtasks_failed: 1,
      lost: 1,
      done: 2,
      vsum: 3 + LOST_WEIGHT,
    });
  });

  it('counts a subtask with no item as a failed subtask, lost', () => {
    const task = oneShardTask(5);
    const items = [ended('a', 'SUCCESS', { succeeded: 1 }), ended('b', 'FAILURE'), running('c', 1)];

    const counter = recountShard(task, 0, items);

    expect(counter).toMatchObject({ lost: 2, subtasks_succeeded: 1, subtasks_failed: 3, done: 4 });
  });

  it("takes the shard's expected size from the task's shard_sizes", () => {
    const task = twoShardTask();

    const counters = [recountShard(task, 0, []), recountShard(task, 1, [])];

    expect(counters.map((counter) => counter.lost)).toEqual([3, 2]);
  });

  it("sums the items' versions as vsum", () => {
    const task = oneShardTask(3);
    const items = [
      running('a', 1, { version: 4 }),
      ended('b', 'SUCCESS', {}, { version: 9 }),
      running('c', 0, { version: 0 }),
    ];

    const counter = recountShard(task, 0, items);

    expect(counter.vsum).toBe(13);
  });

  it('records the latest change and the least recently heard-from running subtask', () => {
    const task = oneShardTask(3);
    const items = [
      running('a', 1, { atMs: T0 + 5_000 }),
      running('b', 1, { atMs: T0 + 2_000 }),
      ended('c', 'SUCCESS', {}, { atMs: T0 + 9_000 }),
    ];

    const counter = recountShard(task, 0, items);

    expect(counter.latest_change_ms).toBe(T0 + 9_000);
    expect(counter.oldest_running_ms).toBe(T0 + 2_000);
  });

  it('has no oldest_running_ms once no subtask runs', () => {
    const task = oneShardTask(2);

    const counter = recountShard(task, 0, [ended('a', 'SUCCESS'), ended('b', 'FAILURE')]);

    expect(counter).not.toHaveProperty('oldest_running_ms');
  });

  it('names the task, the shard and the generation', () => {
    const task = twoShardTask();

    const counter = recountShard(task, 1, []);

    expect(counter).toMatchObject({ task_id: 'task-1', shard: 1, generation: GENERATION });
  });

  it("gives initialize's zero counter for a shard whose subtasks have not run, queued since initialization", () => {
    const { task, counters, subtasks } = initializeTask(initializeRequest('task-1', 6), T0, GENERATION);

    const counter = recountShard(task, 0, subtasks);

    expect(counter).toEqual({ ...counters[0], oldest_running_ms: T0 });
  });
});

describe('foldTask', () => {
  it("sums the counters' counts, in-flight counts and subtask counters into the task", () => {
    const task = twoShardTask();
    const counters = [
      shardCounter(task, 0, {
        counts: counts(10, 8, 1),
        in_flight: counts(3, 3),
        subtasks_succeeded: 1,
        subtasks_failed: 1,
        done: 2,
        vsum: 4,
      }),
      shardCounter(task, 1, {
        counts: counts(5, 5, 2),
        in_flight: counts(1, 0),
        subtasks_succeeded: 1,
        done: 1,
        vsum: 2,
      }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_output).toMatchObject({ attempted: 15, succeeded: 13, failed: 2, skipped: 3 });
    expect(result?.task.in_flight).toEqual({ attempted: 4, succeeded: 3, failed: 1, skipped: 0 });
    expect(result?.task.subtasks).toEqual({ total: 5, succeeded: 2, failed: 1 });
    expect(result?.task.counters_vsum).toBe(6);
  });

  it('raises version by 1, stamps updated_at and keeps the task PROGRESS while subtasks remain', () => {
    const task = twoShardTask({ version: 7 });
    const counters = [
      shardCounter(task, 0, { done: 3, subtasks_succeeded: 3, vsum: 6 }),
      shardCounter(task, 1),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task).toMatchObject({
      version: 8,
      task_state: 'PROGRESS',
      updated_at: new Date(NOW).toISOString(),
    });
    expect(result?.task).not.toHaveProperty('ended_at');
    expect(result?.dueAt).toBeGreaterThan(0);
  });

  it.each([
    ['equal to', 10],
    ['below', 9],
  ])("returns undefined when the counters' vsum sum is %s the task's", (_, sum) => {
    const task = twoShardTask({ counters_vsum: 10 });
    const counters = [shardCounter(task, 0, { done: 1, vsum: sum - 4 }), shardCounter(task, 1, { vsum: 4 })];

    const result = foldTask(task, counters, NOW);

    expect(result).toBeUndefined();
  });

  it("folds counters whose vsum sum is above the task's", () => {
    const task = twoShardTask({ counters_vsum: 10 });
    const counters = [shardCounter(task, 0, { done: 1, vsum: 7 }), shardCounter(task, 1, { vsum: 4 })];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.counters_vsum).toBe(11);
  });

  it('ignores counters of another generation', () => {
    const task = twoShardTask();
    const counters = [
      shardCounter(task, 0, { generation: 'gen-0', done: 3, subtasks_succeeded: 3, vsum: 9 }),
      shardCounter(task, 1, { done: 2, subtasks_succeeded: 2, vsum: 2 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task).toMatchObject({ counters_vsum: 2, task_state: 'PROGRESS' });
    expect(result?.task.subtasks.succeeded).toBe(2);
  });

  it('ends the task when every subtask is done, with ended_at and no due time', () => {
    const task = twoShardTask();
    const counters = [
      shardCounter(task, 0, { counts: counts(30, 30), done: 3, subtasks_succeeded: 3, vsum: 6 }),
      shardCounter(task, 1, { counts: counts(20, 20), done: 2, subtasks_succeeded: 2, vsum: 4 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task).toMatchObject({ task_state: 'SUCCESS', ended_at: new Date(NOW).toISOString() });
    expect(result).not.toHaveProperty('dueAt');
  });

  it('ends the task by the ending rule: FAILURE when every subtask failed', () => {
    const task = twoShardTask();
    const counters = [
      shardCounter(task, 0, { done: 3, subtasks_failed: 3, vsum: 6 }),
      shardCounter(task, 1, { done: 2, subtasks_failed: 2, lost: 2, vsum: 1 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_state).toBe('FAILURE');
  });

  it('ends the task CANCELED when a cancel was requested, whatever the counts', () => {
    const task = twoShardTask({ cancel_requested: true });
    const counters = [
      shardCounter(task, 0, { counts: counts(30, 30), done: 3, subtasks_succeeded: 3, vsum: 6 }),
      shardCounter(task, 1, { counts: counts(20, 20), done: 2, subtasks_succeeded: 2, vsum: 4 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_state).toBe('CANCELED');
  });

  it('keeps a task with a cancel requested PROGRESS until every subtask is done', () => {
    const task = twoShardTask({ cancel_requested: true });
    const counters = [shardCounter(task, 0, { done: 3, subtasks_failed: 3, vsum: 6 }), shardCounter(task, 1)];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_state).toBe('PROGRESS');
  });

  it.each(['SUCCESS', 'FAILURE', 'CANCELED'] as const)('never changes a task that ended %s', (state) => {
    const task = twoShardTask({ task_state: state, counters_vsum: 3 });
    const counters = [
      shardCounter(task, 0, { counts: counts(90, 90), done: 3, subtasks_succeeded: 3, vsum: 60 }),
      shardCounter(task, 1, { counts: counts(90, 90), done: 2, subtasks_succeeded: 2, vsum: 40 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result).toBeUndefined();
  });

  it('sets duration_ms to the latest change minus start_time', () => {
    const task = twoShardTask();
    const counters = [
      shardCounter(task, 0, { latest_change_ms: T0 + 4_000, vsum: 1 }),
      shardCounter(task, 1, { latest_change_ms: T0 + 9_500, vsum: 1 }),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_output.duration_ms).toBe(9_500);
  });

  it('never lowers duration_ms', () => {
    const fresh = twoShardTask();
    const task = { ...fresh, task_output: { ...fresh.task_output, duration_ms: 20_000 } };
    const counters = [
      shardCounter(task, 0, { latest_change_ms: T0 + 9_500, vsum: 1 }),
      shardCounter(task, 1),
    ];

    const result = foldTask(task, counters, NOW);

    expect(result?.task.task_output.duration_ms).toBe(20_000);
  });

  it('keeps what initialize set: action, total, start_time, options, generation', () => {
    const task = readyTask(
      initializeRequest('task-1', 2, { actionName: 'graded', total: 77, toleratedFailurePercentage: 5 }),
    );
    const counter = shardCounter(task, 0, { counts: counts(3, 3), done: 1, subtasks_succeeded: 1, vsum: 2 });

    const result = foldTask(task, [counter], NOW);

    expect(result?.task).toMatchObject({
      generation: task.generation,
      options: task.options,
      task_output: { action_name: 'graded', total: 77, start_time: task.task_output.start_time },
    });
  });
});

describe('a subtask removed while running (DESIGN §2: it counts as failed, LOST)', () => {
  it("ends the task once the shard is recounted without the subtask's item", () => {
    const task = oneShardTask(2);
    const finished = ended('sub-00000', 'SUCCESS', { succeeded: 10 }, { version: 2 });
    const stillRunning = running('sub-00001', 3, { version: 1 });
    const folded = foldTask(task, [recountShard(task, 0, [finished, stillRunning])], NOW)?.task;
    const afterRemoval = folded && recountShard(folded, 0, [finished]);

    // The recount sees the loss, but its vsum (2) is below the one already folded (3): the store's counter
    // guard (`vsum < :vsum`) drops it, and foldTask does too, so no later recount ever counts the subtask.
    const result = folded && afterRemoval && foldTask(folded, [afterRemoval], NOW + 1);

    expect(afterRemoval).toMatchObject({ lost: 1, done: 2 });
    expect(result?.task.task_state).toBe('SUCCESS');
  });
});

describe('endingState', () => {
  const subtasks = (total: number, failed: number) => ({ total, succeeded: total - failed, failed });

  describe('without a tolerance', () => {
    it('is SUCCESS when some subtasks and some items failed', () => {
      expect(endingState(counts(10, 5), subtasks(4, 3), undefined)).toBe('SUCCESS');
    });

    it('is FAILURE when every subtask failed', () => {
      expect(endingState(counts(10, 9), subtasks(4, 4), undefined)).toBe('FAILURE');
    });

    it('is FAILURE when items were attempted and every one failed', () => {
      expect(endingState(counts(10, 0), subtasks(4, 0), undefined)).toBe('FAILURE');
    });

    it('is SUCCESS when nothing was attempted and some subtask succeeded', () => {
      expect(endingState(ZERO_COUNTS, subtasks(4, 3), undefined)).toBe('SUCCESS');
    });
  });

  describe('with a tolerance in basis points', () => {
    it('is SUCCESS when failed items are exactly the tolerated share', () => {
      expect(endingState(counts(1_000, 900), subtasks(4, 0), 1_000)).toBe('SUCCESS');
    });

    it('is FAILURE when failed items exceed the tolerated share by one', () => {
      expect(endingState(counts(1_000, 899), subtasks(4, 0), 1_000)).toBe('FAILURE');
    });

    it('is FAILURE when failed subtasks exceed the tolerated share of all subtasks', () => {
      expect(endingState(counts(100, 100), subtasks(10, 1), 1_000)).toBe('SUCCESS');
      expect(endingState(counts(100, 100), subtasks(10, 2), 1_000)).toBe('FAILURE');
    });

    it('is FAILURE for any failure at a tolerance of 0', () => {
      expect(endingState(counts(1_000, 999), subtasks(4, 0), 0)).toBe('FAILURE');
      expect(endingState(counts(1_000, 1_000), subtasks(4, 1), 0)).toBe('FAILURE');
      expect(endingState(counts(1_000, 1_000), subtasks(4, 0), 0)).toBe('SUCCESS');
    });

    it('is SUCCESS at a tolerance of 100% even when everything failed', () => {
      expect(endingState(counts(10, 0), subtasks(4, 4), 10_000)).toBe('SUCCESS');
    });

    it('stays exact where floating point would not: sums beyond 2^53 / 10,000', () => {
      const half = 450_359_962_737_049;
      const atLimit = { attempted: 2 * half, succeeded: half, failed: half, skipped: 0 };
      const overLimit = { ...atLimit, succeeded: half - 1, failed: half + 1 };

      const states = [
        endingState(atLimit, subtasks(4, 0), 5_000),
        endingState(overLimit, subtasks(4, 0), 5_000),
      ];

      expect(states).toEqual(['SUCCESS', 'FAILURE']);
    });
  });
});

describe('taskSucceeded', () => {
  const endedTask = (overrides: Partial<TaskRecord>): TaskRecord => ({
    ...oneShardTask(4, { total: 10 }),
    task_state: 'SUCCESS',
    subtasks: { total: 4, succeeded: 4, failed: 0 },
    ...overrides,
  });

  it('is true once ended with every subtask SUCCESS, items attempted and none failed', () => {
    const task = endedTask({});

    const succeeded = taskSucceeded({ ...task, task_output: { ...task.task_output, ...counts(10, 10) } });

    expect(succeeded).toBe(true);
  });

  it('is false when nothing was attempted, as the reference says for "Unable to find any recipients"', () => {
    expect(taskSucceeded(endedTask({}))).toBe(false);
  });

  it('is false for a canceled task, even if every subtask it ran succeeded', () => {
    const task = endedTask({ task_state: 'CANCELED' });

    const succeeded = taskSucceeded({ ...task, task_output: { ...task.task_output, ...counts(10, 10) } });

    expect(succeeded).toBe(false);
  });

  it('is false while the task runs', () => {
    expect(taskSucceeded(endedTask({ task_state: 'PROGRESS' }))).toBe(false);
  });

  it('is false when a subtask failed', () => {
    expect(taskSucceeded(endedTask({ subtasks: { total: 4, succeeded: 3, failed: 1 } }))).toBe(false);
  });

  it('is false when an item failed', () => {
    const task = endedTask({});

    const succeeded = taskSucceeded({ ...task, task_output: { ...task.task_output, ...counts(5, 4) } });

    expect(succeeded).toBe(false);
  });
});

describe('nextDueAt (epoch seconds, rounded up to the minute)', () => {
  const idle = SWEEPER.idleRecountMinutes * MINUTE_MS;

  it('is an idle recount after the latest change when nothing else is due', () => {
    const task = oneShardTask(2);

    const dueAt = nextDueAt(task, undefined, T0 + 30_000);

    expect(dueAt).toBe((T0 + MINUTE_MS + idle) / 1000);
  });

  it('is the deadline when it comes first', () => {
    const task = oneShardTask(2, { deadline: new Date(T0 + 5 * MINUTE_MS + 1).toISOString() });

    const dueAt = nextDueAt(task, undefined, T0);

    expect(dueAt).toBe((T0 + 6 * MINUTE_MS) / 1000);
  });

  it('is the oldest running subtask plus the subtask timeout when it comes first', () => {
    const task = oneShardTask(2, { subtaskTimeoutSeconds: 120 });

    const dueAt = nextDueAt(task, T0, T0 + 60_000);

    expect(dueAt).toBe((T0 + 2 * MINUTE_MS) / 1000);
  });

  it('ignores the subtask timeout when no subtask runs', () => {
    const task = oneShardTask(2, { subtaskTimeoutSeconds: 60 });

    const dueAt = nextDueAt(task, undefined, T0);

    expect(dueAt).toBe((T0 + idle) / 1000);
  });

  it('is the latest change itself when a cancel is to be carried out', () => {
    const task = { ...oneShardTask(2), cancel_requested: true };

    const dueAt = nextDueAt(task, undefined, T0 + 30_000);

    expect(dueAt).toBe((T0 + 30_000) / 1000);
  });
});

/** Regressions from the round-1 issue, named as it names them; each failed on the round-1 rules. */
describe('issue regressions', () => {
  it('Failed subtasks are reported as success', () => {
    const ids = subtaskIds(10);
    const strict = oneShardTask(10, { toleratedFailurePercentage: 0 });
    const lenient = oneShardTask(10);
    const nineFailed = ids.map((id, index) =>
      index === 0 ? ended(id, 'SUCCESS', { succeeded: 100 }) : ended(id, 'FAILURE'),
    );
    const allFailed = ids.map((id) => ended(id, 'FAILURE'));
    const oneFailed = ids.map((id, index) =>
      index === 0 ? ended(id, 'FAILURE') : ended(id, 'SUCCESS', { succeeded: 100 }),
    );
    const noneFailed = ids.map((id) => ended(id, 'SUCCESS', { succeeded: 100 }));

    const [nineOfTen, everyOne, one, none] = [
      foldOneShard(strict, nineFailed),
      foldOneShard(lenient, allFailed),
      foldOneShard(lenient, oneFailed),
      foldOneShard(lenient, noneFailed),
    ] as const;

    expect(nineOfTen?.task_state).toBe('FAILURE');
    expect(nineOfTen && completionMessage(nineOfTen).succeeded).toBe(false);
    expect(everyOne?.task_state).toBe('FAILURE');
    expect(everyOne && completionMessage(everyOne).message).toBe(
      'Message failed to be emailed: no recipients were attempted (out of 1000) (10 of 10 subtasks failed)',
    );
    expect(one && completionMessage(one)).toEqual({
      message: 'Message emailed for 900 of 900 recipients (out of 1000) (1 of 10 subtasks failed)',
      succeeded: false,
    });
    expect(none && completionMessage(none)).toEqual({
      message: 'Message successfully emailed for 1000 recipients',
      succeeded: true,
    });
  });

  it('Tolerance compared in integers', () => {
    const task = oneShardTask(1_000, { toleratedFailurePercentage: 32.3 });
    const outcome = (failed: number) =>
      endingState(
        counts(1_000, 1_000 - failed),
        { total: 1_000, succeeded: 1_000, failed: 0 },
        task.options.tolerated_failure_bp,
      );

    const states = [outcome(323), outcome(324)];
    const basisPoints = [
      32.3,
      0.01,
      100,
      32.345,
      0.001,
      -0.01,
      100.01,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ].map(toBasisPoints);
    const rejections = [null, '10'].map((tolerance) => {
      const body = JSON.stringify({
        action_name: 'emailed',
        total: 1,
        subtask_count: 1,
        tolerated_failure_percentage: tolerance,
      });
      return () => parseInitializeBody('task-1', body);
    });

    expect(task.options.tolerated_failure_bp).toBe(3_230);
    expect(states).toEqual(['SUCCESS', 'FAILURE']);
    expect(basisPoints).toEqual([
      3_230,
      1,
      10_000,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    for (const parse of rejections) expect(parse).toThrow(InvalidBodyError);
  });

  it('Stale with equal retry count', () => {
    const task = { task_id: 'task-1', generation: GENERATION };
    const storedRecord = subtaskRecord(status('a', { succeeded: 10, retried_withmax: 1, state: 'PROGRESS' }));
    const subtasks = new Map([['a', storedRecord]]);
    const older = [
      status('a', { succeeded: 9, retried_withmax: 1, state: 'PROGRESS' }),
      status('a', { retried_nomax: 1, state: 'QUEUING' }),
    ];

    const result = applyStatuses(
      task,
      subtasks,
      older.map((subtaskStatus) => ({ subtaskId: 'a', status: subtaskStatus })),
      NOW,
    );

    expect(result.outcomes).toEqual([{ kind: 'stale' }, { kind: 'stale' }]);
    expect(result.changed).toEqual([]);
  });

  it('Re-initialize names the fields that differ', () => {
    const request = initializeRequest('task-1', 3, { total: 300, toleratedFailurePercentage: 5 });
    const task = readyTask(request);
    const deadline = new Date(T0 + 86_400_000).toISOString();
    const differing = (change: Partial<InitializeRequest>) =>
      differingFields(task, { ...request, ...change });

    const fields = {
      same: differing({}),
      reordered: differing({ subtaskIds: [...request.subtaskIds].reverse() }),
      total: differing({ total: 301 }),
      action: differing({ actionName: 'graded' }),
      subtaskSet: differing({ subtaskIds: [...request.subtaskIds, 'extra'] }),
      tolerance: differing({ toleratedFailurePercentage: 6 }),
      timeout: differing({ subtaskTimeoutSeconds: 60 }),
      deadline: differing({ deadline }),
      several: differing({
        total: 1,
        actionName: 'graded',
        subtaskIds: ['x'],
        toleratedFailurePercentage: 1,
      }),
      ttl: differing({ ttlDays: 30 }),
    };

    expect(fields).toEqual({
      same: [],
      reordered: [],
      total: ['total'],
      action: ['action_name'],
      subtaskSet: ['subtask set'],
      tolerance: ['options'],
      timeout: ['options'],
      deadline: ['options'],
      several: ['total', 'action_name', 'subtask set', 'options'],
      ttl: ['ttl_days'],
    });
  });

  it('Wording', () => {
    const base = oneShardTask(4, { total: 10 });
    const as = (
      task_state: TaskRecord['task_state'],
      output: ItemCounts,
      subtasks = { total: 4, succeeded: 4, failed: 0 },
    ): TaskRecord => ({ ...base, task_state, task_output: { ...base.task_output, ...output }, subtasks });

    const messages = [
      as('PROGRESS', counts(3, 2), { total: 4, succeeded: 0, failed: 0 }),
      as('SUCCESS', counts(0, 0)),
      as('FAILURE', counts(10, 0)),
      as('SUCCESS', counts(10, 10)),
      as('SUCCESS', counts(10, 7)),
      as('SUCCESS', counts(8, 8, 2)),
      as('SUCCESS', counts(12, 12)),
      as('SUCCESS', counts(10, 10), { total: 4, succeeded: 3, failed: 1 }),
      as('CANCELED', counts(5, 5), { total: 4, succeeded: 2, failed: 2 }),
    ].map((task) => completionMessage(task).message);

    expect(messages).toEqual([
      'Progress: emailed 2 of 3 so far (out of 10)',
      'Unable to find any recipients to be emailed (out of 10)',
      'Message failed to be emailed for any of 10 recipients',
      'Message successfully emailed for 10 recipients',
      'Message emailed for 7 of 10 recipients',
      'Message successfully emailed for 8 recipients (skipping 2) (out of 10)',
      'Message successfully emailed for 12 recipients (out of 10)',
      'Message emailed for 10 of 10 recipients (1 of 4 subtasks failed)',
      'Canceled: emailed 5 of 5 (out of 10) (2 of 4 subtasks failed)',
    ]);
  });
});
