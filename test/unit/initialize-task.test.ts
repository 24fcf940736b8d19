import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInitializeRequestError } from '../../lambdas/core/errors';
import { numberedSubtaskIds } from '../../lambdas/core/subtask-ids';
import { createSubtaskStatus } from '../../lambdas/core/subtask-status';
import {
  differingFields,
  type InitializeRequest,
  initializationDigest,
  initializeTask,
  subtaskDigest,
  subtaskShard,
  taskOptions,
  ZERO_COUNTS,
} from '../../lambdas/core/task';
import { shardOf, shardSizes } from '../../lambdas/core/write-shards';
import { STATUS_QUEUE } from '../../lambdas/service-settings';
import { GENERATION, initializeRequest, subtaskIds, T0 } from '../support/factories';

const DAY_MS = 86_400_000;
/** The shortest TTL initialize accepts without a deadline: the queue's retention plus a day. */
const SHORTEST_TTL_DAYS = STATUS_QUEUE.retentionDays + 1;

function rejection(request: InitializeRequest, nowMs = T0): unknown {
  try {
    initializeTask(request, nowMs, GENERATION);
  } catch (error) {
    return error;
  }
  throw new Error(`expected the request for '${request.taskId}' to be rejected`);
}

describe('initializeTask: the task record', () => {
  it('starts PROGRESS at version 1, not ready, with zero counts, the total and the action name', () => {
    const request = initializeRequest('task-1', 3, { actionName: 'emailed', total: 250 });

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task).toMatchObject({
      task_id: 'task-1',
      task_state: 'PROGRESS',
      version: 1,
      ready: false,
      counters_vsum: 0,
      in_flight: ZERO_COUNTS,
    });
    expect(task.task_output).toEqual({
      action_name: 'emailed',
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      total: 250,
      duration_ms: 0,
      start_time: T0 / 1000,
    });
  });

  it('is stamped with the generation it is given', () => {
    const { task } = initializeTask(initializeRequest('task-1', 2), T0, 'gen-42');

    expect(task.generation).toBe('gen-42');
  });

  it('records start_time as epoch seconds, fractions kept, and created_at = updated_at = now', () => {
    const nowMs = T0 + 1_234;

    const { task } = initializeTask(initializeRequest('task-1', 1), nowMs, GENERATION);

    expect(task.task_output.start_time).toBe(nowMs / 1000);
    expect(task.created_at).toBe(new Date(nowMs).toISOString());
    expect(task.updated_at).toBe(task.created_at);
  });

  it('counts n subtasks, none ended', () => {
    const request = initializeRequest('task-1', 7);

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task.subtasks).toEqual({ total: 7, succeeded: 0, failed: 0 });
  });

  it('stores the digest of the whole request and the digest of the subtask set', () => {
    const request = initializeRequest('task-1', 4);

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task.digest).toBe(initializationDigest(request));
    expect(task.subtask_digest).toBe(subtaskDigest(request.subtaskIds));
  });

  it('stores the options in integers: tolerance in basis points, deadline in epoch ms', () => {
    const deadline = new Date(T0 + DAY_MS).toISOString();
    const request = initializeRequest('task-1', 2, {
      toleratedFailurePercentage: 12.5,
      subtaskTimeoutSeconds: 600,
      deadline,
    });

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task.options).toEqual({
      tolerated_failure_bp: 1_250,
      subtask_timeout_seconds: 600,
      deadline_ms: T0 + DAY_MS,
    });
  });

  it('stores no option that was not given', () => {
    const { task } = initializeTask(initializeRequest('task-1', 2), T0, GENERATION);

    expect(task.options).toEqual({});
  });
});

