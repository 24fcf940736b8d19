import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { applyBatch, type Log, type QueueRecord } from '../lambdas/applier/apply-batch';
import type { Outcome, StatusUpdate } from '../lambdas/core/apply-statuses';
import { RetriesExhaustedError } from '../lambdas/core/errors';
import type { SubtaskStatus } from '../lambdas/core/subtask-status';
import type { InitializeRequest, TaskRecord } from '../lambdas/core/task';
import { type DeadLetter, DeadLetterQueue, type UnsentLetter } from '../lambdas/queue/dead-letter-queue';
import { applyToTask } from '../lambdas/store/apply-to-task';
import type { TaskStore } from '../lambdas/store/task-store';
import { LOCAL_REGION } from '../local/emulators';
import type { MayStart } from './driver';
import { MeteredTaskStore } from './metered-task-store';
import { SingleItemStore } from './single-item-store';
import type { Delivery } from './workload';
import type { WriteTally } from './write-tally';

/**
 * The three ways of applying the same deliveries that the bench compares. Each takes one Lambda batch at a time
 * and says which deliveries must come back, as a batch item failure makes SQS deliver a record again.
 */

export const STRATEGY_NAMES = ['coalesced', 'per-message', 'single-item'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface BatchOutcome {
  /** Deliveries to deliver again: their cycle ran out of attempts. */
  readonly again: readonly Delivery[];
  /** Deliveries not started because the run's budget was spent: nothing was attempted for them. */
  readonly untouched: readonly Delivery[];
  readonly applied: number;
  readonly duplicate: number;
  readonly stale: number;
  /** Deliveries that could never apply (dead letters); the bench's workload has none, so any is a failure. */
  readonly rejected: number;
}

/** What the table holds once the run is over, to compare with the ground truth. */
export interface FinalState {
  readonly task: TaskRecord | undefined;
  readonly statuses: ReadonlyMap<string, SubtaskStatus>;
}

export interface Strategy {
  initialize(request: InitializeRequest, nowMs: number): Promise<void>;
  processBatch(batch: readonly Delivery[], mayStart: MayStart): Promise<BatchOutcome>;
  finalState(): Promise<FinalState>;
}

const SILENT_LOG: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Subtask statuses are read back this many at a time to check them. */
const LIST_PAGE = 1_000;

/**
 * The bench has no dead-letter queue: the workload only holds valid statuses, so `applyBatch` never sends here,
 * and if it ever did the row fails its exactness check through the `rejected` count.
 */
class NoDeadLetterQueue extends DeadLetterQueue {
  constructor() {
    super(new SQSClient({ region: LOCAL_REGION }), 'bench:no-dead-letter-queue');
  }

  override async send(_letters: readonly DeadLetter[]): Promise<UnsentLetter[]> {
    return [];
  }
}

interface Counts {
  applied: number;
  duplicate: number;
  stale: number;
  rejected: number;
}

function countOutcome(counts: Counts, outcome: Outcome): void {
  if (outcome.kind === 'rejected') counts.rejected++;
  else counts[outcome.kind]++;
}

/**
 * A Lambda that does not coalesce: every record of the batch in turn, each its own read-compute-write cycle. A
 * record whose cycle ran out of attempts is reported for redelivery; anything else unexpected stops the bench.
 */
async function oneByOne(
  batch: readonly Delivery[],
  mayStart: MayStart,
  applyOne: (update: StatusUpdate) => Promise<Outcome>,
): Promise<BatchOutcome> {
  const counts: Counts = { applied: 0, duplicate: 0, stale: 0, rejected: 0 };
  const again: Delivery[] = [];
  const untouched: Delivery[] = [];
  for (const delivery of batch) {
    if (!mayStart(delivery)) {
      untouched.push(delivery);
      continue;
    }
    try {
      countOutcome(counts, await applyOne(delivery.update));
    } catch (error) {
      if (!(error instanceof RetriesExhaustedError)) throw error;
      again.push(delivery);
    }
  }
  return { again, untouched, ...counts };
}

async function taskStoreState(store: TaskStore, taskId: string): Promise<FinalState> {
  const task = await store.getTask(taskId);
  const statuses = new Map<string, SubtaskStatus>();
  let after: string | undefined;
  do {
    const page = await store.listSubtasks(taskId, { limit: LIST_PAGE, ...(after ? { after } : {}) });
    for (const subtask of page.subtasks) statuses.set(subtask.subtask_id, subtask.status);
    after = page.lastSubtaskId;
  } while (after !== undefined);
  return { task, statuses };
}

/** This design as the Lambda runs it: `applyBatch` parses the batch and applies each task's records in one cycle. */
function coalesced(store: MeteredTaskStore, taskId: string): Strategy {
  const deadLetters = new NoDeadLetterQueue();
  return {
    initialize: async (request, nowMs) => {
      await store.initialize(request, nowMs);
    },
    async processBatch(batch, mayStart) {
      // One cycle applies the whole batch: it starts on all of it or, once the budget is spent, on none of it.
      if (!batch.every(mayStart)) {
        return { again: [], untouched: batch, applied: 0, duplicate: 0, stale: 0, rejected: 0 };
      }
      const records = batch.map(
        (delivery): QueueRecord => ({ messageId: String(delivery.id), body: delivery.body, receiveCount: 1 }),
      );
      const { retry, summary } = await applyBatch(records, {
        store,
        deadLetters,
        log: SILENT_LOG,
        // The bench redelivers whatever comes back, however often; its driver bounds that instead.
        receiveLimit: Number.POSITIVE_INFINITY,
      });
      const retried = new Set(retry);
      return {
        again: batch.filter((delivery) => retried.has(String(delivery.id))),
        untouched: [],
        applied: summary.applied,
        duplicate: summary.duplicate,
        stale: summary.stale,
        rejected: summary.deadLettered,
      };
    },
    finalState: () => taskStoreState(store, taskId),
  };
}

/** The same storage and optimistic-locking cycle, one cycle per status: what the design would be without coalescing. */
function perMessage(store: MeteredTaskStore, taskId: string): Strategy {
  return {
    initialize: async (request, nowMs) => {
      await store.initialize(request, nowMs);
    },
    processBatch: (batch, mayStart) =>
      oneByOne(batch, mayStart, async (update) => {
        const { outcomes } = await applyToTask(store, taskId, [update]);
        const [outcome] = outcomes;
        if (outcome === undefined) throw new RangeError('applyToTask returns one outcome per update');
        return outcome;
      }),
    finalState: () => taskStoreState(store, taskId),
  };
}

/** The reference's layout: the whole task in one item, rewritten on every status. */
function singleItem(store: SingleItemStore, taskId: string): Strategy {
  return {
    initialize: (request, nowMs) => store.initialize(request, nowMs),
    processBatch: (batch, mayStart) => oneByOne(batch, mayStart, (update) => store.apply(taskId, update)),
    async finalState() {
      const state = await store.state(taskId);
      return { task: state?.task, statuses: state?.statuses ?? new Map() };
    },
  };
}

export function createStrategy(
  name: StrategyName,
  db: DynamoDBDocumentClient,
  tableName: string,
  taskId: string,
  tally: WriteTally,
): Strategy {
  switch (name) {
    case 'coalesced':
      return coalesced(new MeteredTaskStore(db, tableName, tally), taskId);
    case 'per-message':
      return perMessage(new MeteredTaskStore(db, tableName, tally), taskId);
    case 'single-item':
      return singleItem(new SingleItemStore(db, tableName, tally), taskId);
  }
}
