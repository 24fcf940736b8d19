/**
 * The fold's rules at its edges (DESIGN §2), each a way to lose or double a count, on DynamoDB Local and the
 * records its stream really carries.
 */

import { DynamoDBServiceException, InternalServerError, ThrottlingException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldBatch } from '../../lambdas/aggregator/fold-batch';
import { foldShard, reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { documentClient } from '../../lambdas/aws-clients';
import type { FoldResult } from '../../lambdas/core/fold';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import { subtaskShard, type TaskRecord } from '../../lambdas/core/task';
import { shardOf } from '../../lambdas/core/write-shards';
import type { Log } from '../../lambdas/log';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { EVENTS } from '../../lambdas/service-settings';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import {
  counterKey,
  shardPartition,
  subtaskKey,
  taskKey,
  taskPartition,
} from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { isTransient } from '../../lambdas/store/transient-errors';
import { capturingLog, runAppliers, SILENT_LOG } from '../support/applier-harness';
import { dynamoClient, newStatusQueues, newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, status, streamRecord, T0, terminal } from '../support/factories';
import {
  CollectingPublisher,
  type KillPoint,
  mortalStore,
  type StoreCall,
  StreamTap,
  sequenceNumberOf,
} from '../support/fold-harness';
import { StoreRecorder } from '../support/store-recorder';
import { seededRandom, subtaskIdsFor, workloadFor } from '../support/workload';

const recorder = new StoreRecorder();
let table: TestTable;
let tap: StreamTap;
/** The unmocked client that faulty ones pass their calls through to. */
let real: DynamoDBDocumentClient;
const events = new CollectingPublisher();

beforeAll(async () => {
  table = await newTaskTable(dynamoClient(), recorder);
  tap = new StreamTap(table.streamArn);
  real = documentClient(table.client);
});

afterAll(async () => {
  await tap.stop();
});

function fold(records: readonly DynamoDBRecord[], store: TaskStore = table.store, log: Log = SILENT_LOG) {
  return foldBatch(records, { store, events, log, now: Date.now });
}

/** A new task of `subtasks` numbered subtasks, initialized and ready. */
async function newTask(subtasks: number | readonly string[] = 2, label = 'task'): Promise<string> {
  const taskId = uniqueName(label);
  await table.store.initialize(initializeRequest(taskId, subtasks), T0);
  return taskId;
}

async function apply(taskId: string, statuses: readonly SubtaskStatus[], store: TaskStore = table.store) {
  return applyToTask(
    store,
    taskId,
    statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus })),
  );
}

async function task(taskId: string): Promise<TaskRecord> {
  const found = await table.store.getTask(taskId);
  if (found === undefined) throw new Error(`no task ${taskId}`);
  return found;
}

async function itemsOfPartition(partition: string): Promise<Record<string, unknown>[]> {
  const { Items } = await real.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': partition },
      ConsistentRead: true,
    }),
  );
  return Items ?? [];
}

async function counter(taskId: string, shard = 0) {
  const { Item } = await real.send(
    new GetCommand({ TableName: table.tableName, Key: counterKey(taskId, shard), ConsistentRead: true }),
  );
  return Item;
}

/** Statuses `SUCCESS` for every named subtask, with `succeeded` items each. */
function finished(ids: readonly string[], succeeded = 10): SubtaskStatus[] {
  return ids.map((id) => terminal(id, { succeeded }));
}

/** A store that runs `stage` once, just before the fold's first call of `method`: a race at an exact point. */
function storeWith(
  method: 'readShard' | 'writeFold',
  stage: (read: TaskRecord) => Promise<void>,
  db: DynamoDBDocumentClient = documentClient(table.client),
): TaskStore {
  let staged = false;
  const before = async (read: TaskRecord) => {
    if (staged) return;
    staged = true;
    await stage(read);
  };
  class StagedStore extends TaskStore {
    override async readShard(read: TaskRecord, shard: number) {
      if (method === 'readShard') await before(read);
      return super.readShard(read, shard);
    }
    override async writeFold(read: TaskRecord, result: FoldResult) {
      if (method === 'writeFold') await before(read);
      return super.writeFold(read, result);
    }
  }
  return new StagedStore(db, table.tableName);
}

