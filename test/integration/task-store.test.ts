import { randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { documentClient } from '../../lambdas/aws-clients';
import type { Outcome } from '../../lambdas/core/apply-statuses';
import { InitializeConflictError, InvalidInitializeRequestError } from '../../lambdas/core/errors';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import { type InitializeRequest, subtaskShard, type TaskRecord } from '../../lambdas/core/task';
import { SWEEPER, TABLE_KEYS } from '../../lambdas/service-settings';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { subtaskKey, taskKey } from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, status, subtaskIds, T0, terminal } from '../support/factories';
import { StreamTap } from '../support/fold-harness';
import { StoreRecorder } from '../support/store-recorder';

const recorder = new StoreRecorder();
let table: TestTable;
let tap: StreamTap;
let db: DynamoDBDocumentClient;

beforeAll(async () => {
  table = await newTaskTable(dynamoClient(), recorder);
  tap = new StreamTap(table.streamArn);
  db = documentClient(table.client);
});

afterAll(async () => {
  await tap.stop();
});

async function task(taskId: string, store: TaskStore = table.store): Promise<TaskRecord> {
  const found = await store.getTask(taskId);
  if (found === undefined) throw new Error(`no task ${taskId}`);
  return found;
}

async function apply(taskId: string, statuses: readonly SubtaskStatus[]): Promise<readonly Outcome[]> {
  const { outcomes } = await applyToTask(
    table.store,
    taskId,
    statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus })),
  );
  return outcomes;
}

/** The error code of each outcome, or its kind when it was not rejected. */
/** Initialize options that write one page of `pageSize` subtasks, then stop. */
function onePage(pageSize: number) {
  let pages = 0;
  return { mayContinue: () => pages++ === 0, pageSize };
}

function codes(outcomes: readonly Outcome[]): string[] {
  return outcomes.map((outcome) => (outcome.kind === 'rejected' ? outcome.error.code : outcome.kind));
}

/** The fold, as the stream (or the sweeper's idle recount) runs it. */
async function folded(taskId: string): Promise<TaskRecord> {
  await reconcileTask(table.store, taskId, Date.now);
  return task(taskId);
}

async function rawTaskItem(taskId: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await db.send(
    new GetCommand({ TableName: table.tableName, Key: taskKey(taskId), ConsistentRead: true }),
  );
  return Item;
}

async function deleteTaskItem(taskId: string): Promise<void> {
  await db.send(new DeleteCommand({ TableName: table.tableName, Key: taskKey(taskId) }));
}

/** Sort key and event of a stream record, e.g. `INSERT SUB#sub-00000`. */
function describeRecord(record: DynamoDBRecord): string {
  return `${record.eventName} ${record.dynamodb?.Keys?.[TABLE_KEYS.sortKey]?.S}`;
}

/**
 * A document client whose subtask puts fail after the first `survivors`, as if the process initializing the task
 * died there; `landed()` waits for the puts it had already sent, which DynamoDB completes all the same. Its
 * transactions are canceled (as a throttled one is), so initialize puts subtasks one by one and dies among them.
 */
function crashingClient(survivors: number) {
  const client = documentClient(dynamoClient());
  const written = new Set<string>();
  const sent: Promise<unknown>[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Item?: Record<string, unknown>; TransactItems?: unknown[] };
      if (input.TransactItems !== undefined) {
        throw new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: {} });
      }
      const sk = input.Item?.[TABLE_KEYS.sortKey];
      const sortKey = typeof sk === 'string' ? sk : (sk as { S?: string } | undefined)?.S;
      if (sortKey?.startsWith('SUB#') && !written.has(sortKey)) {
        if (written.size >= survivors) throw new Error('The initializing process died');
        written.add(sortKey);
      }
      const result = next(args);
      sent.push(result.catch(() => undefined));
      return result;
    },
    { step: 'initialize', name: 'dieAfterSomeSubtaskPuts' },
  );
  return { client, landed: () => Promise.all(sent) };
}

