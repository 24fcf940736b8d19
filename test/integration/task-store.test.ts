import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { InitializeConflictError, InvalidInitializeRequestError } from '../../lambdas/core/errors';
import { initializeTask } from '../../lambdas/core/task';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { subtaskItem, subtaskKey, taskKey } from '../../lambdas/store/task-items';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, status, subtaskIds, T0, terminal } from '../support/factories';

let table: TestTable;

beforeAll(async () => {
  table = await newTaskTable();
});

describe('initialize', () => {
  it('writes the task at version 1 and every subtask QUEUING', async () => {
    const taskId = uniqueName('task');

    const task = await table.store.initialize(initializeRequest(taskId, 3), T0);

    expect(await table.store.getTask(taskId)).toEqual(task);
    expect(task).toMatchObject({
      version: 1,
      task_state: 'PROGRESS',
      subtasks: { total: 3, succeeded: 0, failed: 0 },
    });
    const subtasks = await table.store.getSubtasks(taskId, subtaskIds(3));
    expect([...subtasks.values()].map((subtask) => subtask.status.state)).toEqual([
      'QUEUING',
      'QUEUING',
      'QUEUING',
    ]);
  });

  it('returns the existing progress unchanged when the same task is initialized again', async () => {
    const taskId = uniqueName('task');
    const request = initializeRequest(taskId, 2);
    await table.store.initialize(request, T0);
    await applyToTask(table.store, taskId, [{ subtaskId: 'sub-00000', status: terminal('sub-00000') }]);

    const again = await table.store.initialize(
      { ...request, subtaskIds: [...request.subtaskIds].reverse() },
      T0 + 5_000,
    );

    expect(again.version).toBe(2);
    expect(again.task_output.succeeded).toBe(100);
    const [first] = (await table.store.getSubtasks(taskId, ['sub-00000'])).values();
    expect(first?.status.state).toBe('SUCCESS');
  });

  it('rejects the same task id with another subtask set as a conflict', async () => {
    const taskId = uniqueName('task');
    await table.store.initialize(initializeRequest(taskId, 2), T0);

    await expect(table.store.initialize(initializeRequest(taskId, 3), T0)).rejects.toBeInstanceOf(
      InitializeConflictError,
    );
  });

  it('writes nothing for an invalid request', async () => {
    const taskId = uniqueName('task');

    await expect(table.store.initialize(initializeRequest(taskId, ['a', 'a']), T0)).rejects.toBeInstanceOf(
      InvalidInitializeRequestError,
    );
    expect(await table.store.getTask(taskId)).toBeUndefined();
  });

  it('never resets a subtask that a status reached before a crashed initialization is re-run', async () => {
    const taskId = uniqueName('task');
    const request = initializeRequest(taskId, 2);
    const db = documentClient(table.client);
    const { subtasks } = initializeTask(request, T0);
    const [reached] = subtasks;
    if (reached === undefined) throw new Error('no subtask');
    // A previous run wrote the subtask items, crashed before the task item, and a status landed in between.
    await db.send(
      new PutCommand({
        TableName: table.tableName,
        Item: subtaskItem({ ...reached, status: terminal(reached.subtask_id), updated_version: 7 }),
      }),
    );

    await table.store.initialize(request, T0);

    const { Item } = await db.send(
      new GetCommand({ TableName: table.tableName, Key: subtaskKey(taskId, reached.subtask_id) }),
    );
    expect(Item?.status.state).toBe('SUCCESS');
    const { Item: task } = await db.send(
      new GetCommand({ TableName: table.tableName, Key: taskKey(taskId) }),
    );
    expect(task?.version).toBe(1);
  });
});

describe('listSubtasks', () => {
  it('pages through a task in id order and filters by state', async () => {
    const taskId = uniqueName('task');
    const ids = subtaskIds(25);
    await table.store.initialize(initializeRequest(taskId, ids), T0);
    await applyToTask(
      table.store,
      taskId,
      ids.filter((_, index) => index % 3 === 0).map((id) => ({ subtaskId: id, status: terminal(id) })),
    );

    const first = await table.store.listSubtasks(taskId, { limit: 10 });
    const second = await table.store.listSubtasks(taskId, { limit: 10, after: first.lastSubtaskId });
    const third = await table.store.listSubtasks(taskId, { limit: 10, after: second.lastSubtaskId });
    const done = await table.store.listSubtasks(taskId, { limit: 100, state: 'SUCCESS' });
    const queued = await table.store.listSubtasks(taskId, { limit: 4, state: 'QUEUING' });

    expect([...first.subtasks, ...second.subtasks, ...third.subtasks].map((s) => s.subtask_id)).toEqual(ids);
    expect(third.lastSubtaskId).toBeUndefined();
    expect(done.subtasks.map((s) => s.subtask_id)).toEqual(ids.filter((_, index) => index % 3 === 0));
    expect(queued.subtasks).toHaveLength(4);
    expect(queued.subtasks.every((s) => s.status.state === 'QUEUING')).toBe(true);
    expect(queued.lastSubtaskId).toBe(queued.subtasks.at(-1)?.subtask_id);
  });

  it('returns an empty page for a task without subtasks in that state', async () => {
    const taskId = uniqueName('task');
    await table.store.initialize(initializeRequest(taskId, 3), T0);

    const page = await table.store.listSubtasks(taskId, { limit: 10, state: 'FAILURE' });

    expect(page).toEqual({ subtasks: [] });
  });
});

describe('status helpers on stored data', () => {
  it('keeps a stored PROGRESS status with its counts', async () => {
    const taskId = uniqueName('task');
    await table.store.initialize(initializeRequest(taskId, 1), T0);

    await applyToTask(table.store, taskId, [
      { subtaskId: 'sub-00000', status: status('sub-00000', { succeeded: 4, state: 'PROGRESS' }) },
    ]);

    const stored = await table.store.getSubtasks(taskId, ['sub-00000']);
    expect(stored.get('sub-00000')?.status).toEqual(status('sub-00000', { succeeded: 4, state: 'PROGRESS' }));
  });
});