/** A document client on DynamoDB Local whose calls `fault` may fail with an error instead of passing them on. */
function faultyClient(fault: (command: string, input: Record<string, unknown>) => Error | undefined) {
  const faulty = documentClient(table.client);
  const mock = mockClient(faulty);
  const check = (command: string, input: object) => {
    const error = fault(command, input as Record<string, unknown>);
    if (error !== undefined) throw error;
  };
  mock.on(GetCommand).callsFake(async (input: GetCommandInput) => {
    check('Get', input);
    return real.send(new GetCommand(input));
  });
  mock.on(PutCommand).callsFake(async (input: PutCommandInput) => {
    check('Put', input);
    return real.send(new PutCommand(input));
  });
  mock.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => {
    check('Update', input);
    return real.send(new UpdateCommand(input));
  });
  mock.on(BatchGetCommand).callsFake(async (input: BatchGetCommandInput) => {
    check('BatchGet', input);
    return real.send(new BatchGetCommand(input));
  });
  mock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => {
    check('Query', input);
    return real.send(new QueryCommand(input));
  });
  return { client: faulty, restore: () => mock.restore() };
}

function isSubtaskRecord(record: DynamoDBRecord): boolean {
  return record.dynamodb?.Keys?.sk?.S?.startsWith('SUB#') ?? false;
}

/** The partition a Query reads. */
function queriedPartition(input: Record<string, unknown>): unknown {
  return (input as QueryCommandInput).ExpressionAttributeValues?.[':pk'];
}

describe('a fold never creates an item', () => {
  it('writes nothing for a record of a task that does not exist: nothing to do', async () => {
    const taskId = uniqueName('absent');
    const key = subtaskKey(taskId, 0, 'sub-00000');
    // A stray subtask item with no task (its task was removed first), changed once: a real MODIFY record.
    await real.send(new PutCommand({ TableName: table.tableName, Item: { ...key, version: 0 } }));
    await real.send(new PutCommand({ TableName: table.tableName, Item: { ...key, version: 1 } }));
    const records = (await tap.next(taskId)).filter((record) => record.eventName === 'MODIFY');
    expect(records.every(isSubtaskRecord)).toBe(true);

    const { summary, resumeFrom } = await fold(records);

    expect(records).toHaveLength(1);
    expect(summary).toMatchObject({ shardsFolded: 0, nothingToDo: 1, countersWritten: 0, tasksWritten: 0 });
    expect(resumeFrom).toBeUndefined();
    expect(await itemsOfPartition(taskPartition(taskId))).toEqual([]);
  });

  it('writes nothing for a shard whose counter item is absent: the guarded writes find nothing to change', async () => {
    const taskId = await newTask(2, 'no-counter');
    await real.send(new DeleteCommand({ TableName: table.tableName, Key: counterKey(taskId, 0) }));
    await apply(taskId, finished(['sub-00000']));
    const before = await task(taskId);

    const outcome = await foldShard(table.store, taskId, 0, Date.now);

    expect(outcome).toEqual({ kind: 'folded', counterWritten: false, taskWritten: false });
    expect(await counter(taskId)).toBeUndefined();
    expect(await task(taskId)).toEqual(before);
  });

  it('folds nothing for a task that is not ready yet', async () => {
    const taskId = uniqueName('not-ready');
    await table.store.initialize(initializeRequest(taskId, 2), T0, { mayContinue: () => false });
    const before = await task(taskId);
    const record = streamRecord({
      eventName: 'MODIFY',
      pk: shardPartition(taskId, 0),
      sk: subtaskKey(taskId, 0, 'sub-00000').sk,
    });

    const { summary } = await fold([record]);

    expect(before.ready).toBe(false);
    expect(summary).toMatchObject({ shardsFolded: 0, nothingToDo: 1 });
    expect(await task(taskId)).toEqual(before);
    expect(await counter(taskId)).toMatchObject({ vsum: 0, done: 0 });
  });
});

