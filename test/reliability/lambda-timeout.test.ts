import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { parseStatusMessage } from '../../lambdas/core/status-message';
import { isTerminalState, sameStatus } from '../../lambdas/core/subtask-status';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { TaskStore, type TransactionWrite } from '../../lambdas/store/task-store';
import { seededRandom } from '../support/applier-harness';
import { newStatusQueues, newTaskTable, type TestQueues, type TestTable, uniqueName } from '../support/aws';
import {
  initializeRequest,
  lambdaContext,
  messageBody,
  subtaskIds,
  T0,
  terminal,
} from '../support/factories';
import {
  type Audit,
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
} from './support';

/**
 * A Lambda that runs short of time mid-batch: below the reserve the applier keeps (`minRemainingMs`, 1 s by
 * default) it must start no further attempt, report every unfinished record for redelivery and let the finished
 * ones go. Time here is virtual: it passes only as the store works or the applier waits, so runs replay exactly.
 */

/** The applier's default reserve: below it, no read-compute-commit cycle is started. */
const RESERVE_MS = 1_000;

let table: TestTable;
let queues: TestQueues;
let db: DynamoDBDocumentClient;

beforeAll(async () => {
  [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  db = documentClient(table.client);
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
 * included (a pessimistic clock). It notes the time left whenever a read-compute-commit cycle starts.
 */
class SlowTaskStore extends TaskStore {
  readonly cycleStarts: number[] = [];

  constructor(
    private readonly clock: InvocationClock,
    private readonly callMs: number,
  ) {
    super(db, table.tableName);
  }

  private async timed<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } finally {
      this.clock.spend(this.callMs);
    }
  }

  override getTask(taskId: string): Promise<TaskRecord | undefined> {
    this.cycleStarts.push(this.clock.remaining());
    return this.timed(super.getTask(taskId));
  }

  override getSubtasks(taskId: string, ids: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    return this.timed(super.getSubtasks(taskId, ids));
  }

  override commit(
    read: TaskRecord,
    next: TaskRecord,
    changed: readonly SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, SubtaskRecord>,
  ): Promise<TransactionWrite> {
    return this.timed(super.commit(read, next, changed, readSubtasks));
  }
}

interface Invocation {
  /** Deliveries reported as batch item failures, for SQS to deliver again. */
  readonly unfinished: Delivery[];
  readonly cycleStarts: readonly number[];
}

/** Runs `batch` through the Lambda edge with `budgetMs` left on the clock and every store call costing `callMs`. */
async function invoke(batch: readonly Delivery[], budgetMs: number, callMs: number): Promise<Invocation> {
  const clock = new InvocationClock(budgetMs);
  const store = new SlowTaskStore(clock, callMs);
  const handler = applierHandler({
    store,
    deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
    // Running out of time is transient; this test keeps every delivery of it on the source queue.
    receiveLimit: Number.POSITIVE_INFINITY,
    applyOptions: {
      // Backoff waits spend the invocation's time too, without making the test wait.
      sleep: async (ms) => {
        clock.spend(ms);
        await nextTurn();
      },
    },
  });
  const context = { ...lambdaContext(), getRemainingTimeInMillis: () => clock.remaining() };
  const response = await handler(sqsEventOf(batch), context);
  return { unfinished: failedDeliveries(batch, response), cycleStarts: store.cycleStarts };
}

/** Deliveries reported finished whose terminal status is not what the store now holds: lost if any. */
async function droppedTerminals(finished: readonly Delivery[]): Promise<Delivery[]> {
  const dropped: Delivery[] = [];
  for (const delivery of finished) {
    const { taskId, subtaskId, status } = parseStatusMessage(delivery.body);
    if (!isTerminalState(status.state)) continue;
    const stored = (await table.store.getSubtasks(taskId, [subtaskId])).get(subtaskId);
    if (stored === undefined || !sameStatus(stored.status, status)) dropped.push(delivery);
  }
  return dropped;
}

describe('an applier running out of Lambda time', () => {
  it('reports every record of a task whose time ran out between chained transactions, and counts the committed part once on redelivery', async () => {
    const taskId = uniqueName('chained');
    const ids = subtaskIds(150);
    await table.store.initialize(initializeRequest(taskId, ids), T0);
    const batch = ids.slice(0, 100).map((id, index) => ({
      messageId: `chained-${index}`,
      body: messageBody(taskId, terminal(id)),
      receiveCount: 1,
    }));

    // 100 subtasks take two transactions (99 + 1). With 1,500 ms left and 200 ms a call, the first one (read,
    // read, commit) leaves 900 ms: under the reserve, so the second is never started.
    const first = await invoke(batch, 1_500, 200);
    const afterFirst = await table.store.getTask(taskId);
    const second = await invoke(
      first.unfinished.map((d) => ({ ...d, receiveCount: d.receiveCount + 1 })),
      30_000,
      10,
    );
    const afterSecond = await table.store.getTask(taskId);

    expect(first.unfinished.map((d) => d.messageId)).toEqual(batch.map((d) => d.messageId));
    expect(first.cycleStarts).toEqual([1_500]);
    expect(afterFirst?.subtasks).toEqual({ total: 150, succeeded: 99, failed: 0 });
    expect(second.unfinished).toEqual([]);
    expect(afterSecond?.subtasks).toEqual({ total: 150, succeeded: 100, failed: 0 });
    expect(afterSecond?.task_output).toMatchObject({ attempted: 10_000, succeeded: 10_000, failed: 0 });
    // One commit per transaction that changed something: the 99 redelivered statuses were duplicates.
    expect(afterSecond?.version).toBe(3);
  });

  it('stops retrying below the reserve, reports only unfinished records, and loses nothing across redeliveries', async () => {
    const figures = {
      invocations: 0,
      withUnfinished: 0,
      partial: 0,
      recordsUnfinished: 0,
      cyclesStarted: 0,
      deliveries: 0,
    };
    const scenarios = 3;
    let statusesSent = 0;
    const audits: Audit[] = [];
    for (let scenario = 0; scenario < scenarios; scenario++) {
      const random = seededRandom(SEED + 100 + scenario);
      const workloads = await startWorkloads(
        table.store,
        [24, 10, 5],
        { duplicateShare: 0.2, maxProgressSteps: 2 },
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
        for (const [index, { unfinished, cycleStarts }] of invocations.entries()) {
          const batch = batches[index] ?? [];
          const finished = batch.filter((delivery) => !unfinished.includes(delivery));
          expect(Math.min(...cycleStarts)).toBeGreaterThanOrEqual(RESERVE_MS);
          expect(await droppedTerminals(finished)).toEqual([]);
          figures.invocations += 1;
          figures.deliveries += batch.length;
          figures.cyclesStarted += cycleStarts.length;
          figures.recordsUnfinished += unfinished.length;
          if (unfinished.length > 0) figures.withUnfinished += 1;
          if (unfinished.length > 0 && finished.length > 0) figures.partial += 1;
          redeliver(pool, unfinished, random);
        }
      }
      audits.push(await auditTasks(table.store, workloads.tasks));
    }

    for (const audit of audits) expectExact(audit);
    // The clock did run out, and mid-batch: some records of the same invocation finished, others did not.
    expect(figures.partial).toBeGreaterThan(0);
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    reportFigures('lambda timeout', {
      seed: SEED,
      scenarios,
      ...figures,
      statusesSent,
      lost: audits.reduce((sum, audit) => sum + audit.lost, 0),
      doubleCounted: audits.reduce((sum, audit) => sum + audit.doubleCounted, 0),
    });
  }, 60_000);
});
