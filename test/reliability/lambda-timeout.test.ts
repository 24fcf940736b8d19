/**
 * A Lambda that runs short of time mid-batch: below the reserve the applier keeps (`minRemainingMs`, 1 s by
 * default) it starts no further attempt, reports every unfinished record for redelivery and lets the finished
 * ones go. A task's records come back whole even when some of its subtask writes went through before time ran
 * out: those must count once when redelivered. Time here is virtual: it passes only as the store works or the
 * applier waits, so runs replay exactly.
 */

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyBatch } from '../../lambdas/applier/apply-batch';
import { documentClient } from '../../lambdas/aws-clients';
import { parseStatusMessage } from '../../lambdas/core/status-message';
import {
  createSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  sameStatus,
} from '../../lambdas/core/subtask-status';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { TaskStore } from '../../lambdas/store/task-store';
import { SILENT_LOG } from '../support/applier-harness';
import { newStatusQueues, newTaskTable, type TestQueues, type TestTable, uniqueName } from '../support/aws';
import {
  initializeRequest,
  lambdaContext,
  messageBody,
  subtaskIds,
  T0,
  terminal,
} from '../support/factories';
import { roleDynamoClient, roleSqsClient, roleStore } from '../support/role-gateways';
import { seededRandom } from '../support/workload';
import {
  type Audit,
  allSubtasks,
  applierHandler,
  auditTasks,
  type Delivery,
  expectExact,
  failedDeliveries,
  queueDepth,
  receiveBatch,
  redeliver,
  reportFigures,
  SEED,
  sqsEventOf,
  startWorkloads,
  sumAudits,
} from './support';

/** The applier's default reserve: below it, no read-judge-write cycle is started. */
const RESERVE_MS = 1_000;

let table: TestTable;
let queues: TestQueues;
let deadLetters: DeadLetterQueue;
let applierClient: DynamoDBClient;
let applierStore: TaskStore;

beforeAll(async () => {
  [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  // The applier under test calls the table and the queue through its synthesized role.
  [applierClient, applierStore] = await Promise.all([
    roleDynamoClient('applier', table, queues),
    roleStore('applier', table, queues),
  ]);
  deadLetters = new DeadLetterQueue(await roleSqsClient('applier', table, queues), queues.deadLetterQueueUrl);
});

/** One invocation's clock: `budgetMs` to start with, spent by store calls and backoff waits. */
class InvocationClock {
  private spentMs = 0;
  constructor(private readonly budgetMs: number) {}
  remaining(): number {
    return this.budgetMs - this.spentMs;
  }
  spend(ms: number): void {
    this.spentMs += ms;
  }
}

/**
 * A store on DynamoDB Local whose every call costs `callMs` of the invocation's time, calls made side by side
 * included (a pessimistic clock). It notes the time left whenever a read-judge-write cycle starts (the subtask
 * read), and which subtask writes went through.
 */
class SlowTaskStore extends TaskStore {
  readonly cycleStarts: number[] = [];
  /** `task/subtask` of every subtask write that was taken. */
  readonly written = new Set<string>();

  constructor(
    private readonly clock: InvocationClock,
    private readonly callMs: number,
    /** Runs once the subtasks of a cycle were read, before its writes: a concurrent writer's chance. */
    private readonly afterRead: () => Promise<void> = async () => undefined,
  ) {
    super(documentClient(applierClient), table.tableName);
  }

  private async timed<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } finally {
      this.clock.spend(this.callMs);
    }
  }

  override getTask(taskId: string): Promise<TaskRecord | undefined> {
    return this.timed(super.getTask(taskId));
  }

  override async getSubtasks(task: TaskRecord, ids: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    this.cycleStarts.push(this.clock.remaining());
    const found = await this.timed(super.getSubtasks(task, ids));
    await this.afterRead();
    return found;
  }

  override async writeSubtask(
    task: TaskRecord,
    subtask: SubtaskRecord,
    expectedVersion: number,
  ): Promise<boolean> {
    const taken = await this.timed(super.writeSubtask(task, subtask, expectedVersion));
    if (taken) this.written.add(`${task.task_id}/${subtask.subtask_id}`);
    return taken;
  }
}