describe('generations', () => {
  it('counts only the items of the generation read from the task item', async () => {
    const taskId = await newTask(['a', 'b'], 'regen');
    await apply(taskId, finished(['a', 'b'], 50));
    // TTL removed the task item first; the task is initialized again with a subtask set that overlaps.
    await real.send(new DeleteCommand({ TableName: table.tableName, Key: taskKey(taskId) }));
    await table.store.initialize(initializeRequest(taskId, ['a', 'c']), T0);
    await fold(await tap.next(taskId));
    const halfway = await task(taskId);

    await apply(taskId, finished(['a', 'c'], 7));
    await fold(await tap.next(taskId));

    // `b` still holds its old SUCCESS in the shard, of the old generation: never counted.
    expect(halfway).toMatchObject({
      task_state: 'PROGRESS',
      subtasks: { total: 2, succeeded: 0, failed: 0 },
    });
    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 2, succeeded: 2, failed: 0 },
      task_output: { attempted: 14, succeeded: 14 },
    });
  });

  it('ignores a fold that read the task before it was initialized again: nothing goes into the new one', async () => {
    const taskId = await newTask(['a', 'b'], 'replaced');
    await apply(taskId, finished(['a']));
    const records = await tap.next(taskId);
    const replacing = storeWith('readShard', async () => {
      await real.send(new DeleteCommand({ TableName: table.tableName, Key: taskKey(taskId) }));
      await table.store.initialize(initializeRequest(taskId, ['a', 'b']), T0 + 1_000);
    });

    const { summary } = await fold(records, replacing);

    const replaced = await task(taskId);
    expect(summary).toMatchObject({ countersWritten: 0, tasksWritten: 0, skipped: 0, retried: 0 });
    expect(replaced).toMatchObject({ version: 2, counters_vsum: 0, subtasks: { succeeded: 0 } });
    expect(await counter(taskId)).toMatchObject({ generation: replaced.generation, vsum: 0 });
  });
});

describe('removed subtask items', () => {
  it('counts a removed subtask as failed, LOST, once a recount is written', async () => {
    const taskId = await newTask(['a', 'b', 'c'], 'lost');
    await apply(taskId, [status('a', { succeeded: 3, state: 'PROGRESS' })]);
    await fold(await tap.next(taskId));
    const shard = subtaskShard(await task(taskId), 'a');

    // TTL (or an operator) removes a running subtask's item; the others finish.
    await real.send(new DeleteCommand({ TableName: table.tableName, Key: subtaskKey(taskId, shard, 'a') }));
    await apply(taskId, finished(['b', 'c']));
    await fold(await tap.next(taskId));

    expect(await counter(taskId)).toMatchObject({ lost: 1, done: 3, subtasks_failed: 1 });
    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 3, succeeded: 2, failed: 1 },
      task_output: { attempted: 20, succeeded: 20 },
    });
  });

  it('ends the task even when the removed item had more versions than the changes after its removal', async () => {
    const taskId = await newTask(['a', 'b'], 'lost-heavy');
    await apply(taskId, [status('a', { succeeded: 1, state: 'PROGRESS' })]);
    await apply(taskId, [status('a', { succeeded: 2, state: 'PROGRESS' })]);
    await apply(taskId, [status('a', { succeeded: 3, state: 'PROGRESS' })]);
    await apply(taskId, finished(['b']));
    await fold(await tap.next(taskId));
    const shard = subtaskShard(await task(taskId), 'a');

    // `a` (version 3) is removed; `b` (version 1) has already ended: the shard's version sum falls from 4 to 1.
    await real.send(new DeleteCommand({ TableName: table.tableName, Key: subtaskKey(taskId, shard, 'a') }));
    await fold(await tap.next(taskId));
    await reconcileTask(table.store, taskId, Date.now);

    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 2, succeeded: 1, failed: 1 },
    });
  });
});

