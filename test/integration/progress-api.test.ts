import { randomBytes } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import { CursorCodec } from '../../lambdas/api/cursor';
import { createProgressApi } from '../../lambdas/api/progress-api';
import { ROUTES } from '../../lambdas/api/routes';
import { documentClient } from '../../lambdas/aws-clients';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { TaskStore } from '../../lambdas/store/task-store';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { apiEvent, initializeRequest, status, subtaskIds, T0, terminal } from '../support/factories';

let table: TestTable;
let api: ReturnType<typeof createProgressApi>;
const cursors = new CursorCodec(randomBytes(32).toString('base64url'));

beforeAll(async () => {
  table = await newTaskTable();
  api = createProgressApi({ store: table.store, cursors, logger: new Logger({ serviceName: 'test' }) });
});

async function newTask(subtasks: number, items = subtasks * 100): Promise<string> {
  const taskId = uniqueName('task');
  await table.store.initialize(initializeRequest(taskId, subtasks, { total: items }), T0);
  return taskId;
}

function body(result: Awaited<ReturnType<typeof api>>): Record<string, unknown> {
  return JSON.parse(result.body ?? 'null');
}

describe('GET /tasks/{task_id}', () => {
  it('reports counts, subtasks and the dashboard message while running', async () => {
    const taskId = await newTask(3, 500);
    await applyToTask(table.store, taskId, [
      { subtaskId: 'sub-00000', status: terminal('sub-00000', { succeeded: 2, failed: 1, skipped: 1 }) },
      { subtaskId: 'sub-00001', status: status('sub-00001', { succeeded: 7, state: 'PROGRESS' }) },
    ]);

    const result = await api(apiEvent({ routeKey: ROUTES.task, taskId }));

    expect(result.statusCode).toBe(200);
    expect(result.headers?.etag).toBe('"v2"');
    expect(body(result)).toMatchObject({
      task_id: taskId,
      task_state: 'PROGRESS',
      in_progress: true,
      message: 'Progress: emailed 2 of 3 so far (skipping 1) (out of 500)',
      succeeded: false,
      subtasks: { total: 3, succeeded: 1, failed: 0, remaining: 2 },
      task_progress: {
        action_name: 'emailed',
        attempted: 3,
        succeeded: 2,
        failed: 1,
        skipped: 1,
        total: 500,
      },
      version: 2,
    });
  });

  it('says the task succeeded only when every attempted item succeeded', async () => {
    const taskId = await newTask(2, 10);
    await applyToTask(
      table.store,
      taskId,
      ['sub-00000', 'sub-00001'].map((id) => ({ subtaskId: id, status: terminal(id, { succeeded: 5 }) })),
    );

    const result = body(await api(apiEvent({ routeKey: ROUTES.task, taskId })));

    expect(result).toMatchObject({
      task_state: 'SUCCESS',
      in_progress: false,
      succeeded: true,
      message: 'Message successfully emailed for 10 recipients',
    });
  });

  it('answers 304 without a body when If-None-Match names the current version', async () => {
    const taskId = await newTask(1);
    const first = await api(apiEvent({ routeKey: ROUTES.task, taskId }));
    const etag = first.headers?.etag;
    if (typeof etag !== 'string') throw new Error('no etag');

    const unchanged = await api(
      apiEvent({ routeKey: ROUTES.task, taskId, headers: { 'if-none-match': `W/${etag}` } }),
    );
    await applyToTask(table.store, taskId, [{ subtaskId: 'sub-00000', status: terminal('sub-00000') }]);
    const changed = await api(
      apiEvent({ routeKey: ROUTES.task, taskId, headers: { 'if-none-match': etag } }),
    );

    expect(unchanged.statusCode).toBe(304);
    expect(unchanged.body).toBeUndefined();
    expect(unchanged.headers?.etag).toBe(etag);
    expect(changed.statusCode).toBe(200);
    expect(changed.headers?.etag).toBe('"v2"');
  });

  it.each([
    ['a bad task id', { taskId: 'a/b' }],
    ['an over-long task id', { taskId: 'x'.repeat(129) }],
    ['an unknown query parameter', { taskId: 'task-1', query: { verbose: 'true' } }],
  ])('answers 400 with a JSON error for %s', async (_, request) => {
    const result = await api(apiEvent({ routeKey: ROUTES.task, ...request }));

    expect(result.statusCode).toBe(400);
    expect(body(result)).toMatchObject({ error: 'BadRequest', message: expect.any(String) });
  });

  it('answers 404 with a JSON error for an unknown task', async () => {
    const result = await api(apiEvent({ routeKey: ROUTES.task, taskId: 'never-initialized' }));

    expect(result.statusCode).toBe(404);
    expect(body(result)).toEqual({ error: 'NotFound', message: "Task 'never-initialized' does not exist" });
  });

  it('answers 500 without internals when the store fails', async () => {
    const failingDb = documentClient(table.client);
    const mock = mockClient(failingDb);
    mock.on(GetCommand).rejects(new Error('socket hang up at 10.0.0.1:443 (stack: TaskStore.getTask)'));
    const failing = createProgressApi({
      store: new TaskStore(failingDb, table.tableName),
      cursors,
      logger: new Logger({ serviceName: 'test' }),
    });

    const result = await failing(apiEvent({ routeKey: ROUTES.task, taskId: 'task-1' }));
    mock.restore();

    expect(result.statusCode).toBe(500);
    expect(body(result)).toEqual({ error: 'InternalError', message: expect.any(String) });
    expect(result.body).not.toMatch(/socket|10\.0\.0\.1|stack|TaskStore/);
  });
});

