import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInitializeRequestError } from '../../lambdas/core/errors';
import { createSubtaskStatus } from '../../lambdas/core/subtask-status';
import { type InitializeRequest, initializationDigest, initializeTask } from '../../lambdas/core/task';
import { initializeRequest, subtaskIds, T0 } from '../support/factories';

function rejection(request: InitializeRequest): unknown {
  try {
    initializeTask(request, T0);
  } catch (error) {
    return error;
  }
  throw new Error(`expected the request for '${request.taskId}' to be rejected`);
}

describe('initializeTask (reference initialize_subtask_info)', () => {
  it('starts the task PROGRESS at version 1 with zero counts, the total and the action name', () => {
    const request = initializeRequest('task-1', 3, { actionName: 'emailed', total: 250 });

    const { task } = initializeTask(request, T0);

    expect(task).toMatchObject({ task_id: 'task-1', task_state: 'PROGRESS', version: 1 });
    expect(task.task_output).toEqual({
      action_name: request.actionName,
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      total: request.total,
      duration_ms: 0,
      start_time: T0 / 1000,
    });
  });

  it('records start_time as epoch seconds, fractions kept', () => {
    const nowMs = T0 + 1_234;

    const { task } = initializeTask(initializeRequest('task-1', 1), nowMs);

    expect(task.task_output.start_time).toBe(nowMs / 1000);
    expect(task.created_at).toBe(new Date(nowMs).toISOString());
    expect(task.updated_at).toBe(task.created_at);
  });

  it('counts n subtasks, none ended', () => {
    const request = initializeRequest('task-1', 7);

    const { task } = initializeTask(request, T0);

    expect(task.subtasks).toEqual({ total: request.subtaskIds.length, succeeded: 0, failed: 0 });
  });

  it('gives every subtask one QUEUING zero-count record at updated_version 0, in request order', () => {
    const request = initializeRequest('task-1', ['b', 'a', 'c']);

    const { subtasks } = initializeTask(request, T0);

    expect(subtasks).toEqual(
      request.subtaskIds.map((subtaskId) => ({
        task_id: request.taskId,
        subtask_id: subtaskId,
        status: createSubtaskStatus(subtaskId),
        updated_version: 0,
        updated_at: new Date(T0).toISOString(),
      })),
    );
    expect(subtasks.map((record) => record.status.state)).toEqual(['QUEUING', 'QUEUING', 'QUEUING']);
  });

  it('sets a TTL expires_at on the task and on every subtask when ttlSeconds is given', () => {
    const nowMs = T0 + 999;
    const ttlSeconds = 86_400;

    const { task, subtasks } = initializeTask(initializeRequest('task-1', 3, { ttlSeconds }), nowMs);

    const expected = Math.floor(nowMs / 1000) + ttlSeconds;
    expect(task.expires_at).toBe(expected);
    expect(subtasks.map((record) => record.expires_at)).toEqual(subtasks.map(() => expected));
  });

  it('sets no expires_at without ttlSeconds', () => {
    const request = initializeRequest('task-1', 2);

    const { task, subtasks } = initializeTask(request, T0);

    expect(task).not.toHaveProperty('expires_at');
    for (const record of subtasks) expect(record).not.toHaveProperty('expires_at');
  });

  it('keeps tolerated_failure_percentage as a task option only when given', () => {
    const withOption = initializeRequest('task-1', 2, { toleratedFailurePercentage: 12.5 });
    const withoutOption = initializeRequest('task-2', 2);

    const tolerant = initializeTask(withOption, T0).task;
    const strict = initializeTask(withoutOption, T0).task;

    expect(tolerant.options).toEqual({ tolerated_failure_percentage: 12.5 });
    expect(strict.options).toEqual({});
  });

  it('stores the initialization digest of the request', () => {
    const request = initializeRequest('task-1', 4);

    const { task } = initializeTask(request, T0);

    expect(task.init_digest).toBe(initializationDigest(request));
  });

  it('accepts a tolerated percentage at both ends of 0-100 and a total of 0', () => {
    const requests = [
      initializeRequest('task-1', 1, { toleratedFailurePercentage: 0 }),
      initializeRequest('task-2', 1, { toleratedFailurePercentage: 100 }),
      initializeRequest('task-3', 1, { total: 0 }),
    ];

    const tasks = requests.map((request) => initializeTask(request, T0).task);

    expect(tasks.map((task) => task.task_id)).toEqual(requests.map((request) => request.taskId));
  });

  describe('rejects a request that can never succeed', () => {
    it.each<[string, InitializeRequest]>([
      ['an empty subtask list', initializeRequest('task-1', [])],
      ['duplicate subtask ids', initializeRequest('task-1', ['a', 'b', 'a'])],
      ['a subtask id with a slash', initializeRequest('task-1', ['a', 'b/c'])],
      ['an empty subtask id', initializeRequest('task-1', ['a', ''])],
      ['a subtask id over 128 characters', initializeRequest('task-1', ['x'.repeat(129)])],
      ['a task id with a space', initializeRequest('task 1', 2)],
      ['an empty task id', initializeRequest('', 2)],
      ['a task id over 128 characters', initializeRequest('t'.repeat(129), 2)],
      ['a negative total', initializeRequest('task-1', 2, { total: -1 })],
      ['a fractional total', initializeRequest('task-1', 2, { total: 2.5 })],
      ['a total that is not a safe integer', initializeRequest('task-1', 2, { total: 2 ** 53 })],
      [
        'a tolerated percentage below 0',
        initializeRequest('task-1', 2, { toleratedFailurePercentage: -0.1 }),
      ],
      [
        'a tolerated percentage above 100',
        initializeRequest('task-1', 2, { toleratedFailurePercentage: 100.5 }),
      ],
      [
        'a tolerated percentage that is NaN',
        initializeRequest('task-1', 2, { toleratedFailurePercentage: Number.NaN }),
      ],
      ['an empty action name', initializeRequest('task-1', 2, { actionName: '' })],
      ['a ttlSeconds of 0', initializeRequest('task-1', 2, { ttlSeconds: 0 })],
    ])('%s', (_, request) => {
      const error = rejection(request);

      expect(error).toBeInstanceOf(InvalidInitializeRequestError);
      expect(error).toMatchObject({ code: 'INVALID_INITIALIZE_REQUEST', permanent: true });
    });
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
    ['another tolerated percentage', { toleratedFailurePercentage: 5 }],
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