describe('the filter', () => {
  it('folds nothing for initialize’s own records', async () => {
    const taskId = await newTask(3, 'inserts');
    recorder.clear();

    const { summary } = await fold(await tap.next(taskId));

    expect(summary).toMatchObject({ shardsFolded: 0, nothingToDo: 0 });
    expect(summary.records).toBeGreaterThan(3);
    expect(recorder.writes).toEqual([]);
  });

  it('never folds a task or counter record: folding the fold’s own writes writes nothing (no feedback loop)', async () => {
    const taskId = await newTask(3, 'feedback');
    await apply(taskId, [
      ...finished(['sub-00000']),
      status('sub-00001', { succeeded: 1, state: 'PROGRESS' }),
    ]);
    const first = await fold(await tap.next(taskId));
    const ownWrites = await tap.next(taskId);
    recorder.clear();

    const second = await fold(ownWrites);

    expect(first.summary).toMatchObject({ countersWritten: 1, tasksWritten: 1 });
    expect(ownWrites.map((record) => record.dynamodb?.Keys?.sk?.S).sort()).toEqual(['SHARD#0', 'TASK']);
    expect(second.summary).toMatchObject({ shardsFolded: 0, nothingToDo: 0, eventsPublished: 0 });
    expect(recorder.writes).toEqual([]);
    expect(await tap.next(taskId)).toEqual([]);
  });

  it('publishes Task Ended from the task’s own PROGRESS → ended record, with the same event id on every delivery', async () => {
    const taskId = await newTask(1, 'ended');
    await apply(taskId, finished(['sub-00000']));
    await fold(await tap.next(taskId));
    const ending = (await tap.next(taskId)).filter((record) => record.dynamodb?.Keys?.sk?.S === 'TASK');

    await fold(ending);
    await fold(ending);

    const published = events.of(taskId, EVENTS.taskEnded);
    expect(ending).toHaveLength(1);
    expect(published).toHaveLength(2);
    expect(published[0]?.detail).toMatchObject({ task_id: taskId, task_state: 'SUCCESS' });
    expect(published[1]?.detail.event_id).toBe(published[0]?.detail.event_id);
  });
});

describe('failures', () => {
  const TRANSIENT: Record<string, () => Error> = {
    ThrottlingException: () => new ThrottlingException({ message: 'slow down', $metadata: {} }),
    InternalServerError: () =>
      new InternalServerError({ message: 'oops', $metadata: { httpStatusCode: 500 } }),
  };

  it.each(Object.keys(TRANSIENT))(
    'reports a %s as resumeFrom: the lowest SequenceNumber of a record whose fold did not commit',
    async (name) => {
      const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((label) => newTask(1, `${name}-${label}`)));
      if (a === undefined || b === undefined || c === undefined) throw new Error('three tasks');
      for (const taskId of [a, b, c]) await apply(taskId, finished(['sub-00000']));
      const records = [...(await tap.next(a)), ...(await tap.next(b)), ...(await tap.next(c))].filter(
        (record) => record.eventName === 'MODIFY' && isSubtaskRecord(record),
      );
      // Fold records of `a`, `c`, `b` in that order; `c` and `b` fail, so the batch resumes from `c`'s record.
      const batch = [records[0], records[2], records[1]].filter((r): r is DynamoDBRecord => r !== undefined);
      const failing = new Set([shardPartition(b, 0), shardPartition(c, 0)]);
      const faulty = faultyClient((command, input) =>
        command === 'Query' && failing.has(String(queriedPartition(input))) ? TRANSIENT[name]?.() : undefined,
      );

      const first = await fold(batch, new TaskStore(faulty.client, table.tableName));
      faulty.restore();
      const from = batch.findIndex((record) => sequenceNumberOf(record) === first.resumeFrom);
      const second = await fold(batch.slice(from));

      expect(batch).toHaveLength(3);
      expect(first.resumeFrom).toBe(sequenceNumberOf(batch[1] as DynamoDBRecord));
      expect(first.summary).toMatchObject({ retried: 2, skipped: 0, shardsFolded: 1 });
      expect(second.resumeFrom).toBeUndefined();
      for (const taskId of [a, b, c]) {
        expect(await task(taskId)).toMatchObject({ task_state: 'SUCCESS', subtasks: { succeeded: 1 } });
      }
    },
  );

  it('skips and counts a non-transient failure, logs it with the record’s keys, and a later recount repairs it', async () => {
    const taskId = await newTask(2, 'poison');
    await apply(taskId, finished(['sub-00000']));
    const records = await tap.next(taskId);
    const validation = new DynamoDBServiceException({
      name: 'ValidationException',
      $fault: 'client',
      message: 'One or more parameter values were invalid',
      $metadata: { httpStatusCode: 400 },
    });
    const faulty = faultyClient((command, input) =>
      command === 'Query' && queriedPartition(input) === shardPartition(taskId, 0) ? validation : undefined,
    );
    const { log, lines } = capturingLog();

    const first = await fold(records, new TaskStore(faulty.client, table.tableName), log);
    faulty.restore();
    const skipped = await task(taskId);
    await apply(taskId, finished(['sub-00001']));
    await fold(await tap.next(taskId));

    expect(first.resumeFrom).toBeUndefined();
    expect(first.summary).toMatchObject({ skipped: 1, retried: 0, shardsFolded: 0 });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'error',
        attributes: expect.objectContaining({ taskId, shard: 0, errorCode: 'ValidationException' }),
      }),
    );
    expect(skipped).toMatchObject({ version: 2, subtasks: { succeeded: 0 } });
    expect(await task(taskId)).toMatchObject({ task_state: 'SUCCESS', subtasks: { succeeded: 2 } });
  });
});