const applyOptionsFor = (clock: InvocationClock) => ({
  remainingTimeMs: () => clock.remaining(),
  // Backoff waits spend the invocation's time too, without making the test wait.
  sleep: async (ms: number) => {
    clock.spend(ms);
    await nextTurn();
  },
});

interface Invocation {
  /** Deliveries reported as batch item failures, for SQS to deliver again. */
  readonly unfinished: Delivery[];
  readonly cycleStarts: readonly number[];
  readonly written: ReadonlySet<string>;
}

/** Runs `batch` through the Lambda edge with `budgetMs` left on the clock and every store call costing `callMs`. */
async function invoke(batch: readonly Delivery[], budgetMs: number, callMs: number): Promise<Invocation> {
  const clock = new InvocationClock(budgetMs);
  const store = new SlowTaskStore(clock, callMs);
  const handler = applierHandler({
    store,
    deadLetters,
    // Running out of time is transient; this test keeps every delivery of it on the source queue.
    receiveLimit: Number.POSITIVE_INFINITY,
    applyOptions: applyOptionsFor(clock),
  });
  const context = { ...lambdaContext(), getRemainingTimeInMillis: () => clock.remaining() };
  const response = await handler(sqsEventOf(batch), context);
  return {
    unfinished: failedDeliveries(batch, response),
    cycleStarts: store.cycleStarts,
    written: store.written,
  };
}

/** Deliveries reported finished whose terminal status is not what the store now holds: lost if any. */
async function droppedTerminals(finished: readonly Delivery[]): Promise<Delivery[]> {
  const dropped: Delivery[] = [];
  for (const delivery of finished) {
    const { taskId, subtaskId, status } = parseStatusMessage(delivery.body);
    if (!isTerminalState(status.state)) continue;
    const task = (await table.store.getTask(taskId)) as TaskRecord;
    const stored = (await table.store.getSubtasks(task, [subtaskId])).get(subtaskId);
    if (stored === undefined || !sameStatus(stored.status, status)) dropped.push(delivery);
  }
  return dropped;
}