describe('initialize', () => {
  it('writes the task item first, not ready, then the counters, then the subtasks, then marks it ready', async () => {
    const taskId = uniqueName('order');

    const result = await table.store.initialize(initializeRequest(taskId, 4), T0);

    const records = (await tap.next(taskId)).map(describeRecord);
    expect(records.slice(0, 2)).toEqual(['INSERT TASK', 'INSERT SHARD#0']);
    expect(records.slice(2, 6).sort()).toEqual(subtaskIds(4).map((id) => `INSERT SUB#${id}`));
    // How far it got, then ready.
    expect(records.slice(6)).toEqual(['MODIFY TASK', 'MODIFY TASK']);
    const first = (await tap.of(taskId))[0]?.dynamodb?.NewImage;
    expect(first?.ready).toEqual({ BOOL: false });
    expect(result.created).toBe(true);
    expect(result.task).toMatchObject({
      ready: true,
      version: 2,
      task_state: 'PROGRESS',
      write_shards: 1,
      subtasks: { total: 4, succeeded: 0, failed: 0 },
    });
    const subtasks = await table.store.getSubtasks(result.task, subtaskIds(4));
    expect([...subtasks.values()].map((subtask) => [subtask.status.state, subtask.version])).toEqual(
      Array(4).fill(['QUEUING', 0]),
    );
  });

  it('returns the task unchanged, created false, when the same request comes again in another order', async () => {
    const taskId = uniqueName('again');
    const request = initializeRequest(taskId, 2);
    await table.store.initialize(request, T0);
    await apply(taskId, [terminal('sub-00000')]);
    const before = await folded(taskId);

    const again = await table.store.initialize(
      { ...request, subtaskIds: [...request.subtaskIds].reverse() },
      T0 + 5_000,
    );

    expect(again).toEqual({ task: before, created: false });
    const stored = await table.store.getSubtasks(before, ['sub-00000']);
    expect(stored.get('sub-00000')).toMatchObject({ version: 1, status: { state: 'SUCCESS' } });
  });

  const CONFLICTS: [string, Partial<InitializeRequest>, string[]][] = [
    ['total', { total: 7 }, ['total']],
    ['action', { actionName: 'graded' }, ['action_name']],
    ['subtask set', { subtaskIds: subtaskIds(3) }, ['subtask set']],
    ['options', { toleratedFailurePercentage: 5 }, ['options']],
    ['TTL', { ttlDays: 60 }, ['ttl_days']],
    ['total and action', { total: 7, actionName: 'graded' }, ['total', 'action_name']],
  ];

  it.each(CONFLICTS)(
    'rejects another %s under the same id with InitializeConflictError naming what differs',
    async (_, change, fields) => {
      const taskId = uniqueName('conflict');
      const request = initializeRequest(taskId, 2);
      const { task: before } = await table.store.initialize(request, T0);

      const error = await table.store.initialize({ ...request, ...change }, T0).catch((caught) => caught);

      expect(error).toBeInstanceOf(InitializeConflictError);
      expect((error as InitializeConflictError).fields).toEqual(fields);
      expect((error as Error).message).toContain(fields.join(', '));
      expect(await task(taskId)).toEqual(before);
    },
  );

  it('writes nothing for an invalid request', async () => {
    const taskId = uniqueName('invalid');

    await expect(table.store.initialize(initializeRequest(taskId, ['a', 'a']), T0)).rejects.toBeInstanceOf(
      InvalidInitializeRequestError,
    );
    expect(await table.store.getTask(taskId)).toBeUndefined();
    expect(await tap.next(taskId)).toEqual([]);
  });

  it('stops before the subtasks when told to, and a second call finishes: ready, every subtask there', async () => {
    const taskId = uniqueName('resume');
    const request = initializeRequest(taskId, 3);

    const stopped = await table.store.initialize(request, T0, { mayContinue: () => false });
    const stoppedRecords = (await tap.next(taskId)).map(describeRecord);
    const finished = await table.store.initialize(request, T0 + 1_000);

    expect(stopped).toMatchObject({ created: true, task: { ready: false, version: 1 } });
    expect(stoppedRecords).toEqual(['INSERT TASK', 'INSERT SHARD#0']);
    expect(finished).toMatchObject({ created: false, task: { ready: true, version: 2 } });
    expect(finished.task.generation).toBe(stopped.task.generation);
    expect((await table.store.getSubtasks(finished.task, request.subtaskIds)).size).toBe(3);
  });

  it('resumes where a stopped initialization got to, writing only the subtasks not yet written', async () => {
    const taskId = uniqueName('pages');
    const request = initializeRequest(taskId, 130);
    let pages = 0;
    recorder.clear();

    const stopped = await table.store.initialize(request, T0, {
      mayContinue: () => pages++ === 0,
      pageSize: 100,
      writeShards: 2,
    });
    const firstPuts = recorder.appliedWrites('subtask', taskId).length;
    recorder.clear();
    // A resume keeps the stored layout whatever its own options say.
    const finished = await table.store.initialize(request, T0, { pageSize: 20, writeShards: 5 });

    expect(stopped.task).toMatchObject({ ready: false, init_written: 100, write_shards: 2 });
    expect(firstPuts).toBe(100);
    expect(recorder.appliedWrites('subtask', taskId)).toHaveLength(30);
    expect(finished.task).toMatchObject({ ready: true, version: 2, write_shards: 2 });
    expect((await table.store.getSubtasks(finished.task, request.subtaskIds)).size).toBe(130);
  });

  it('stops within a page when its time runs out, and a resume writes only the subtasks not yet written', async () => {
    const taskId = uniqueName('in-page');
    const request = initializeRequest(taskId, 250);
    let checks = 0;
    recorder.clear();

    // One check before the page, then one before each write of up to 100 subtasks: time runs out after two.
    const stopped = await table.store.initialize(request, T0, { withinTime: () => ++checks <= 3 });
    const firstPuts = recorder.appliedWrites('subtask', taskId).length;
    recorder.clear();
    const finished = await table.store.initialize(request, T0);

    expect(stopped.task).toMatchObject({ ready: false, init_written: 200 });
    expect(firstPuts).toBe(200);
    expect(
      recorder
        .appliedWrites('subtask', taskId)
        .map((item) => String(item.subtask_id))
        .sort(),
    ).toEqual(request.subtaskIds.slice(200));
    expect(finished.task.ready).toBe(true);
  });

  it('resumes over subtasks a killed request wrote but never saved: each put on its own, none written twice', async () => {
    const taskId = uniqueName('unsaved');
    const request = initializeRequest(taskId, 150);
    // The request is killed after its puts landed, before it saved how far it got.
    const killed = documentClient(dynamoClient());
    killed.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { UpdateExpression?: string };
        if (input.UpdateExpression?.includes('#init_written = :written')) throw new Error('killed');
        return next(args);
      },
      { step: 'initialize', name: 'killedBeforeSave' },
    );
    await expect(new TaskStore(killed, table.tableName).initialize(request, T0)).rejects.toThrow('killed');
    recorder.clear();

    const finished = await table.store.initialize(request, T0 + 1_000);

    const attempts = recorder.writes.filter((write) => write.kind === 'subtask');
    expect(attempts).toHaveLength(150);
    expect(attempts.filter((write) => write.applied)).toEqual([]);
    expect(finished.task).toMatchObject({ ready: true, init_written: 150 });
    const subtasks = await table.store.getSubtasks(finished.task, request.subtaskIds);
    expect([...subtasks.values()].every((subtask) => subtask.version === 0)).toBe(true);
    expect(subtasks.size).toBe(150);
  });

  it('writes the counters once: a resume after a saved page puts none again', async () => {
    const taskId = uniqueName('counters-once');
    const request = initializeRequest(taskId, 30);
    let pages = 0;
    await table.store.initialize(request, T0, {
      mayContinue: () => pages++ === 0,
      pageSize: 10,
      writeShards: 3,
    });
    recorder.clear();

    const finished = await table.store.initialize(request, T0 + 1_000, { pageSize: 10 });

    expect(recorder.writes.filter((write) => write.kind === 'counter')).toEqual([]);
    expect(recorder.appliedWrites('subtask', taskId)).toHaveLength(20);
    expect(finished.task).toMatchObject({ ready: true, write_shards: 3 });
  });

  it('moves an unfinished initialization’s due time a grace on from each page it saves', async () => {
    const taskId = uniqueName('grace');
    const request = initializeRequest(taskId, 30);
    const later = T0 + 10 * 60_000;
    const grace = SWEEPER.initializeGraceMinutes * 60;

    await table.store.initialize(request, T0, onePage(10));
    const afterFirst = await rawTaskItem(taskId);
    await table.store.initialize(request, later, onePage(10));
    const afterSecond = await rawTaskItem(taskId);

    expect(afterFirst).toMatchObject({ init_written: 10, due_at: Math.floor(T0 / 1000) + grace });
    expect(afterSecond).toMatchObject({
      init_written: 20,
      due_at: Math.floor(later / 1000) + grace,
      updated_at: new Date(later).toISOString(),
      version: 1,
    });
  });

  it('a ready write after the task ended INITIALIZE_INCOMPLETE changes nothing', async () => {
    const taskId = uniqueName('ended-first');
    const request = initializeRequest(taskId, 3);
    const { task: stuck } = await table.store.initialize(request, T0, { mayContinue: () => false });
    // The sweeper gives the task up between the resumer's last page and its ready write.
    const client = documentClient(dynamoClient());
    client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { UpdateExpression?: string };
        if (input.UpdateExpression?.includes('#ready = :true')) {
          const read = await task(taskId);
          await table.store.endIncomplete(read, 'FAILURE', 'INITIALIZE_INCOMPLETE', T0 + 60_000);
        }
        return next(args);
      },
      { step: 'initialize', name: 'sweptBeforeReady' },
    );
    const resumer = new TaskStore(client, table.tableName);

    const result = await resumer.initialize(request, T0 + 1_000);
    const after = await task(taskId);

    expect(result.task).toEqual(after);
    expect(after).toMatchObject({
      ready: false,
      task_state: 'FAILURE',
      end_reason: 'INITIALIZE_INCOMPLETE',
      version: stuck.version + 1,
    });
  });
});

