/**
 * What Lambda's stream event source may do to the aggregator, on the table's real stream: deliver a batch again
 * (a retry, a partial batch response), split it (bisect on error), run batches of several stream shards, or
 * several batches of one shard, at once and in any order, and lose records (24-hour retention, an on-failure
 * destination). The fold recounts shards from their items under monotonic `vsum` guards, so none of it may
 * lose or double a count, and totals may only move forward.
 */

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { foldShard, reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { applyBatch } from '../../lambdas/applier/apply-batch';
import { documentClient } from '../../lambdas/aws-clients';
import type { ShardCounter, SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { TaskStore } from '../../lambdas/store/task-store';
import { startStreamPoller } from '../../local/stream-poller';
import { SILENT_LOG } from '../support/applier-harness';
import { newStatusQueues, newTaskTable, streamsClient, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, messageBody, subtaskIds, T0, terminal } from '../support/factories';
import { roleDynamoClient, roleSqsClient, roleStore } from '../support/role-gateways';
import { seededRandom, shuffle } from '../support/workload';
import {
  aggregatorHandler,
  auditTasks,
  type Delivery,
  deliveriesOf,
  expectExact,
  foldGap,
  foldUntilDone,
  RecordingPublisher,
  receiveBatch,
  reportFigures,
  SEED,
  StreamTap,
  sameTotals,
  startWorkloads,
} from './support';

let table: TestTable;
let tap: StreamTap;
let deadLetters: DeadLetterQueue;
let applierStore: TaskStore;
let aggregatorStore: TaskStore;
let aggregatorClient: DynamoDBClient;

beforeAll(async () => {
  const [created, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  table = created;
  tap = new StreamTap(streamsClient(), table.streamArn);
  // The functions under test call the table through their synthesized roles; arranging and auditing do not.
  [applierStore, aggregatorStore, aggregatorClient] = await Promise.all([
    roleStore('applier', table, queues),
    roleStore('aggregator', table),
    roleDynamoClient('aggregator', table),
  ]);
  deadLetters = new DeadLetterQueue(await roleSqsClient('applier', table, queues), queues.deadLetterQueueUrl);
});

async function apply(deliveries: readonly Delivery[]): Promise<void> {
  const { retry } = await applyBatch(deliveries, {
    store: applierStore,
    deadLetters,
    log: SILENT_LOG,
    receiveLimit: 1_000,
  });
  expect(retry).toEqual([]);
}

function fold(records: readonly DynamoDBRecord[], store: TaskStore = aggregatorStore) {
  return foldUntilDone(records, { store, events: new RecordingPublisher(), now: Date.now });
}

/** DynamoDB puts an item's records in one stream shard, chosen by its key: here a hash of the key. */
function streamShardOf(record: DynamoDBRecord, shards: number): number {
  const key = `${record.dynamodb?.Keys?.pk?.S}|${record.dynamodb?.Keys?.sk?.S}`;
  let hash = 0;
  for (const char of key) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % shards;
}

async function exact(taskId: string): Promise<boolean> {
  const { shown, expected } = await foldGap(table.store, taskId);
  return sameTotals(shown, expected);
}

describe('the fold on a real stream', () => {
  it('replays, bisected halves and stale batches delivered late change nothing and lose nothing', async () => {
    const random = seededRandom(SEED + 200);
    await tap.read();
    const workloads = await startWorkloads(
      table.store,
      [8, 6],
      { duplicateShare: 0.2, minProgressSteps: 1, maxProgressSteps: 3 },
      random,
      'replays',
    );
    const taskIds = workloads.tasks.map((task) => task.taskId);
    const pool = deliveriesOf(workloads.bodies, 'replays');
    const delivered: DynamoDBRecord[][] = [];
    const figures = {
      batches: 0,
      replays: 0,
      replaysThatWrote: 0,
      halves: 0,
      versionsBackwards: 0,
    };
    const versions = async () =>
      Promise.all(taskIds.map(async (id) => (await table.store.getTask(id)) as TaskRecord));

    while (pool.length > 0) {
      await apply(receiveBatch(pool, 1 + Math.floor(random() * 6)));
      const records = await tap.read();
      const before = await versions();
      // The new batch, bisected half the time (each half on its own, first half first).
      if (records.length > 1 && random() < 0.5) {
        const half = Math.ceil(records.length / 2);
        await fold(records.slice(0, half));
        await fold(records.slice(half));
        figures.halves += 2;
      } else {
        await fold(records);
      }
      figures.batches += 1;
      delivered.push(records);
      const folded = await versions();
      // Then batches delivered before, again, whole or a half, in random order: retries and late duplicates.
      for (const old of shuffle(delivered, random).slice(0, 3)) {
        const part = random() < 0.5 ? old : old.slice(Math.floor(old.length / 2));
        await fold(part);
        figures.replays += 1;
        const after = await versions();
        if (after.some((task, index) => task.version !== folded[index]?.version))
          figures.replaysThatWrote += 1;
      }
      const after = await versions();
      for (const [index, task] of after.entries()) {
        if (
          task.version < (before[index]?.version ?? 0) ||
          task.counters_vsum < (before[index]?.counters_vsum ?? 0)
        )
          figures.versionsBackwards += 1;
      }
      for (const taskId of taskIds) expect(await exact(taskId)).toBe(true);
    }
    // The fold's own writes: they make no work, and no batch of them changes anything.
    const own = await tap.read();
    const ended = await versions();
    await fold(own);
    await fold(own);

    expect(figures.replaysThatWrote).toBe(0);
    expect(figures.versionsBackwards).toBe(0);
    expect((await versions()).map((task) => task.version)).toEqual(ended.map((task) => task.version));
    expectExact(await auditTasks(table.store, workloads.tasks, { reconcile: false }));
    reportFigures('fold replays', { seed: SEED, statusesSent: workloads.statusesSent, ...figures });
  });

  it('drops an older recount, and older totals, that land after newer ones (the vsum guards)', async () => {
    await tap.read();
    const taskId = uniqueName('guards');
    const ids = subtaskIds(4);
    await table.store.initialize(initializeRequest(taskId, ids), T0);
    const deliver = (index: number) =>
      apply([
        {
          messageId: `g${index}`,
          body: messageBody(taskId, terminal(ids[index] ?? '', { succeeded: 10 + index })),
          receiveCount: 1,
        },
      ]);

    /** A store whose fold stops after the named read until released: a slow aggregator invocation. */
    class SlowFold extends TaskStore {
      counterWrites: boolean[] = [];
      taskWrites: boolean[] = [];
      private release: () => void = () => undefined;
      readonly paused: Promise<void>;
      private resume: Promise<void>;
      private signalPaused: () => void = () => undefined;
      constructor(private readonly after: 'readShard' | 'getCounters') {
        super(documentClient(aggregatorClient), table.tableName);
        this.paused = new Promise((resolve) => {
          this.signalPaused = resolve;
        });
        this.resume = new Promise((resolve) => {
          this.release = resolve;
        });
      }
      go(): void {
        this.release();
      }
      private async hold(): Promise<void> {
        this.signalPaused();
        await this.resume;
        this.resume = Promise.resolve();
      }
      override async readShard(task: TaskRecord, shard: number): Promise<SubtaskRecord[]> {
        const items = await super.readShard(task, shard);
        if (this.after === 'readShard') await this.hold();
        return items;
      }
      override async getCounters(task: TaskRecord): Promise<ShardCounter[]> {
        const counters = await super.getCounters(task);
        if (this.after === 'getCounters') await this.hold();
        return counters;
      }
      override async writeCounter(counter: ShardCounter): Promise<boolean> {
        const written = await super.writeCounter(counter);
        this.counterWrites.push(written);
        return written;
      }
      override async writeFold(...args: Parameters<TaskStore['writeFold']>): Promise<boolean> {
        const written = await super.writeFold(...args);
        this.taskWrites.push(written);
        return written;
      }
    }

    // An older recount: fold A reads the shard, a status comes in and fold B counts it; then A writes.
    await deliver(0);
    const slowRecount = new SlowFold('readShard');
    const a = foldShard(slowRecount, taskId, 0, Date.now);
    await slowRecount.paused;
    await deliver(1);
    await foldShard(aggregatorStore, taskId, 0, Date.now);
    const newer = await table.store.getTask(taskId);
    slowRecount.go();
    await a;
    const afterOlderRecount = await table.store.getTask(taskId);

    // Older totals: fold C sums the counters, a status comes in and fold D writes newer totals; then C writes.
    await deliver(2);
    const slowTotals = new SlowFold('getCounters');
    const c = foldShard(slowTotals, taskId, 0, Date.now);
    await slowTotals.paused;
    await deliver(3);
    await foldShard(aggregatorStore, taskId, 0, Date.now);
    const newest = await table.store.getTask(taskId);
    slowTotals.go();
    await c;
    const afterOlderTotals = await table.store.getTask(taskId);

    // A's recount (one status) lost to B's (two): dropped, and the task keeps B's totals.
    expect(slowRecount.counterWrites).toEqual([false]);
    expect(afterOlderRecount).toEqual(newer);
    expect(newer?.subtasks.succeeded).toBe(2);
    // C's totals (three statuses) lost to D's (four): its write failed its condition, and the task ended with D.
    expect(slowTotals.counterWrites).toEqual([true]);
    expect(slowTotals.taskWrites).toEqual([false]);
    expect(afterOlderTotals).toEqual(newest);
    expect(newest?.task_state).toBe('SUCCESS');
    expect(await exact(taskId)).toBe(true);
  });

  it('folds a task of two write shards exactly from two stream shards, two batches of each at a time', async () => {
    const random = seededRandom(SEED + 300);
    await tap.read();
    const taskId = uniqueName('wide');
    const ids = subtaskIds(200);
    await table.store.initialize(initializeRequest(taskId, ids), T0, { writeShards: 2 });
    const chosen = shuffle(ids, random).slice(0, 40);
    const statuses = chosen.flatMap((subtaskId) =>
      random() < 0.5
        ? [terminal(subtaskId, { succeeded: 5, failed: 1 })]
        : [terminal(subtaskId, { succeeded: 2, state: 'PROGRESS' }), terminal(subtaskId, { succeeded: 7 })],
    );
    const deliveries = shuffle(
      statuses.map((status, index) => ({
        messageId: `w${index}`,
        body: messageBody(taskId, status),
        receiveCount: 1,
      })),
      random,
    );
    for (let start = 0; start < deliveries.length; start += 25)
      await apply(deliveries.slice(start, start + 25));
    const records = await tap.read();

    // Two stream shards, each keeping one item's records in order; two batches of each folded at once.
    const streamShards = [0, 1].map((shard) =>
      records.filter((record) => streamShardOf(record, 2) === shard),
    );
    let batches = 0;
    await Promise.all(
      streamShards.flatMap((shardRecords) => {
        const chunks: DynamoDBRecord[][] = [];
        for (let start = 0; start < shardRecords.length; ) {
          const size = 1 + Math.floor(random() * 40);
          chunks.push(shardRecords.slice(start, start + size));
          start += size;
        }
        batches += chunks.length;
        // Parallelization factor 2: odd and even batches of the stream shard run side by side.
        return [0, 1].map(async (lane) => {
          for (const chunk of chunks.filter((_, index) => index % 2 === lane)) await fold(chunk);
        });
      }),
    );
    const task = (await table.store.getTask(taskId)) as TaskRecord;
    const counters = await table.store.getCounters(task);

    expect(task.write_shards).toBe(2);
    expect(counters.map((counter) => counter.done).every((done) => done > 0)).toBe(true);
    expect(await exact(taskId)).toBe(true);
    expect(task.subtasks.succeeded + task.subtasks.failed).toBe(chosen.length);
    reportFigures('two stream shards', {
      seed: SEED,
      subtasks: ids.length,
      statuses: statuses.length,
      records: records.length,
      batches,
      streamShards: streamShards.map((shard) => shard.length).join('/'),
    });
  });

  it('heals lost stream records at the shard’s next change, and the last lost ones by a reconcile', async () => {
    await tap.read();
    const taskId = uniqueName('lost-records');
    const ids = subtaskIds(3);
    await table.store.initialize(initializeRequest(taskId, ids), T0);
    const deliver = (index: number) =>
      apply([
        { messageId: `l${index}`, body: messageBody(taskId, terminal(ids[index] ?? '')), receiveCount: 1 },
      ]);

    await deliver(0);
    const lostFirst = await tap.read();
    await deliver(1);
    await fold(await tap.read());
    const healedByNextChange = await exact(taskId);
    await deliver(2);
    const lostLast = await tap.read();
    const staleAfterLoss = await table.store.getTask(taskId);
    const exactBeforeReconcile = await exact(taskId);
    await reconcileTask(aggregatorStore, taskId, Date.now);

    expect(lostFirst.length).toBeGreaterThan(0);
    expect(lostLast.length).toBeGreaterThan(0);
    expect(healedByNextChange).toBe(true);
    expect(exactBeforeReconcile).toBe(false);
    expect(staleAfterLoss?.task_state).toBe('PROGRESS');
    expect(await exact(taskId)).toBe(true);
    expect((await table.store.getTask(taskId))?.task_state).toBe('SUCCESS');
  });

  /**
   * `local/stream-poller.ts` stands in for Lambda's event source on the local stack (`npm start`) and in other
   * test folders. Every record the fold is handed there goes through it, a task item's first: DynamoDB Local
   * writes the empty `options` map of a task created without options as `{}` (no type), which Lambda would
   * deliver as `{"M":{}}`.
   */
  it('reaches the fold through the local stream event source, task items included', async () => {
    // A table of its own: the poller reads its stream from the start.
    const own = await newTaskTable();
    const taskId = uniqueName('local-poller');
    await own.store.initialize(initializeRequest(taskId, 2), T0);
    const { retry } = await applyBatch(
      subtaskIds(2).map((subtaskId, index) => ({
        messageId: `p${index}`,
        body: messageBody(taskId, terminal(subtaskId)),
        receiveCount: 1,
      })),
      { store: await roleStore('applier', own), deadLetters, log: SILENT_LOG, receiveLimit: 1_000 },
    );
    const errors: string[] = [];
    const handler = aggregatorHandler({
      store: await roleStore('aggregator', own),
      events: new RecordingPublisher(),
      now: Date.now,
    });
    const poller = startStreamPoller({
      streams: streamsClient(),
      streamArn: own.streamArn,
      region: 'us-east-1',
      batchingWindowMs: 0,
      handler: async (event, context) => (await handler(event, context)) as DynamoDBBatchResponse,
      onError: (error) => errors.push(String(error)),
    });
    const outcome = await Promise.race([
      poller.caughtUp().then(() => 'caught up'),
      new Promise((resolve) => setTimeout(() => resolve('stalled'), 5_000)),
    ]);
    await poller.stop();
    const { shown, expected } = await foldGap(own.store, taskId);

    expect(retry).toEqual([]);
    expect(errors.slice(0, 1)).toEqual([]);
    expect(outcome).toBe('caught up');
    expect(shown).toEqual(expected);
    expect(shown.task_state).toBe('SUCCESS');
  });
});
