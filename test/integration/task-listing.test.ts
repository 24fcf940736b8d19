/** `GET /tasks` on DynamoDB Local: the listing indexes, the read budget, the cursor and the rows. */

import { Logger } from '@aws-lambda-powertools/logger';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { createApiHandler } from '../../lambdas/api/task-api';
import { encodeListCursor } from '../../lambdas/api/task-list-cursor';
import { documentClient } from '../../lambdas/aws-clients';
import { ROUTES } from '../../lambdas/core/routes';
import type { TaskListQuery } from '../../lambdas/core/task-listing';
import { LIST_INDEX_LIST, TABLE_KEYS } from '../../lambdas/service-settings';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { type ItemKind, type StoreObserver, TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, newTaskTable, type TestTable } from '../support/aws';
import { apiEvent, initializeRequest, T0, terminal } from '../support/factories';

const SECOND = 1_000;

/** Counts the store's reads by kind, so a test can say how many calls a page took. */
function readCounter(): StoreObserver & { reads: ItemKind[] } {
  const reads: ItemKind[] = [];
  return { reads, read: (kind) => reads.push(kind), write: () => undefined };
}

interface Seed {
  readonly id: string;
  readonly group?: string;
  readonly end?: 'SUCCESS' | 'FAILURE';
}

/** Initializes the tasks a second apart, in order (the last is the newest), and ends those asked to end. */
async function seed(table: TestTable, tasks: readonly Seed[]): Promise<void> {
  for (const [index, task] of tasks.entries()) {
    const request = initializeRequest(
      task.id,
      ['s-1'],
      task.group === undefined ? {} : { group: task.group },
    );
    const nowMs = T0 + index * SECOND;
    if (task.end === 'FAILURE') {
      // Never made ready: the sweeper's way of ending a task (`INITIALIZE_INCOMPLETE`), without a fold.
      const { task: created } = await table.store.initialize(request, nowMs, { mayContinue: () => false });
      await table.store.endIncomplete(created, 'FAILURE', 'INITIALIZE_INCOMPLETE', nowMs);
      continue;
    }
    await table.store.initialize(request, nowMs);
    if (task.end === 'SUCCESS') {
      await applyToTask(table.store, task.id, [{ subtaskId: 's-1', status: terminal('s-1') }]);
      await reconcileTask(table.store, task.id, Date.now);
    }
  }
}

async function ids(table: TestTable, query: Partial<TaskListQuery>): Promise<string[]> {
  const page = await table.store.listTasks({ limit: 50, readBudget: 1_000, ...query });
  return page.tasks.map((task) => task.task_id);
}

describe('TaskStore.listTasks', () => {
  it('lists every task newest first, pages of `limit` continuing after the cursor', async () => {
    const table = await newTaskTable();
    await seed(table, [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }, { id: 'e' }]);

    const first = await table.store.listTasks({ limit: 2, readBudget: 1_000 });
    const second = await table.store.listTasks({ limit: 2, readBudget: 1_000, after: first.next });
    const third = await table.store.listTasks({ limit: 2, readBudget: 1_000, after: second.next });

    expect(first.tasks.map((task) => task.task_id)).toEqual(['e', 'd']);
    expect(second.tasks.map((task) => task.task_id)).toEqual(['c', 'b']);
    expect(third.tasks.map((task) => task.task_id)).toEqual(['a']);
    expect(third.next).toBeUndefined();
  });

  it('filters by state on the state index, running and ended included', async () => {
    const table = await newTaskTable();
    await seed(table, [
      { id: 'ok-1', end: 'SUCCESS' },
      { id: 'run-1' },
      { id: 'bad-1', end: 'FAILURE' },
      { id: 'ok-2', end: 'SUCCESS' },
      { id: 'run-2' },
    ]);

    expect(await ids(table, { state: 'SUCCESS' })).toEqual(['ok-2', 'ok-1']);
    expect(await ids(table, { state: 'FAILURE' })).toEqual(['bad-1']);
    expect(await ids(table, { state: 'PROGRESS' })).toEqual(['run-2', 'run-1']);
    expect(await ids(table, { state: 'running' })).toEqual(['run-2', 'run-1']);
    expect(await ids(table, { state: 'ended' })).toEqual(['ok-2', 'bad-1', 'ok-1']);
    expect(await ids(table, { state: 'CANCELED' })).toEqual([]);
  });

  it('filters by group, and by group and state; a task without a group is in no group', async () => {
    const table = await newTaskTable();
    await seed(table, [
      { id: 'x-1', group: 'course-v1:X', end: 'SUCCESS' },
      { id: 'y-1', group: 'course-v1:Y' },
      { id: 'none' },
      { id: 'x-2', group: 'course-v1:X' },
    ]);

    expect(await ids(table, { group: 'course-v1:X' })).toEqual(['x-2', 'x-1']);
    expect(await ids(table, { group: 'course-v1:X', state: 'running' })).toEqual(['x-2']);
    expect(await ids(table, { group: 'course-v1:X', state: 'SUCCESS' })).toEqual(['x-1']);
    expect(await ids(table, { group: 'course-v1:Z' })).toEqual([]);
    expect(await ids(table, {})).toEqual(['x-2', 'none', 'y-1', 'x-1']);
  });

  it('reads at most the budget of index entries: a sparse filter comes back short, with a cursor to go on', async () => {
    const counter = readCounter();
    const table = await newTaskTable(undefined, counter);
    await seed(table, [
      { id: 'old', end: 'SUCCESS' },
      { id: 'r-1' },
      { id: 'r-2' },
      { id: 'r-3' },
      { id: 'r-4' },
    ]);
    counter.reads.length = 0;

    const short = await table.store.listTasks({ state: 'ended', limit: 10, readBudget: 3 });
    const rest = await table.store.listTasks({ state: 'ended', limit: 10, readBudget: 3, after: short.next });

    expect(short.tasks).toEqual([]);
    expect(short.next).toBeDefined();
    expect(rest.tasks.map((task) => task.task_id)).toEqual(['old']);
    expect(rest.next).toBeUndefined();
    // One query of at most the budget each; a batch read of the rows only for the page that has some.
    expect(counter.reads).toEqual(['task', 'task', 'task']);
  });

  it('a page of 50 is one query and one batch read', async () => {
    const counter = readCounter();
    const table = await newTaskTable(undefined, counter);
    await seed(
      table,
      Array.from({ length: 55 }, (_, index) => ({ id: `t-${String(index).padStart(2, '0')}` })),
    );
    counter.reads.length = 0;

    const page = await table.store.listTasks({ limit: 50, readBudget: 1_000 });

    expect(page.tasks).toHaveLength(50);
    expect(page.tasks[0]?.task_id).toBe('t-54');
    expect(counter.reads).toHaveLength(2);
  });

  it('carries what a row shows, live counts from the task item', async () => {
    const table = await newTaskTable();
    await seed(table, [{ id: 'done', group: 'g-1', end: 'SUCCESS' }]);

    const [task] = (await table.store.listTasks({ limit: 1, readBudget: 10 })).tasks;

    expect(task).toMatchObject({
      task_id: 'done',
      group: 'g-1',
      task_state: 'SUCCESS',
      task_output: { action_name: 'emailed', succeeded: 100, total: 100 },
      subtasks: { total: 1, succeeded: 1, failed: 0 },
      created_at: new Date(T0).toISOString(),
    });
    expect(task?.ended_at).toBeDefined();
    expect(Object.keys(task ?? {})).not.toContain('shard_sizes');
  });
});

