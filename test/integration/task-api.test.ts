/** The HTTP API (`createApiHandler`) on DynamoDB Local, from API Gateway HTTP API events to responses. */

import { Logger } from '@aws-lambda-powertools/logger';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { encodeCursor } from '../../lambdas/api/cursor';
import { createApiHandler } from '../../lambdas/api/task-api';
import { documentClient } from '../../lambdas/aws-clients';
import { ROUTES } from '../../lambdas/core/routes';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import type { TaskRecord } from '../../lambdas/core/task';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { taskKey } from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import {
  apiEvent,
  initializeRequest,
  lambdaContext,
  status,
  subtaskIds,
  T0,
  terminal,
} from '../support/factories';

let table: TestTable;
let api: ReturnType<typeof createApiHandler>;
const logger = new Logger({ serviceName: 'test' });

beforeAll(async () => {
  table = await newTaskTable();
  api = createApiHandler({ store: table.store, logger });
});

type Result = Awaited<ReturnType<typeof api>>;

function body(result: Result): Record<string, unknown> {
  return JSON.parse(result.body ?? 'null');
}

async function newTask(
  subtasks: number | readonly string[] = 3,
  items?: number,
  writeShards?: number,
): Promise<string> {
  const taskId = uniqueName('task');
  const request = initializeRequest(taskId, subtasks);
  await table.store.initialize(
    items === undefined ? request : { ...request, total: items },
    T0,
    writeShards === undefined ? {} : { writeShards },
  );
  return taskId;
}

/** Statuses applied and folded, as the applier and the aggregator would. */
async function applyAndFold(taskId: string, statuses: readonly SubtaskStatus[]): Promise<void> {
  await applyToTask(
    table.store,
    taskId,
    statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus })),
  );
  await reconcileTask(table.store, taskId, Date.now);
}

async function stored(taskId: string): Promise<TaskRecord> {
  const task = await table.store.getTask(taskId);
  if (task === undefined) throw new Error(`no task ${taskId}`);
  return task;
}

const get = (
  taskId: string,
  extra: { query?: Record<string, string>; headers?: Record<string, string> } = {},
) => api(apiEvent({ routeKey: ROUTES.task, taskId, ...extra }));

const list = (taskId: string, query: Record<string, string> = {}) =>
  api(apiEvent({ routeKey: ROUTES.subtasks, taskId, query }));

const put = (taskId: string, payload: unknown, remainingMs = 30_000) =>
  api(
    apiEvent({
      routeKey: ROUTES.initialize,
      taskId,
      body: typeof payload === 'string' ? payload : JSON.stringify(payload),
    }),
    lambdaContext(remainingMs),
  );

function pick<T extends object, K extends keyof T>(value: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, value[key]])) as Pick<T, K>;
}

const cancel = (taskId: string) => api(apiEvent({ routeKey: ROUTES.cancel, taskId }));