describe('regressions: subtask items a task could wrongly treat as its own', () => {
  it('two initializations racing with different subtask sets: the loser writes nothing the winner counts', async () => {
    const taskId = uniqueName('race');
    // Open edX makes new uuid4 subtask ids on every run.
    const sets = [0, 1].map(() => Array.from({ length: 6 }, () => randomUUID()));

    const results = await Promise.allSettled(
      sets.map((ids) => table.store.initialize(initializeRequest(taskId, ids), T0)),
    );

    const winner = results.findIndex((result) => result.status === 'fulfilled');
    const loser = results.findIndex((result) => result.status === 'rejected');
    expect([winner, loser].sort()).toEqual([0, 1]);
    expect((results[loser] as PromiseRejectedResult).reason).toBeInstanceOf(InitializeConflictError);
    const [ours, theirs] = [sets[winner] ?? [], sets[loser] ?? []];
    const lastOfOurs = ours.at(-1) ?? '';

    const rejected = await apply(
      taskId,
      theirs.map((id) => terminal(id)),
    );
    await apply(
      taskId,
      ours.slice(0, -1).map((id) => terminal(id, { succeeded: 3 })),
    );
    const beforeLast = await folded(taskId);
    await apply(taskId, [terminal(lastOfOurs, { succeeded: 3 })]);
    const ended = await folded(taskId);

    expect(codes(rejected)).toEqual(Array(6).fill('UNKNOWN_SUBTASK'));
    expect(beforeLast).toMatchObject({ task_state: 'PROGRESS', subtasks: { total: 6, succeeded: 5 } });
    expect(ended).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 6, succeeded: 6, failed: 0 },
      task_output: { attempted: 18, succeeded: 18 },
    });
  });

  it('a crashed initialization re-run with new subtask ids is refused while the first one’s task item exists', async () => {
    const taskId = uniqueName('crashed');
    const firstRun = Array.from({ length: 40 }, () => randomUUID());
    const crashing = crashingClient(10);
    await expect(
      new TaskStore(crashing.client, table.tableName).initialize(initializeRequest(taskId, firstRun), T0),
    ).rejects.toThrow(/died/);
    await crashing.landed();

    const secondRun = Array.from({ length: 40 }, () => randomUUID());
    const error = await table.store
      .initialize(initializeRequest(taskId, secondRun), T0)
      .catch((caught) => caught);
    const outcome = await applyToTask(table.store, taskId, [
      { subtaskId: firstRun[0] ?? '', status: terminal(firstRun[0] ?? '') },
    ]).catch((caught) => caught);

    expect(error).toBeInstanceOf(InitializeConflictError);
    expect((error as InitializeConflictError).fields).toEqual(['subtask set']);
    // The first run's task never became ready: its statuses wait (transient), its items are never counted.
    expect(outcome).toMatchObject({ code: 'TASK_NOT_READY', permanent: false });
    expect(await task(taskId)).toMatchObject({ ready: false, task_state: 'PROGRESS' });
  });

  it('a crashed initialization re-run with new ids after its task item was removed never counts the first run’s items', async () => {
    const taskId = uniqueName('rerun');
    const firstRun = Array.from({ length: 40 }, () => randomUUID());
    const crashing = crashingClient(25);
    await expect(
      new TaskStore(crashing.client, table.tableName).initialize(initializeRequest(taskId, firstRun), T0),
    ).rejects.toThrow(/died/);
    await crashing.landed();
    const leftovers = await table.store.getSubtasks(await task(taskId), firstRun);
    // The sweeper ends it INITIALIZE_INCOMPLETE; TTL removes its task item before its subtask items.
    await deleteTaskItem(taskId);

    const secondRun = Array.from({ length: 40 }, () => randomUUID());
    const { task: second, created } = await table.store.initialize(initializeRequest(taskId, secondRun), T0);
    const rejected = await apply(
      taskId,
      firstRun.map((id) => terminal(id)),
    );
    await apply(
      taskId,
      secondRun.slice(1).map((id) => terminal(id, { succeeded: 2 })),
    );
    const beforeLast = await folded(taskId);
    await apply(taskId, [terminal(secondRun[0] ?? '', { succeeded: 2 })]);

    expect(leftovers.size).toBe(25);
    expect(created).toBe(true);
    expect(codes(rejected)).toEqual(Array(40).fill('UNKNOWN_SUBTASK'));
    expect(beforeLast).toMatchObject({ task_state: 'PROGRESS', subtasks: { total: 40, succeeded: 39 } });
    expect(await folded(taskId)).toMatchObject({
      generation: second.generation,
      task_state: 'SUCCESS',
      subtasks: { total: 40, succeeded: 40, failed: 0 },
      task_output: { attempted: 80, succeeded: 80 },
    });
  });

  it('after TTL removed only the task item, the same task initialized again replaces the old items and ends', async () => {
    const taskId = uniqueName('ttl');
    const request = initializeRequest(taskId, 3);
    const statuses = request.subtaskIds.map((id) => terminal(id, { succeeded: 4 }));
    await table.store.initialize(request, T0);
    await apply(taskId, statuses);
    const first = await folded(taskId);
    await deleteTaskItem(taskId);

    const { task: second, created } = await table.store.initialize(request, T0 + 86_400_000);
    const replaced = await table.store.getSubtasks(second, request.subtaskIds);
    // The very statuses of the first run, sent again by the new run's workers: no duplicates now.
    const outcomes = await apply(taskId, statuses);

    expect(first.task_state).toBe('SUCCESS');
    expect(created).toBe(true);
    expect(second.generation).not.toBe(first.generation);
    expect([...replaced.values()].map((subtask) => [subtask.status.state, subtask.version])).toEqual(
      Array(3).fill(['QUEUING', 0]),
    );
    expect(codes(outcomes)).toEqual(['applied', 'applied', 'applied']);
    expect(await folded(taskId)).toMatchObject({
      generation: second.generation,
      task_state: 'SUCCESS',
      subtasks: { total: 3, succeeded: 3, failed: 0 },
      task_output: { attempted: 12, succeeded: 12 },
    });
  });
});