describe('an applier running out of Lambda time', () => {
  it('hands back a task whose time ran out after some of its subtask writes, and counts those once on redelivery', async () => {
    const taskId = uniqueName('partial');
    const ids = subtaskIds(10);
    await table.store.initialize(initializeRequest(taskId, ids), T0);
    const finals = ids.map((id) => terminal(id, { succeeded: 20, failed: 1 }));
    const progress = ids
      .slice(0, 3)
      .map((id) => createSubtaskStatus(id, { succeeded: 4, state: 'PROGRESS' }));
    const batch = finals.map((status, index) => ({
      messageId: `partial-${index}`,
      body: messageBody(taskId, status),
      receiveCount: 1,
    }));
    // Between this invocation's read and its writes, another one writes three of the subtasks: those three
    // writes conflict. 1,500 ms left and 200 ms a call: the reads and the ten writes leave no time to retry.
    const clock = new InvocationClock(1_500);
    let raced = false;
    const store = new SlowTaskStore(clock, 200, async () => {
      if (raced) return;
      raced = true;
      await applyToTask(
        table.store,
        taskId,
        progress.map((status) => ({ subtaskId: status.task_id, status })),
      );
    });

    const first = await applyBatch(batch, {
      store,
      deadLetters,
      log: SILENT_LOG,
      receiveLimit: Number.POSITIVE_INFINITY,
      applyOptions: applyOptionsFor(clock),
    });
    const task = (await table.store.getTask(taskId)) as TaskRecord;
    const afterFirst = await allSubtasks(table.store, task);
    const second = await applyBatch(
      batch.map((d) => ({ ...d, receiveCount: 2 })),
      { store: applierStore, deadLetters, log: SILENT_LOG, receiveLimit: Number.POSITIVE_INFINITY },
    );
    const afterSecond = await allSubtasks(table.store, task);

    // The task's records all come back, though seven of its subtasks were written.
    expect(first.retry).toEqual(batch.map((d) => d.messageId));
    expect(first.summary).toMatchObject({ applied: 0, retried: 10 });
    expect(store.written.size).toBe(7);
    expect(store.cycleStarts).toEqual([1_300]);
    expect(afterFirst.filter((subtask) => isTerminalState(subtask.status.state))).toHaveLength(7);
    // The redelivery: seven duplicates, three applied over the concurrent progress; nothing written twice.
    expect(second.retry).toEqual([]);
    expect(second.summary).toMatchObject({ applied: 3, duplicate: 7, stale: 0, writes: 3 });
    expect(afterSecond.map((subtask) => [subtask.subtask_id, subtask.version])).toEqual(
      ids.map((id, index) => [id, index < 3 ? 2 : 1]),
    );
    const histories = new Map(
      ids.map((id, index) => [id, [...progress.slice(index, index + 1), finals[index] as SubtaskStatus]]),
    );
    expectExact(await auditTasks(table.store, [{ taskId, histories }], { reconcile: true }));
  });

  it('stops retrying below the reserve, reports only unfinished records, and loses nothing across redeliveries', async () => {
    const figures = {
      invocations: 0,
      withUnfinished: 0,
      partial: 0,
      recordsUnfinished: 0,
      /** Unfinished records whose subtask the same invocation had written: partial writes redelivered. */
      writtenButHandedBack: 0,
      cyclesStarted: 0,
      deliveries: 0,
    };
    const scenarios = 2;
    let statusesSent = 0;
    const audits: Audit[] = [];
    for (let scenario = 0; scenario < scenarios; scenario++) {
      const random = seededRandom(SEED + 100 + scenario);
      const workloads = await startWorkloads(
        table.store,
        [16, 8, 4],
        { duplicateShare: 0.2, minProgressSteps: 0, maxProgressSteps: 2 },
        random,
        `timeout${scenario}`,
      );
      statusesSent += workloads.statusesSent;
      const pool: Delivery[] = workloads.bodies.map((body, index) => ({
        messageId: `s${scenario}-${index}`,
        body,
        receiveCount: 0,
      }));
      for (let round = 0; pool.length > 0; round++) {
        if (round > 500) throw new Error(`No progress after ${round} rounds; ${pool.length} deliveries left`);
        // Two invocations at once on the same tasks: their version conflicts cost retries, and retries cost time.
        const batches = [0, 1]
          .map(() => receiveBatch(pool, 1 + Math.floor(random() * 30)))
          .filter((batch) => batch.length > 0);
        const invocations = await Promise.all(
          batches.map((batch) =>
            invoke(batch, 1_000 + Math.floor(random() * 2_500), 50 + Math.floor(random() * 350)),
          ),
        );
        for (const [index, { unfinished, cycleStarts, written }] of invocations.entries()) {
          const batch = batches[index] ?? [];
          const finished = batch.filter((delivery) => !unfinished.includes(delivery));
          expect(Math.min(...cycleStarts)).toBeGreaterThanOrEqual(RESERVE_MS);
          expect(await droppedTerminals(finished)).toEqual([]);
          figures.invocations += 1;
          figures.deliveries += batch.length;
          figures.cyclesStarted += cycleStarts.length;
          figures.recordsUnfinished += unfinished.length;
          figures.writtenButHandedBack += unfinished.filter((delivery) => {
            const { taskId, subtaskId } = parseStatusMessage(delivery.body);
            return written.has(`${taskId}/${subtaskId}`);
          }).length;
          if (unfinished.length > 0) figures.withUnfinished += 1;
          if (unfinished.length > 0 && finished.length > 0) figures.partial += 1;
          redeliver(pool, unfinished, random);
        }
      }
      audits.push(await auditTasks(table.store, workloads.tasks, { reconcile: true }));
    }

    for (const audit of audits) expectExact(audit);
    // The clock did run out, and mid-batch: some records of an invocation finished, others did not; and some
    // handed-back records had had their subtask written by the invocation that handed them back.
    expect(figures.partial).toBeGreaterThan(0);
    expect(figures.writtenButHandedBack).toBeGreaterThan(0);
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    reportFigures('lambda timeout', {
      seed: SEED,
      scenarios,
      ...figures,
      statusesSent,
      ...sumAudits(audits),
    });
  }, 90_000);
});