describe('initializeTask: write shards', () => {
  it.each([
    [1, 1],
    [1_000, 1],
    [1_001, 2],
    [2_500, 3],
  ])('spreads %i subtasks over %i write shards', (count, shards) => {
    const { task, counters } = initializeTask(initializeRequest('task-1', count), T0, GENERATION);

    expect(task.write_shards).toBe(shards);
    expect(counters.map((counter) => counter.shard)).toEqual(Array.from({ length: shards }, (_, n) => n));
  });

  it('lays a task out over the write shards it is given, each subtask in the shard its id hashes to', () => {
    const request = initializeRequest('task-1', 90);

    const { task, counters, subtasks } = initializeTask(request, T0, GENERATION, 3);

    expect(task.write_shards).toBe(3);
    expect(task.shard_sizes).toEqual(shardSizes(request.subtaskIds, 3));
    expect(counters).toHaveLength(3);
    expect(subtasks.map((subtask) => subtaskShard(task, subtask.subtask_id))).toEqual(
      request.subtaskIds.map((id) => shardOf(id, 3)),
    );
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses %s write shards', (shards) => {
    expect(() => initializeTask(initializeRequest('task-1', 3), T0, GENERATION, shards)).toThrow(RangeError);
  });

  it("records each shard's size as the hash places the subtask ids", () => {
    const request = initializeRequest('task-1', 2_500);

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task.shard_sizes).toEqual(shardSizes(request.subtaskIds, 3));
    expect(task.shard_sizes.reduce((sum, size) => sum + size, 0)).toBe(2_500);
  });

  it('writes one zero counter per shard, of the generation, with vsum 0 and the time of initialization', () => {
    const { counters } = initializeTask(initializeRequest('task-1', 1_001), T0 + 5, GENERATION);

    expect(counters).toEqual(
      [0, 1].map((shard) => ({
        task_id: 'task-1',
        shard,
        generation: GENERATION,
        counts: ZERO_COUNTS,
        subtasks_succeeded: 0,
        subtasks_failed: 0,
        done: 0,
        lost: 0,
        in_flight: ZERO_COUNTS,
        latest_change_ms: T0 + 5,
        vsum: 0,
      })),
    );
  });
});

describe('initializeTask: the subtask records', () => {
  it('gives every subtask one QUEUING zero-count record at version 0 of the generation, in request order', () => {
    const request = initializeRequest('task-1', ['b', 'a', 'c']);

    const { subtasks } = initializeTask(request, T0, GENERATION);

    expect(subtasks).toEqual(
      ['b', 'a', 'c'].map((subtaskId) => ({
        task_id: 'task-1',
        subtask_id: subtaskId,
        status: createSubtaskStatus(subtaskId),
        version: 0,
        generation: GENERATION,
        updated_at: new Date(T0).toISOString(),
      })),
    );
  });

  it('sets expires_at on the task and every subtask when ttlDays is given', () => {
    const nowMs = T0 + 999;

    const { task, subtasks } = initializeTask(
      initializeRequest('task-1', 3, { ttlDays: 30 }),
      nowMs,
      GENERATION,
    );

    const expected = Math.floor(nowMs / 1000) + 30 * 86_400;
    expect(task.expires_at).toBe(expected);
    expect(subtasks.map((record) => record.expires_at)).toEqual([expected, expected, expected]);
  });

  it('sets no expires_at without ttlDays', () => {
    const { task, subtasks } = initializeTask(initializeRequest('task-1', 2), T0, GENERATION);

    expect(task).not.toHaveProperty('expires_at');
    for (const record of subtasks) expect(record).not.toHaveProperty('expires_at');
  });
});

describe('initializeTask: what it accepts at the edges', () => {
  it.each<[string, Partial<InitializeRequest>]>([
    ['a tolerance of 0', { toleratedFailurePercentage: 0 }],
    ['a tolerance of 100', { toleratedFailurePercentage: 100 }],
    ['a tolerance with two decimals', { toleratedFailurePercentage: 32.35 }],
    ['a total of 0', { total: 0 }],
    ['a subtask timeout of 30 days', { subtaskTimeoutSeconds: 30 * 86_400 }],
    ['the shortest TTL without a deadline', { ttlDays: SHORTEST_TTL_DAYS }],
    [
      'the shortest TTL with a deadline',
      { deadline: new Date(T0 + 10 * DAY_MS).toISOString(), ttlDays: 10 + SHORTEST_TTL_DAYS },
    ],
  ])('accepts %s', (_, extra) => {
    const request = initializeRequest('task-1', 1, extra);

    const { task } = initializeTask(request, T0, GENERATION);

    expect(task.task_id).toBe('task-1');
  });
});