describe('writeSubtask', () => {
  it('writes only over the version and the generation it read', async () => {
    const taskId = uniqueName('write');
    const { task: read } = await table.store.initialize(initializeRequest(taskId, 1), T0);
    const stored = (await table.store.getSubtasks(read, ['sub-00000'])).get('sub-00000');
    if (stored === undefined) throw new Error('no subtask');
    const next = { ...stored, status: status('sub-00000', { succeeded: 2, state: 'PROGRESS' }), version: 1 };

    const first = await table.store.writeSubtask(read, next, 0);
    const staleVersion = await table.store.writeSubtask(read, { ...next, version: 1 }, 0);
    const otherGeneration = await table.store.writeSubtask(
      { ...read, generation: 'another' },
      { ...next, version: 2 },
      1,
    );

    expect([first, staleVersion, otherGeneration]).toEqual([true, false, false]);
    expect((await table.store.getSubtasks(read, ['sub-00000'])).get('sub-00000')).toMatchObject({
      version: 1,
      status: { succeeded: 2, state: 'PROGRESS' },
      generation: read.generation,
    });
  });
});

/**
 * The listing of a task over several write shards. The shards are small here (three of 100 subtasks, a read
 * budget of 100) since DynamoDB Local writes a few hundred items a second; the bound is the same at full size,
 * which the end-to-end suite's large task shows over HTTP.
 */