describe('GET /tasks/{task_id}', () => {
  it('reports the folded counts, subtasks and the dashboard message while running', async () => {
    const taskId = await newTask(3, 500);
    await applyAndFold(taskId, [
      terminal('sub-00000', { succeeded: 2, failed: 1, skipped: 1 }),
      status('sub-00001', { succeeded: 7, state: 'PROGRESS' }),
    ]);
    const task = await stored(taskId);

    const result = await get(taskId);

    expect(result.statusCode).toBe(200);
    expect(result.headers).toMatchObject({
      etag: `"${task.generation}.${task.version}"`,
      'cache-control': 'no-cache',
      'content-type': 'application/json; charset=utf-8',
    });
    expect(body(result)).toMatchObject({
      task_id: taskId,
      task_state: 'PROGRESS',
      in_progress: true,
      message: 'Progress: emailed 2 of 3 so far (skipping 1) (out of 500)',
      succeeded: false,
      subtasks: { total: 3, succeeded: 1, failed: 0, remaining: 2 },
      in_flight: { attempted: 7, succeeded: 7, failed: 0, skipped: 0 },
      task_progress: {
        action_name: 'emailed',
        attempted: 3,
        succeeded: 2,
        failed: 1,
        skipped: 1,
        total: 500,
      },
      cancel_requested: false,
      generation: task.generation,
      version: task.version,
    });
  });

  it('answers 304 while If-None-Match names the current ETag, and 200 once a fold moved it', async () => {
    const taskId = await newTask(2);
    const etag = String((await get(taskId)).headers?.etag);

    const weak = await get(taskId, { headers: { 'if-none-match': `W/${etag}` } });
    const inList = await get(taskId, { headers: { 'if-none-match': `"other.1", ${etag}` } });
    await applyAndFold(taskId, [terminal('sub-00000')]);
    const moved = await get(taskId, { headers: { 'if-none-match': etag } });

    expect(etag).toMatch(/^"[0-9a-f-]{36}\.2"$/);
    expect([weak.statusCode, inList.statusCode]).toEqual([304, 304]);
    expect(weak.body).toBeUndefined();
    expect(weak.headers).toMatchObject({ etag, 'cache-control': 'no-cache' });
    expect(moved.statusCode).toBe(200);
    expect(moved.headers?.etag).not.toBe(etag);
  });

  it('never answers 304 to the ETag of a task that was initialized again under the same id', async () => {
    const taskId = await newTask(1);
    const etag = String((await get(taskId)).headers?.etag);
    await documentClient(table.client).send(
      new DeleteCommand({ TableName: table.tableName, Key: taskKey(taskId) }),
    );
    await table.store.initialize(initializeRequest(taskId, 1), T0);

    const result = await get(taskId, { headers: { 'if-none-match': etag } });

    // Same version (2), another generation.
    expect(body(result).version).toBe(2);
    expect(result.statusCode).toBe(200);
  });

  it('ignores unknown query parameters such as a cache buster', async () => {
    const taskId = await newTask(1);

    const result = await get(taskId, { query: { _: '1700000000', verbose: 'true' } });

    expect(result.statusCode).toBe(200);
    expect(body(result).task_id).toBe(taskId);
  });

  it('answers 404 with a JSON error for an unknown task', async () => {
    const result = await get('never-initialized');

    expect(result.statusCode).toBe(404);
    expect(body(result)).toEqual({ error: 'NotFound', message: "Task 'never-initialized' does not exist" });
  });

  it.each([
    ['a slash', 'a/b'],
    ['a space', 'a b'],
    ['129 characters', 'x'.repeat(129)],
    ['non-ASCII', 'tâche'],
    ['nothing', ''],
  ])('answers 400 with a JSON error for a task id with %s', async (_, taskId) => {
    const result = await get(taskId);

    expect(result.statusCode).toBe(400);
    expect(body(result)).toMatchObject({ error: 'BadRequest', message: expect.stringContaining('task_id') });
  });

  it('answers 500 without internals when the store fails', async () => {
    const failingDb = documentClient(table.client);
    const mock = mockClient(failingDb);
    mock.on(GetCommand).rejects(new Error('socket hang up at 10.0.0.1:443 (stack: TaskStore.getTask)'));
    const failing = createApiHandler({ store: new TaskStore(failingDb, table.tableName), logger });

    const result = await failing(apiEvent({ routeKey: ROUTES.task, taskId: 'task-1' }));
    mock.restore();

    expect(result.statusCode).toBe(500);
    expect(body(result)).toEqual({ error: 'InternalError', message: expect.any(String) });
    expect(result.body).not.toMatch(/socket|10\.0\.0\.1|stack|TaskStore/);
  });
});