describe('initializeTask rejects a request that can never succeed', () => {
  it.each<[string, InitializeRequest]>([
    ['an empty subtask list', initializeRequest('task-1', [])],
    ['duplicate subtask ids', initializeRequest('task-1', ['a', 'b', 'a'])],
    ['a subtask id with a slash', initializeRequest('task-1', ['a', 'b/c'])],
    ['a subtask id with a #', initializeRequest('task-1', ['a', 'b#1'])],
    ['an empty subtask id', initializeRequest('task-1', ['a', ''])],
    ['a subtask id over 128 characters', initializeRequest('task-1', ['x'.repeat(129)])],
    ['a task id with a space', initializeRequest('task 1', 2)],
    ['an empty task id', initializeRequest('', 2)],
    ['a task id over 128 characters', initializeRequest('t'.repeat(129), 2)],
    ['a negative total', initializeRequest('task-1', 2, { total: -1 })],
    ['a fractional total', initializeRequest('task-1', 2, { total: 2.5 })],
    ['a total that is not a safe integer', initializeRequest('task-1', 2, { total: 2 ** 53 })],
    ['an empty action name', initializeRequest('task-1', 2, { actionName: '' })],
    ['an action name over 256 characters', initializeRequest('task-1', 2, { actionName: 'a'.repeat(257) })],
    ['a tolerance below 0', initializeRequest('task-1', 2, { toleratedFailurePercentage: -0.1 })],
    ['a tolerance above 100', initializeRequest('task-1', 2, { toleratedFailurePercentage: 100.5 })],
    ['a tolerance that is NaN', initializeRequest('task-1', 2, { toleratedFailurePercentage: Number.NaN })],
    [
      'a tolerance with three decimals',
      initializeRequest('task-1', 2, { toleratedFailurePercentage: 32.305 }),
    ],
    ['a subtask timeout of 0', initializeRequest('task-1', 2, { subtaskTimeoutSeconds: 0 })],
    ['a fractional subtask timeout', initializeRequest('task-1', 2, { subtaskTimeoutSeconds: 1.5 })],
    [
      'a subtask timeout over 30 days',
      initializeRequest('task-1', 2, { subtaskTimeoutSeconds: 30 * 86_400 + 1 }),
    ],
    ['a deadline that is not a time', initializeRequest('task-1', 2, { deadline: 'tomorrow' })],
    ['a deadline in the past', initializeRequest('task-1', 2, { deadline: new Date(T0 - 1).toISOString() })],
    ['a deadline of now', initializeRequest('task-1', 2, { deadline: new Date(T0).toISOString() })],
    ['a ttlDays of 0', initializeRequest('task-1', 2, { ttlDays: 0 })],
    ['a fractional ttlDays', initializeRequest('task-1', 2, { ttlDays: 20.5 })],
    ['a ttlDays over 3,650', initializeRequest('task-1', 2, { ttlDays: 3_651 })],
    [
      "a TTL shorter than the queue's retention plus a day",
      initializeRequest('task-1', 2, { ttlDays: SHORTEST_TTL_DAYS - 1 }),
    ],
    [
      "a TTL that ends before the deadline plus the queue's retention plus a day",
      initializeRequest('task-1', 2, {
        deadline: new Date(T0 + 10 * DAY_MS).toISOString(),
        ttlDays: 10 + SHORTEST_TTL_DAYS - 1,
      }),
    ],
  ])('%s', (_, request) => {
    const error = rejection(request);

    expect(error).toBeInstanceOf(InvalidInitializeRequestError);
    expect(error).toMatchObject({ code: 'INVALID_INITIALIZE_REQUEST', permanent: true });
  });
});