describe('GET /tasks/{task_id}/subtasks', () => {
  it('pages through subtasks with an opaque cursor', async () => {
    const taskId = await newTask(5);

    const first = body(await api(apiEvent({ routeKey: ROUTES.subtasks, taskId, query: { limit: '3' } })));
    const cursor = first.next_cursor;
    if (typeof cursor !== 'string') throw new Error('no cursor');
    const second = body(
      await api(apiEvent({ routeKey: ROUTES.subtasks, taskId, query: { limit: '3', cursor } })),
    );

    const ids = [first, second].flatMap((page) =>
      (page.subtasks as Array<{ subtask_id: string }>).map((s) => s.subtask_id),
    );
    expect(ids).toEqual(subtaskIds(5));
    expect(second.next_cursor).toBeNull();
    expect((first.subtasks as unknown[])[0]).toMatchObject({
      subtask_id: 'sub-00000',
      state: 'QUEUING',
      attempted: 0,
    });
  });

  it('filters by state', async () => {
    const taskId = await newTask(4);
    await applyToTask(table.store, taskId, [{ subtaskId: 'sub-00002', status: terminal('sub-00002') }]);

    const result = body(
      await api(apiEvent({ routeKey: ROUTES.subtasks, taskId, query: { state: 'SUCCESS' } })),
    );

    expect(result.subtasks).toEqual([
      expect.objectContaining({ subtask_id: 'sub-00002', state: 'SUCCESS', succeeded: 100 }),
    ]);
    expect(result.next_cursor).toBeNull();
  });

  it('refuses a cursor issued for another task or filter, altered, or signed with another key', async () => {
    const [taskA, taskB] = [await newTask(3), await newTask(3)];
    const page = body(
      await api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { limit: '1' } })),
    );
    const cursor = String(page.next_cursor);
    const altered = Buffer.from(
      Buffer.from(cursor, 'base64url').toString().replace('sub-00000', 'sub-00001'),
    ).toString('base64url');
    const otherKey = new CursorCodec(randomBytes(32).toString('base64url')).encode(
      taskA,
      undefined,
      'sub-00000',
    );

    const results = await Promise.all([
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskB, query: { cursor } })),
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { cursor, state: 'SUCCESS' } })),
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { cursor: 'x'.repeat(600) } })),
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { cursor: '!!!' } })),
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { cursor: altered } })),
      api(apiEvent({ routeKey: ROUTES.subtasks, taskId: taskA, query: { cursor: otherKey } })),
    ]);

    expect(results.map((result) => result.statusCode)).toEqual([400, 400, 400, 400, 400, 400]);
    expect(results.map((result) => body(result).error)).toEqual(Array(6).fill('BadRequest'));
  });

  it.each([
    ['limit 0', { limit: '0' }],
    ['limit over 100', { limit: '101' }],
    ['a fractional limit', { limit: '2.5' }],
    ['a non-numeric limit', { limit: 'ten' }],
    ['an unknown state', { state: 'DONE' }],
    ['an unknown parameter', { page: '2' }],
  ])('answers 400 for %s', async (_, query) => {
    const result = await api(apiEvent({ routeKey: ROUTES.subtasks, taskId: 'task-1', query }));

    expect(result.statusCode).toBe(400);
    expect(body(result).error).toBe('BadRequest');
  });

  it('answers 404 for an unknown task', async () => {
    const result = await api(apiEvent({ routeKey: ROUTES.subtasks, taskId: 'never-initialized' }));

    expect(result.statusCode).toBe(404);
  });
});