describe('the task version', () => {
  it('moves with every fold write, so the ETag moves with the counts; a fold that changes nothing leaves it', async () => {
    const taskId = await newTask(2, 'etag');
    const versions = [(await task(taskId)).version];
    const written: number[] = [];
    for (const next of [
      status('sub-00000', { succeeded: 1, state: 'PROGRESS' }),
      status('sub-00000', { succeeded: 2, state: 'PROGRESS' }),
      terminal('sub-00000'),
    ]) {
      await apply(taskId, [next]);
      const records = await tap.next(taskId);
      written.push((await fold(records)).summary.tasksWritten);
      versions.push((await task(taskId)).version);
      // The same records again: nothing new to count, nothing written.
      written.push((await fold(records)).summary.tasksWritten);
      versions.push((await task(taskId)).version);
    }

    expect(written).toEqual([1, 0, 1, 0, 1, 0]);
    expect(versions).toEqual([2, 3, 3, 4, 4, 5, 5]);
    expect(await task(taskId)).toMatchObject({
      in_flight: { attempted: 0 },
      task_output: { succeeded: 100 },
    });
  });
});

describe('one refresh per task per batch', () => {
  /** One subtask id in each of `shards` write shards: the first of `sub-NNNNN` that hashes there. */
  function onePerShard(shards: number): string[] {
    const ids = new Map<number, string>();
    for (let n = 0; ids.size < shards; n++) {
      const id = `sub-${String(n).padStart(5, '0')}`;
      const shard = shardOf(id, shards);
      if (!ids.has(shard)) ids.set(shard, id);
    }
    return [...ids.values()];
  }

  /** A document client on DynamoDB Local that counts the UpdateItem calls it sends for the item `key`. */
  function countingUpdates(key: Record<string, string>) {
    const client = dynamoClient();
    let updates = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        // Before or after the document client's marshalling: a key attribute is `'x'` or `{ S: 'x' }`.
        const sent = (args.input as { Key?: Record<string, unknown> }).Key ?? {};
        const sameItem = Object.entries(key).every(([name, value]) => {
          const attribute = sent[name];
          return attribute === value || (attribute as { S?: unknown } | undefined)?.S === value;
        });
        if (context.commandName === 'UpdateItemCommand' && sameItem) updates++;
        return next(args);
      },
      { step: 'initialize', name: 'countTaskUpdates' },
    );
    return { client: documentClient(client), updates: () => updates };
  }

  it('makes one task write attempt for a batch that touches 100 shards of one task, and the totals are exact', async () => {
    const ids = onePerShard(100);
    const taskId = uniqueName('hundred');
    await table.store.initialize(initializeRequest(taskId, ids), T0, { writeShards: 100 });
    await apply(taskId, finished(ids, 3));
    const records = await tap.next(taskId);
    const counting = countingUpdates(taskKey(taskId));

    const { summary } = await fold(records, new TaskStore(counting.client, table.tableName));

    const shardsTouched = new Set(
      records
        .filter((record) => record.eventName === 'MODIFY' && isSubtaskRecord(record))
        .map((record) => record.dynamodb?.Keys?.pk?.S),
    );
    expect(shardsTouched.size).toBe(100);
    expect(counting.updates()).toBe(1);
    expect(summary).toMatchObject({ shardsFolded: 100, countersWritten: 100, tasksWritten: 1, retried: 0 });
    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 100, succeeded: 100, failed: 0 },
      task_output: { attempted: 300, succeeded: 300, failed: 0 },
    });
  });

  it('takes newer totals already stored as done: no second attempt, no retry', async () => {
    const taskId = await newTask(2, 'newer-totals');
    await apply(taskId, finished(['sub-00000']));
    const records = await tap.next(taskId);
    // Another fold writes the same totals between this fold's read of the counters and its task write.
    const counting = countingUpdates(taskKey(taskId));
    const racing = storeWith(
      'writeFold',
      async () => {
        await foldShard(table.store, taskId, 0, Date.now);
      },
      counting.client,
    );

    const { summary, resumeFrom } = await fold(records, racing);

    expect(counting.updates()).toBe(1);
    expect(resumeFrom).toBeUndefined();
    expect(summary).toMatchObject({ tasksWritten: 0, retried: 0, skipped: 0 });
    expect(await task(taskId)).toMatchObject({ subtasks: { succeeded: 1 }, version: 3 });
  });
});