describe('initializationDigest', () => {
  it('does not depend on the order of the subtask ids', () => {
    const ids = subtaskIds(30);
    fc.assert(
      fc.property(fc.shuffledSubarray(ids, { minLength: ids.length, maxLength: ids.length }), (shuffled) => {
        const original = initializeRequest('task-1', ids);
        const reordered = initializeRequest('task-1', shuffled);

        const digests = [initializationDigest(original), initializationDigest(reordered)];

        expect(digests[1]).toBe(digests[0]);
      }),
    );
  });

  it.each<[string, Partial<InitializeRequest>]>([
    ['another subtask set', { subtaskIds: [...subtaskIds(3), 'extra'] }],
    ['one subtask fewer', { subtaskIds: subtaskIds(2) }],
    ['another action', { actionName: 'graded' }],
    ['another total', { total: 301 }],
    ['another tolerance', { toleratedFailurePercentage: 5 }],
    ['a subtask timeout', { subtaskTimeoutSeconds: 60 }],
    ['a deadline', { deadline: new Date(T0 + DAY_MS).toISOString() }],
    ['a TTL', { ttlDays: 30 }],
  ])('differs for %s', (_, change) => {
    const base = initializeRequest('task-1', 3, { total: 300 });
    const other = { ...base, ...change };

    const digests = [initializationDigest(base), initializationDigest(other)];

    expect(digests[1]).not.toBe(digests[0]);
  });

  it('does not treat an id containing a dot as two ids', () => {
    const joined = initializeRequest('task-1', ['a.b']);
    const split = initializeRequest('task-1', ['a', 'b']);

    const digests = [initializationDigest(joined), initializationDigest(split)];

    expect(digests[1]).not.toBe(digests[0]);
  });
});

describe('taskOptions', () => {
  it('leaves absent options out, so that requests omitting them compare equal', () => {
    const request = initializeRequest('task-1', 1, { toleratedFailurePercentage: 1 });

    const options = taskOptions(request);

    expect(Object.keys(options)).toEqual(['tolerated_failure_bp']);
  });
});

describe('differingFields', () => {
  const request = initializeRequest('task-1', 3, {
    toleratedFailurePercentage: 2.5,
    subtaskTimeoutSeconds: 3600,
    deadline: new Date(T0 + DAY_MS).toISOString(),
  });

  it('finds nothing when the stored options come back in another key order', () => {
    const { task } = initializeTask(request, T0, GENERATION);
    const reordered = Object.fromEntries(Object.entries(task.options).reverse());

    expect(Object.keys(reordered)).not.toEqual(Object.keys(task.options));
    expect(differingFields({ ...task, options: reordered }, request)).toEqual([]);
    expect(differingFields({ ...task, options: reordered }, { ...request, total: 1 })).toEqual(['total']);
  });

  it('names the options when one of them differs', () => {
    const { task } = initializeTask(request, T0, GENERATION);

    expect(differingFields(task, { ...request, subtaskTimeoutSeconds: 60 })).toEqual(['options']);
  });
});

describe('subtaskDigest', () => {
  const wholeDigest = (ids: readonly string[]) =>
    createHash('sha256')
      .update(JSON.stringify([...ids].sort()))
      .digest('base64url');

  it('is the SHA-256 of the sorted ids as one JSON array', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,12}$/)), (ids) => {
        expect(subtaskDigest(ids)).toBe(wholeDigest(ids));
      }),
    );
  });

  it('is the same for ids hashed over several chunks, in id order or not', () => {
    const ids = numberedSubtaskIds(25_000);

    expect([subtaskDigest(ids), subtaskDigest([...ids].reverse())]).toEqual([
      wholeDigest(ids),
      wholeDigest(ids),
    ]);
  });
});