describe('what a fold writes', () => {
  /** The attributes each task update sets or removes, as DynamoDB resolves its `#name` placeholders. */
  async function updatedAttributes(
    act: (store: TaskStore, forget: () => void) => Promise<void>,
  ): Promise<string[][]> {
    const db = documentClient(dynamoClient());
    const updates: string[][] = [];
    const send = db.send.bind(db);
    db.send = ((command: Parameters<typeof send>[0]) => {
      if (command instanceof UpdateCommand && command.input.Key?.[TABLE_KEYS.sortKey] === 'TASK') {
        const names = command.input.ExpressionAttributeNames ?? {};
        const expression = command.input.UpdateExpression ?? '';
        updates.push([...expression.matchAll(/#\w+/g)].map(([name]) => names[name] ?? name));
      }
      return send(command);
    }) as typeof db.send;
    const table = await newTaskTable();
    await act(new TaskStore(db, table.tableName), () => {
      updates.length = 0;
    });
    return updates;
  }

  const indexed: readonly string[] = LIST_INDEX_LIST.flatMap((index) => [
    index.partitionKey,
    index.sortKey,
    ...index.projected,
  ]);

  it('never sets a key or projected attribute of a listing index, until the write that ends the task', async () => {
    const updates = await updatedAttributes(async (store, forget) => {
      await store.initialize(initializeRequest('t', ['s-1', 's-2']), T0);
      forget();
      await applyToTask(store, 't', [{ subtaskId: 's-1', status: terminal('s-1') }]);
      await reconcileTask(store, 't', Date.now);
      await applyToTask(store, 't', [{ subtaskId: 's-2', status: terminal('s-2') }]);
      await reconcileTask(store, 't', Date.now);
    });

    const [progress, ending] = updates;
    expect(updates).toHaveLength(2);
    expect(progress?.filter((name) => indexed.includes(name))).toEqual([]);
    expect(ending?.filter((name) => indexed.includes(name))).toEqual(['task_state']);
  });
});

describe('GET /tasks', () => {
  const logger = new Logger({ serviceName: 'test' });
  const get = (api: ReturnType<typeof createApiHandler>, query: Record<string, string>, headers = {}) =>
    api(apiEvent({ routeKey: ROUTES.list, query, headers }));

  it('answers rows and a cursor, then 304 to the same page with its ETag', async () => {
    const table = await newTaskTable();
    await seed(table, [{ id: 'a', group: 'g' }, { id: 'b' }]);
    const api = createApiHandler({ store: table.store, logger });

    const first = await get(api, { limit: '1' });
    const body = JSON.parse(first.body ?? '{}');
    const again = await get(api, { limit: '1' }, { 'if-none-match': String(first.headers?.etag) });
    const next = JSON.parse((await get(api, { limit: '1', cursor: body.next_cursor })).body ?? '{}');

    expect(first.statusCode).toBe(200);
    expect(body.tasks).toEqual([
      expect.objectContaining({ task_id: 'b', group: null, action_name: 'emailed', task_state: 'PROGRESS' }),
    ]);
    expect(again.statusCode).toBe(304);
    expect(next.tasks.map((task: { task_id: string }) => task.task_id)).toEqual(['a']);
  });

  it('refuses a bad state, group or limit, and a cursor issued for another filter', async () => {
    const table = await newTaskTable();
    const api = createApiHandler({ store: table.store, logger });
    const otherFilter = encodeListCursor(
      { createdAt: new Date(T0).toISOString(), taskId: 'a' },
      { state: 'SUCCESS' },
    );

    const answers = await Promise.all([
      get(api, { state: 'DONE' }),
      get(api, { group: 'a b' }),
      get(api, { group: 'g'.repeat(201) }),
      get(api, { limit: '101' }),
      get(api, { cursor: otherFilter }),
      get(api, { state: 'FAILURE', cursor: otherFilter }),
    ]);

    expect(answers.map((answer) => answer.statusCode)).toEqual([400, 400, 400, 400, 400, 400]);
  });
});