const LISTED_SUBTASKS = 300;
const LISTED_SHARDS = 3;
const READ_BUDGET = 100;

describe(`listSubtasks on a task of ${LISTED_SUBTASKS} subtasks in ${LISTED_SHARDS} write shards`, () => {
  let big: TaskRecord;
  /** Subtask ids per shard, in the order the listing reads them. */
  let shards: string[][];

  beforeAll(async () => {
    const request = initializeRequest(uniqueName('big'), LISTED_SUBTASKS);
    big = (await table.store.initialize(request, T0, { writeShards: LISTED_SHARDS })).task;
    shards = Array.from({ length: big.write_shards }, () => [] as string[]);
    for (const id of request.subtaskIds) shards[subtaskShard(big, id)]?.push(id);
    for (const ids of shards) ids.sort();
  });

  /** How many items a listing from the start has read when it stops at `next`. */
  function itemsBefore(next: { shard: number; after?: string }): number {
    const before = shards.slice(0, next.shard).reduce((sum, ids) => sum + ids.length, 0);
    const within = next.after === undefined ? 0 : (shards[next.shard]?.indexOf(next.after) ?? -1) + 1;
    return before + within;
  }

  it('pages shard by shard with its cursor, every subtask once, in id order within a shard', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let from: { shard: number; after?: string } | undefined;
    do {
      const page = await table.store.listSubtasks(big, {
        limit: 20,
        readBudget: READ_BUDGET,
        ...(from === undefined ? {} : { from }),
      });
      seen.push(...page.subtasks.map((subtask) => subtask.subtask_id));
      sizes.push(page.subtasks.length);
      from = page.next;
    } while (from !== undefined);

    expect(big.write_shards).toBe(LISTED_SHARDS);
    expect(shards.every((ids) => ids.length > 0)).toBe(true);
    expect(seen).toEqual(shards.flat());
    // Pages run across shard boundaries: only the last may be short.
    expect(sizes.slice(0, -1).every((size) => size === 20)).toBe(true);
  });

  it('stops at the read budget when nothing matches the filter: a short page and a cursor', async () => {
    const page = await table.store.listSubtasks(big, {
      state: 'FAILURE',
      limit: 50,
      readBudget: READ_BUDGET,
    });

    expect(page.subtasks).toEqual([]);
    expect(page.next).toBeDefined();
    expect(itemsBefore(page.next ?? { shard: 0 })).toBe(READ_BUDGET);
  });

  it('finds the few matching subtasks in every shard, a bounded read at a time', async () => {
    const failing = shards.map((ids) => ids[ids.length - 1] ?? '');
    await apply(
      big.task_id,
      failing.map((id) => status(id, { failed: 1, state: 'FAILURE' })),
    );
    const found: string[] = [];
    const reads: number[] = [];
    let from: { shard: number; after?: string } | undefined;
    do {
      const page = await table.store.listSubtasks(big, {
        state: 'FAILURE',
        limit: 50,
        readBudget: READ_BUDGET,
        ...(from === undefined ? {} : { from }),
      });
      found.push(...page.subtasks.map((subtask) => subtask.subtask_id));
      reads.push(itemsBefore(page.next ?? { shard: shards.length }) - itemsBefore(from ?? { shard: 0 }));
      from = page.next;
    } while (from !== undefined);

    expect(found).toEqual(failing);
    expect(Math.max(...reads)).toBeLessThanOrEqual(READ_BUDGET);
    expect(reads.length).toBeGreaterThanOrEqual(Math.ceil(LISTED_SUBTASKS / READ_BUDGET));
  });
});