describe('the ending', () => {
  it('ends CANCELED when a cancel lands between the fold’s read and its ending write', async () => {
    const taskId = await newTask(1, 'cancel-race');
    await apply(taskId, finished(['sub-00000']));
    const canceling = storeWith('writeFold', async (read) => {
      await table.store.requestCancel(read, Date.now());
    });

    const { summary } = await fold(await tap.next(taskId), canceling);

    expect(summary).toMatchObject({ tasksWritten: 1, retried: 0, skipped: 0 });
    expect(await task(taskId)).toMatchObject({ task_state: 'CANCELED', cancel_requested: true });
  });

  it('takes a failed condition on the ending write as success: another fold ended the task', async () => {
    const taskId = await newTask(1, 'end-race');
    await apply(taskId, finished(['sub-00000']));
    const racing = storeWith('writeFold', async () => {
      await foldShard(table.store, taskId, 0, Date.now);
    });

    const { summary, resumeFrom } = await fold(await tap.next(taskId), racing);

    expect(resumeFrom).toBeUndefined();
    expect(summary).toMatchObject({ shardsFolded: 1, tasksWritten: 0, retried: 0, skipped: 0 });
    // Ready (2), then one ending write: the losing fold wrote nothing.
    expect(await task(taskId)).toMatchObject({ task_state: 'SUCCESS', version: 3 });
  });
});