describe('GET /tasks/{task_id}/subtasks', () => {
  /** A task of two write shards. */
  let wide: string;
  const WIDE = 230;

  beforeAll(async () => {
    wide = await newTask(WIDE, undefined, 2);
  });

  async function walk(taskId: string, query: Record<string, string>) {
    const ids: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const result = await list(taskId, { ...query, ...(cursor === undefined ? {} : { cursor }) });
      expect(result.statusCode).toBe(200);
      const page = body(result);
      ids.push(...(page.subtasks as { subtask_id: string }[]).map((subtask) => subtask.subtask_id));
      cursor = typeof page.next_cursor === 'string' ? page.next_cursor : undefined;
      pages++;
    } while (cursor !== undefined);
    return { ids, pages };
  }

  it('pages across write shards with its cursor: every subtask exactly once', async () => {
    const { ids, pages } = await walk(wide, { limit: '100' });

    expect([...ids].sort()).toEqual(subtaskIds(WIDE));
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('lists each subtask with its status, and filters by state', async () => {
    const taskId = await newTask(4);
    await applyAndFold(taskId, [terminal('sub-00002', { succeeded: 9 })]);

    const all = body(await list(taskId, { limit: '2' }));
    const done = body(await list(taskId, { state: 'SUCCESS' }));

    expect((all.subtasks as unknown[])[0]).toMatchObject({
      subtask_id: 'sub-00000',
      state: 'QUEUING',
      attempted: 0,
      updated_at: expect.any(String),
    });
    expect(all.next_cursor).toEqual(expect.any(String));
    expect(done).toEqual({
      task_id: taskId,
      subtasks: [expect.objectContaining({ subtask_id: 'sub-00002', state: 'SUCCESS', succeeded: 9 })],
      next_cursor: null,
    });
  });

  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

  it.each([
    ['too long', 'x'.repeat(600)],
    ['not base64url', '!!!'],
    ['non-ASCII', 'é日本'],
    ['with base64 padding', `${b64('{"s":0}')}=`],
    ['not JSON', b64('not json')],
    ['JSON of another shape', b64('[0]')],
    ['an extra key', b64('{"s":0,"x":1}')],
    ['a negative shard', b64('{"s":-1}')],
    ['a shard the task lacks', b64('{"s":2}')],
    ['a fractional shard', b64('{"s":0.5}')],
    ['a bad subtask id', b64('{"s":0,"a":"a b"}')],
    ['another spelling of a valid cursor', b64('{ "s":0}')],
    ['a non-ASCII subtask id', b64('{"s":0,"a":"é"}')],
  ])('answers 400, never 500, for a cursor %s', async (_, cursor) => {
    const result = await list(wide, { cursor });

    expect(result.statusCode).toBe(400);
    expect(body(result)).toMatchObject({ error: 'BadRequest' });
  });

  it('accepts a cursor it issued for the other write shard', async () => {
    const result = await list(wide, { cursor: encodeCursor({ shard: 1 }), limit: '5' });

    expect(result.statusCode).toBe(200);
    expect(body(result).subtasks).toHaveLength(5);
  });

  it.each([
    ['limit 0', { limit: '0' }],
    ['limit over 100', { limit: '101' }],
    ['a fractional limit', { limit: '2.5' }],
    ['a non-numeric limit', { limit: 'ten' }],
    ['an unknown state', { state: 'DONE' }],
  ])('answers 400 for %s', async (_, query) => {
    const result = await list(wide, query);

    expect(result.statusCode).toBe(400);
    expect(body(result).error).toBe('BadRequest');
  });

  it('ignores unknown query parameters', async () => {
    const result = await list(wide, { limit: '3', _: '1700000000', page: '2' });

    expect(result.statusCode).toBe(200);
    expect(body(result).subtasks).toHaveLength(3);
  });

  it('answers 404 for an unknown task', async () => {
    expect((await list('never-initialized')).statusCode).toBe(404);
  });
});

describe('PUT /tasks/{task_id}', () => {
  const job = { action_name: 'emailed', total: 300, subtask_count: 3, prefix: 'batch' };

  it('answers 201 with the new task, ready, its subtasks numbered from the prefix', async () => {
    const taskId = uniqueName('put');

    const result = await put(taskId, job);

    expect(result.statusCode).toBe(201);
    expect(body(result)).toMatchObject({
      task_id: taskId,
      task_state: 'PROGRESS',
      version: 2,
      subtasks: { total: 3, succeeded: 0, failed: 0, remaining: 3 },
      task_progress: { total: 300, attempted: 0 },
    });
    expect(result.headers?.etag).toBe(`"${body(result).generation}.2"`);
    const listed = body(await list(taskId));
    expect((listed.subtasks as { subtask_id: string }[]).map((subtask) => subtask.subtask_id)).toEqual([
      'batch-0',
      'batch-1',
      'batch-2',
    ]);
  });

  it('answers 200 with the same task when the same request comes again', async () => {
    const taskId = uniqueName('put-again');
    const first = await put(taskId, {
      ...job,
      subtask_count: undefined,
      prefix: undefined,
      subtask_ids: ['x', 'y'],
    });

    const again = await put(taskId, {
      ...job,
      subtask_count: undefined,
      prefix: undefined,
      subtask_ids: ['y', 'x'],
    });

    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(200);
    expect(body(again).generation).toBe(body(first).generation);
  });

  it('answers 409 naming the fields that differ from the task already initialized', async () => {
    const taskId = uniqueName('put-conflict');
    await put(taskId, job);

    const result = await put(taskId, { ...job, total: 301, action_name: 'graded' });

    expect(result.statusCode).toBe(409);
    expect(body(result)).toEqual({
      error: 'Conflict',
      message: expect.stringContaining('total, action_name'),
      fields: ['total', 'action_name'],
    });
  });

  it.each([
    ['no body', ''],
    ['a body that is not JSON', '{"action_name":'],
    ['a JSON array', '[]'],
    ['both subtask_ids and subtask_count', { ...job, subtask_ids: ['a'] }],
    ['neither subtask_ids nor subtask_count', { action_name: 'emailed', total: 1 }],
    ['a prefix without subtask_count', { action_name: 'emailed', total: 1, subtask_ids: ['a'], prefix: 'p' }],
    ['an unknown field', { ...job, priority: 'high' }],
    ['a negative total', { ...job, total: -1 }],
    ['a tolerance over 100', { ...job, tolerated_failure_percentage: 101 }],
    ['a tolerance with three decimals', { ...job, tolerated_failure_percentage: 1.005 }],
    ['a deadline in the past', { ...job, deadline: '2000-01-01T00:00:00Z' }],
    ['a TTL shorter than the queue retention', { ...job, ttl_days: 2 }],
    ['duplicate subtask ids', { action_name: 'emailed', total: 1, subtask_ids: ['a', 'a'] }],
    ['a bad subtask id', { action_name: 'emailed', total: 1, subtask_ids: ['a b'] }],
    ['an empty subtask list', { action_name: 'emailed', total: 1, subtask_ids: [] }],
  ])('answers 400 and writes nothing for %s', async (_, payload) => {
    const taskId = uniqueName('put-bad');

    const result = await put(taskId, payload);

    expect(result.statusCode).toBe(400);
    expect(body(result)).toMatchObject({ error: 'BadRequest', message: expect.any(String) });
    expect(await table.store.getTask(taskId)).toBeUndefined();
  });

  it('answers 202 when too little time is left to finish, and the same PUT again carries on to 200', async () => {
    const taskId = uniqueName('put-slow');

    const started = await put(taskId, job, 5_000);
    const carriedOn = await put(taskId, job);

    expect(started.statusCode).toBe(202);
    expect(started.headers).toMatchObject({ 'retry-after': '1' });
    expect(body(started)).toMatchObject({ task_state: 'PROGRESS', version: 1 });
    expect(carriedOn.statusCode).toBe(200);
    expect(body(carriedOn)).toMatchObject({ version: 2, generation: body(started).generation });
    expect((await stored(taskId)).ready).toBe(true);
  });

  /** The README's `job-3`: three options, which DynamoDB may hand back in another key order than they went in. */
  const job3 = {
    action_name: 'emailed',
    total: 100_000,
    subtask_count: 1_000,
    prefix: 'batch',
    tolerated_failure_percentage: 2.5,
    subtask_timeout_seconds: 3600,
    deadline: '2030-01-01T00:00:00Z',
  };

  it("answers 201, then 200 with the same task, to the README's job-3 request sent twice", async () => {
    const taskId = uniqueName('job-3');

    const first = await put(taskId, job3);
    const again = await put(taskId, job3);

    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(200);
    expect(body(again)).toEqual(body(first));
    expect((await stored(taskId)).subtasks.total).toBe(1_000);
  });

  it('carries a 202 fan-out with three options on to 200 with the same PUT', async () => {
    const taskId = uniqueName('put-options');
    const request = {
      ...job,
      ...pick(job3, 'tolerated_failure_percentage', 'subtask_timeout_seconds', 'deadline'),
    };

    const started = await put(taskId, request, 5_000);
    const carriedOn = await put(taskId, request);
    const repeated = await put(taskId, request);

    expect([started.statusCode, carriedOn.statusCode, repeated.statusCode]).toEqual([202, 200, 200]);
    expect(await stored(taskId)).toMatchObject({
      ready: true,
      generation: body(started).generation,
      options: {
        tolerated_failure_bp: 250,
        subtask_timeout_seconds: 3600,
        deadline_ms: Date.parse(job3.deadline),
      },
    });
  });

  it('answers the same PUT after its deadline as before it: a resume carries on, a repeat is 200', async () => {
    let clock = T0;
    const clocked = createApiHandler({ store: table.store, logger, now: () => clock });
    const putAt = (taskId: string, payload: unknown, remainingMs = 30_000) =>
      clocked(
        apiEvent({ routeKey: ROUTES.initialize, taskId, body: JSON.stringify(payload) }),
        lambdaContext(remainingMs),
      );
    const request = { ...job, deadline: new Date(T0 + 60_000).toISOString() };
    const [resumed, repeated] = [uniqueName('put-late'), uniqueName('put-late')];
    const beforeDeadline = [await putAt(resumed, request, 5_000), await putAt(repeated, request)];

    clock = T0 + 120_000;
    const afterDeadline = [await putAt(resumed, request), await putAt(repeated, request)];
    const newTaskAfterDeadline = await putAt(uniqueName('put-late'), request);

    expect(beforeDeadline.map((result) => result.statusCode)).toEqual([202, 201]);
    expect(afterDeadline.map((result) => result.statusCode)).toEqual([200, 200]);
    expect(body(afterDeadline[1] as Result)).toEqual(body(beforeDeadline[1] as Result));
    expect((await stored(resumed)).ready).toBe(true);
    expect(newTaskAfterDeadline.statusCode).toBe(400);
  });
});

describe('POST /tasks/{task_id}/cancel', () => {
  it('answers 202, and the task shows cancel_requested at once', async () => {
    const taskId = await newTask(2);

    const result = await cancel(taskId);

    expect(result.statusCode).toBe(202);
    expect(body(result)).toMatchObject({ task_state: 'PROGRESS', cancel_requested: true });
    expect(body(await get(taskId)).cancel_requested).toBe(true);
  });

  it('answers 202 to a second cancel', async () => {
    const taskId = await newTask(2);

    const results = [await cancel(taskId), await cancel(taskId)];

    expect(results.map((result) => result.statusCode)).toEqual([202, 202]);
  });

  it('answers 409 for a task that already ended', async () => {
    const taskId = await newTask(1);
    await applyAndFold(taskId, [terminal('sub-00000')]);

    const result = await cancel(taskId);

    expect(result.statusCode).toBe(409);
    expect(body(result)).toEqual({ error: 'Conflict', message: expect.stringContaining('SUCCESS') });
  });

  it('answers 409 for a task still being initialized', async () => {
    const taskId = uniqueName('cancel-early');
    await table.store.initialize(initializeRequest(taskId, 2), T0, { mayContinue: () => false });

    const result = await cancel(taskId);

    expect(result.statusCode).toBe(409);
    expect(body(result)).toEqual({ error: 'Conflict', message: expect.stringContaining('initialized') });
    expect((await stored(taskId)).cancel_requested).toBeUndefined();
  });

  it('answers 404 for an unknown task', async () => {
    expect((await cancel('never-initialized')).statusCode).toBe(404);
  });
});

describe('every response', () => {
  it('carries X-Content-Type-Options: nosniff and a Cache-Control header, whatever its status', async () => {
    const taskId = uniqueName('headers');
    const slow = uniqueName('headers-slow');
    const failingDb = documentClient(table.client);
    const mock = mockClient(failingDb);
    mock.on(GetCommand).rejects(new Error('boom'));
    const failing = createApiHandler({ store: new TaskStore(failingDb, table.tableName), logger });

    const results: Record<string, Result> = {
      created: await put(taskId, { action_name: 'emailed', total: 1, subtask_count: 1 }),
      same: await put(taskId, { action_name: 'emailed', total: 1, subtask_count: 1 }),
      accepted: await put(slow, { action_name: 'emailed', total: 1, subtask_count: 1 }, 1_000),
      conflict: await cancel(slow),
      read: await get(taskId),
      notModified: await get(taskId, { headers: { 'if-none-match': '*' } }),
      badRequest: await get('bad id'),
      notFound: await get('never-initialized'),
      noRoute: await api(apiEvent({ routeKey: 'DELETE /tasks/{task_id}', taskId })),
      canceled: await cancel(taskId),
      failed: await failing(apiEvent({ routeKey: ROUTES.task, taskId })),
    };
    mock.restore();

    expect(
      Object.fromEntries(Object.entries(results).map(([name, result]) => [name, result.statusCode])),
    ).toEqual({
      created: 201,
      same: 200,
      accepted: 202,
      conflict: 409,
      read: 200,
      notModified: 304,
      badRequest: 400,
      notFound: 404,
      noRoute: 404,
      canceled: 202,
      failed: 500,
    });
    for (const result of Object.values(results)) {
      expect(result.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'cache-control': expect.any(String),
      });
    }
  });
});