describe('the due index, cancel and incomplete initializations', () => {
  /** A table of its own: every task on it is due at some time, and the index is the table's. */
  let due: TestTable;

  beforeAll(async () => {
    due = await newTaskTable();
  });

  const seconds = (ms: number) => Math.floor(ms / 1000);

  it('lists a task only from its due time: ready, it is due for an idle recount', async () => {
    const taskId = uniqueName('due');
    await due.store.initialize(initializeRequest(taskId, 1), T0);
    const idleAt = seconds(T0) + SWEEPER.idleRecountMinutes * 60;

    const early = await due.store.dueTaskIds(idleAt - 1, 50);
    const onTime = await due.store.dueTaskIds(idleAt, 50);

    expect(early).not.toContain(taskId);
    expect(onTime).toContain(taskId);
  });

  it('moves a task in progress to another due time, and never puts an ended task back', async () => {
    const [moving, ending] = [uniqueName('move'), uniqueName('ended')];
    await Promise.all([moving, ending].map((id) => due.store.initialize(initializeRequest(id, 1), T0)));
    const endingTask = await task(ending, due.store);
    await applyToTask(due.store, ending, [{ subtaskId: 'sub-00000', status: terminal('sub-00000') }]);
    await reconcileTask(due.store, ending, Date.now);
    // Its `Task Ended` went out, as the aggregator does from the ending's stream record.
    await due.store.pendingEvents.clearTaskEnded(await task(ending, due.store));
    const later = seconds(T0) + 10 * 86_400;

    await due.store.setDueAt(await task(moving, due.store), later);
    await due.store.setDueAt(endingTask, seconds(T0));

    expect(await due.store.dueTaskIds(later - 1, 50)).not.toContain(moving);
    expect(await due.store.dueTaskIds(later, 50)).toContain(moving);
    expect((await task(ending, due.store)).task_state).toBe('SUCCESS');
    expect(await due.store.dueTaskIds(later, 50)).not.toContain(ending);
  });

  it('requests a cancel on a ready task in progress, again if asked twice, and makes it due at once', async () => {
    const taskId = uniqueName('cancel');
    const { task: read } = await due.store.initialize(initializeRequest(taskId, 1), T0);
    const at = T0 + 60_000;

    const first = await due.store.requestCancel(read, at);
    const second = await due.store.requestCancel(read, at);

    expect([first, second]).toEqual([true, true]);
    expect(await task(taskId, due.store)).toMatchObject({
      cancel_requested: true,
      version: read.version + 2,
      task_state: 'PROGRESS',
    });
    expect(await due.store.dueTaskIds(seconds(at), 50)).toContain(taskId);
  });

  it('refuses a cancel for a task not ready or already ended', async () => {
    const [notReady, ended] = [uniqueName('cancel-early'), uniqueName('cancel-late')];
    const { task: early } = await due.store.initialize(initializeRequest(notReady, 1), T0, {
      mayContinue: () => false,
    });
    await due.store.initialize(initializeRequest(ended, 1), T0);
    await applyToTask(due.store, ended, [{ subtaskId: 'sub-00000', status: terminal('sub-00000') }]);
    await reconcileTask(due.store, ended, Date.now);

    const refused = [
      await due.store.requestCancel(early, T0),
      await due.store.requestCancel(await task(ended, due.store), T0),
    ];

    expect(refused).toEqual([false, false]);
    expect((await task(notReady, due.store)).cancel_requested).toBeUndefined();
    expect((await task(ended, due.store)).cancel_requested).toBeUndefined();
  });

  it('ends a task that never became ready FAILURE, INITIALIZE_INCOMPLETE, due only for its Task Ended', async () => {
    const [incomplete, ready] = [uniqueName('incomplete'), uniqueName('ready')];
    const { task: stuck } = await due.store.initialize(initializeRequest(incomplete, 2), T0, {
      mayContinue: () => false,
    });
    const { task: fine } = await due.store.initialize(initializeRequest(ready, 2), T0);
    const giveUp = T0 + SWEEPER.initializeGraceMinutes * 60_000;
    const dueBefore = await due.store.dueTaskIds(seconds(giveUp), 50);

    const ended = await due.store.endIncomplete(stuck, 'FAILURE', 'INITIALIZE_INCOMPLETE', giveUp);
    const notEnded = await due.store.endIncomplete(fine, 'FAILURE', 'INITIALIZE_INCOMPLETE', giveUp);

    expect(dueBefore).toContain(incomplete);
    expect([ended, notEnded]).toEqual([true, false]);
    expect(await task(incomplete, due.store)).toMatchObject({
      task_state: 'FAILURE',
      end_reason: 'INITIALIZE_INCOMPLETE',
      version: stuck.version + 1,
    });
    expect(await task(incomplete, due.store)).toMatchObject({ event_pending: true });
    expect(await due.store.dueTaskIds(seconds(giveUp) + SWEEPER.eventGraceSeconds, 50)).toContain(incomplete);
    await due.store.pendingEvents.clearTaskEnded(await task(incomplete, due.store));
    expect(await due.store.dueTaskIds(seconds(giveUp) + 86_400, 50)).not.toContain(incomplete);
    expect((await task(ready, due.store)).task_state).toBe('PROGRESS');
  });

  it('does not end an initialization that saved a page after the sweeper read it: it is still advancing', async () => {
    const taskId = uniqueName('advancing');
    const request = initializeRequest(taskId, 3);
    const { task: read } = await due.store.initialize(request, T0, onePage(1));
    const later = T0 + 60_000;
    await due.store.initialize(request, later, onePage(1));

    const ended = await due.store.endIncomplete(read, 'FAILURE', 'INITIALIZE_INCOMPLETE', later + 1_000);

    expect(ended).toBe(false);
    expect(await task(taskId, due.store)).toMatchObject({
      task_state: 'PROGRESS',
      init_written: 2,
      updated_at: new Date(later).toISOString(),
    });
  });
});

describe('stored statuses', () => {
  it('keeps a PROGRESS status with its counts, and its item keys where the task’s hash puts it', async () => {
    const taskId = uniqueName('stored');
    const { task: read } = await table.store.initialize(initializeRequest(taskId, 1), T0);
    const progress = status('sub-00000', { succeeded: 4, state: 'PROGRESS' });

    await apply(taskId, [progress]);

    const { Item } = await db.send(
      new GetCommand({
        TableName: table.tableName,
        Key: subtaskKey(taskId, subtaskShard(read, 'sub-00000'), 'sub-00000'),
        ConsistentRead: true,
      }),
    );
    expect(Item).toMatchObject({ status: progress, version: 1, generation: read.generation });
  });
});