describe('repairs', () => {
  it('reconcileTask repairs a task whose stream records were never folded', async () => {
    const ids = subtaskIdsFor(30);
    const taskId = await newTask(ids, 'unfolded');
    await apply(taskId, finished(ids, 4));
    await tap.next(taskId);

    const outcome = await reconcileTask(table.store, taskId, Date.now);

    expect(outcome).toEqual({ kind: 'folded', counterWritten: true, taskWritten: true });
    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 30, succeeded: 30, failed: 0 },
      task_output: { attempted: 120, succeeded: 120 },
    });
  });

  it('ends exact when many recounts of one shard race each other while appliers write', {
    timeout: 300_000,
  }, async () => {
    const queues = await newStatusQueues();
    const deadLetters = new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl);
    const ids = subtaskIdsFor(100);
    const taskId = await newTask(ids, 'racing-recounts');
    const random = seededRandom(11);
    const workload = workloadFor(
      taskId,
      ids,
      { duplicateShare: 0.1, minProgressSteps: 0, maxProgressSteps: 2 },
      random,
    );
    let applying = true;
    let folds = 0;
    let retried = 0;
    /** One fold as the event source runs it: a transient failure (conflicts outlasting the attempts) comes again. */
    const foldUntilDone = async () => {
      for (;;) {
        try {
          await foldShard(table.store, taskId, 0, Date.now);
          folds++;
          return;
        } catch (error) {
          if (!isTransient(error)) throw error;
          retried++;
        }
      }
    };
    const recount = async () => {
      while (applying) await foldUntilDone();
      // The stream's records of the last changes: every loop folds once more after them.
      await foldUntilDone();
    };

    const recounts = Array.from({ length: 4 }, recount);
    await runAppliers({
      store: table.store,
      deadLetters,
      bodies: workload.deliveries.map((delivery) => delivery.body),
      appliers: 4,
      batchSize: 10,
      random,
    });
    applying = false;
    await Promise.all(recounts);

    const { expected } = workload;
    expect(folds).toBeGreaterThan(4);
    console.info(`racing recounts: ${folds} folds, ${retried} gave up on a moving task and came again`);
    expect(await task(taskId)).toMatchObject({
      task_state: expected.subtasksFailed === expected.subtasks ? 'FAILURE' : 'SUCCESS',
      subtasks: { total: 100, succeeded: expected.subtasksSucceeded, failed: expected.subtasksFailed },
      task_output: {
        attempted: expected.attempted,
        succeeded: expected.succeeded,
        failed: expected.failed,
        skipped: expected.skipped,
      },
    });
  });
});

describe('kill points in the aggregator', () => {
  const KILLS: Record<string, ((call: StoreCall) => KillPoint | undefined) | undefined> = {
    'before the recount': (call) => (call.method === 'readShard' ? 'before' : undefined),
    'between the counter write and the task write': (call) =>
      call.method === 'writeCounter' ? 'after' : undefined,
    'after the writes, before the response': undefined,
  };

  it.each(Object.keys(KILLS))('ends exact when a batch killed %s is delivered again', async (point) => {
    const ids = subtaskIdsFor(5);
    const taskId = await newTask(ids, 'killed');
    await apply(taskId, finished(ids, 3));
    const records = await tap.next(taskId);
    const killAt = KILLS[point];

    if (killAt === undefined) {
      await fold(records); // its response is lost: Lambda delivers the batch again
    } else {
      const mortal = mortalStore(table.store, killAt);
      void fold(records, mortal.store);
      await mortal.died;
      await Promise.all(mortal.inFlight);
    }
    const afterKill = { task: await task(taskId), counter: await counter(taskId) };
    const again = await fold(records);

    const expectedAfterKill = {
      'before the recount': { state: 'PROGRESS', counterVsum: 0, taskVsum: 0 },
      'between the counter write and the task write': { state: 'PROGRESS', counterVsum: 5, taskVsum: 0 },
      'after the writes, before the response': { state: 'SUCCESS', counterVsum: 5, taskVsum: 5 },
    }[point];
    expect({
      state: afterKill.task.task_state,
      counterVsum: afterKill.counter?.vsum,
      taskVsum: afterKill.task.counters_vsum,
    }).toEqual(expectedAfterKill);
    expect(again.resumeFrom).toBeUndefined();
    expect(await task(taskId)).toMatchObject({
      task_state: 'SUCCESS',
      counters_vsum: 5,
      subtasks: { total: 5, succeeded: 5, failed: 0 },
      task_output: { attempted: 15, succeeded: 15 },
    });
  });
});
