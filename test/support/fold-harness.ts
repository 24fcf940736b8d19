/**
 * The aggregator's input as the tests make it: the REAL stream of a test table (DynamoDB Local serves it; the
 * local stream poller reads it and turns its records into Lambda's `DynamoDBRecord` shape), folded with
 * `foldBatch` under the disorder Lambda's event source is allowed: records delivered twice, batches of any size,
 * a batch delivered again after its invocation died part-way, a batch delivered again after it succeeded,
 * records redelivered from the `resumeFrom` a partial batch response names, and records spread over several
 * stream shards folded in parallel. DynamoDB Local has one stream shard; the harness splits it into simulated
 * shards by a hash of the item key, so each item's records stay in order within its shard, as DynamoDB
 * guarantees.
 */

import { createHash } from 'node:crypto';
import { ThrottlingException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { type FoldBatchResult, type FoldSummary, foldBatch } from '../../lambdas/aggregator/fold-batch';
import { sleep } from '../../lambdas/core/backoff';
import type { ServiceEvent } from '../../lambdas/core/events';
import type { EventPublisher } from '../../lambdas/events/event-publisher';
import type { Log } from '../../lambdas/log';
import { TABLE_KEYS } from '../../lambdas/service-settings';
import { taskPartition } from '../../lambdas/store/task-items';
import type { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_REGION } from '../../local/emulators';
import { type StreamPoller, startStreamPoller } from '../../local/stream-poller';
import { SILENT_LOG } from './applier-harness';
import { streamsClient } from './aws';

/** The fold's events, kept instead of sent. */
export class CollectingPublisher implements EventPublisher {
  readonly events: ServiceEvent[] = [];

  async publish(events: readonly ServiceEvent[]): Promise<void> {
    this.events.push(...events);
  }

  /** Events about one task (its `detail.task_id`). */
  of(taskId: string, detailType?: string): ServiceEvent[] {
    return this.events.filter(
      (event) =>
        event.detail.task_id === taskId && (detailType === undefined || event.detailType === detailType),
    );
  }
}

/** True when the record is about an item of task `taskId`: the task, its counters or its subtasks. */
export function isRecordOf(record: DynamoDBRecord, taskId: string): boolean {
  const pk = record.dynamodb?.Keys?.[TABLE_KEYS.partitionKey]?.S;
  const partition = taskPartition(taskId);
  return pk === partition || (pk?.startsWith(`${partition}#`) ?? false);
}

function itemKeyOf(record: DynamoDBRecord): string {
  const keys = record.dynamodb?.Keys;
  return `${keys?.[TABLE_KEYS.partitionKey]?.S ?? ''}\u0000${keys?.[TABLE_KEYS.sortKey]?.S ?? ''}`;
}

export function sequenceNumberOf(record: DynamoDBRecord): string {
  return record.dynamodb?.SequenceNumber ?? '';
}

function startPoller(
  streams: DynamoDBStreamsClient,
  streamArn: string,
  startingPosition: 'TRIM_HORIZON' | 'LATEST',
  accept: (records: readonly DynamoDBRecord[]) => void,
  errors: unknown[],
): StreamPoller {
  return startStreamPoller({
    streams,
    streamArn,
    region: LOCAL_REGION,
    startingPosition,
    batchSize: 1_000,
    // Hand records over as soon as they are read: the harness does its own batching.
    batchingWindowMs: 0,
    handler: async (event) => {
      accept(event.Records);
      return { batchItemFailures: [] };
    },
    onError: (error) => errors.push(error),
  });
}

/** How long a test waits for the poller to read to the end of the stream before it says why not. */
const CATCH_UP_TIMEOUT_MS = 60_000;

/** The poller's `caughtUp()`, failing with the poller's last error instead of hanging when it cannot get there. */
async function caughtUp(poller: StreamPoller, errors: readonly unknown[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`The stream poller did not catch up within ${CATCH_UP_TIMEOUT_MS} ms`, {
            cause: errors.at(-1),
          }),
        ),
      CATCH_UP_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([poller.caughtUp(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every record of a table's stream, as Lambda would deliver them, read from the start: for tests that fold
 * chosen records by hand. Call `stop()` when done.
 */
export class StreamTap {
  private readonly records: DynamoDBRecord[] = [];
  private readonly handedOut = new Map<string, number>();
  private readonly errors: unknown[] = [];
  private readonly poller: StreamPoller;

  constructor(streamArn: string, streams: DynamoDBStreamsClient = streamsClient()) {
    this.poller = startPoller(
      streams,
      streamArn,
      'TRIM_HORIZON',
      (records) => this.records.push(...records),
      this.errors,
    );
  }

  /** Every record written to the stream before this call, in stream order. */
  async all(): Promise<DynamoDBRecord[]> {
    await caughtUp(this.poller, this.errors);
    return [...this.records];
  }

  /**
   * The records written since the last call of `next` with the same `taskId` (or since the start): those of task
   * `taskId`, or every record when it is absent.
   */
  async next(taskId?: string): Promise<DynamoDBRecord[]> {
    await caughtUp(this.poller, this.errors);
    const key = taskId ?? '';
    const fresh = this.records.slice(this.handedOut.get(key) ?? 0);
    this.handedOut.set(key, this.records.length);
    return taskId === undefined ? fresh : fresh.filter((record) => isRecordOf(record, taskId));
  }

  /** Every record of task `taskId` so far. */
  async of(taskId: string): Promise<DynamoDBRecord[]> {
    return (await this.all()).filter((record) => isRecordOf(record, taskId));
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }
}

/** One call on the store, as an interceptor sees it. */
export interface StoreCall {
  readonly method: string;
  readonly args: readonly unknown[];
  proceed(): Promise<unknown>;
}

/**
 * `store` with every method call going through `intercept`, which decides whether and when to `proceed`. The
 * store's own internal calls are not intercepted: the methods run with the real store as `this`.
 */
export function interceptStore(
  store: TaskStore,
  intercept: (call: StoreCall) => Promise<unknown>,
): TaskStore {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') {
        return value;
      }
      return (...args: unknown[]) =>
        intercept({
          method: property,
          args,
          proceed: () => Promise.resolve(value.apply(target, args)),
        });
    },
  });
}

const NEVER = new Promise<never>(() => undefined);

/** Where an invocation dies: before the call runs, or after it ran and before its caller hears of it. */
export type KillPoint = 'before' | 'after';

export interface MortalStore {
  readonly store: TaskStore;
  /** Resolves when the invocation died: that call and every later one never return. */
  readonly died: Promise<void>;
  /** Calls that reached DynamoDB and have not settled yet: a dead invocation's writes may still land. */
  readonly inFlight: Set<Promise<unknown>>;
}

/**
 * A store for one invocation that can die at a chosen call, as a Lambda that crashes or times out: the calls
 * it had sent complete (DynamoDB does not know the caller died), nothing after the kill point runs, and the
 * caller never hears back. `killAt` sees each call with its 1-based index.
 */
export function mortalStore(
  store: TaskStore,
  killAt: (call: StoreCall, index: number) => KillPoint | undefined,
  inFlight: Set<Promise<unknown>> = new Set(),
): MortalStore {
  let dead = false;
  let die: () => void = () => undefined;
  const died = new Promise<void>((resolve) => {
    die = () => {
      dead = true;
      resolve();
    };
  });
  let calls = 0;
  const proceed = (call: StoreCall) => {
    const running = call.proceed();
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    inFlight.add(settled);
    void settled.then(() => inFlight.delete(settled));
    return running;
  };
  const intercepted = interceptStore(store, async (call) => {
    if (dead) return NEVER;
    calls++;
    const point = killAt(call, calls);
    if (point === 'before') {
      die();
      return NEVER;
    }
    const result = await proceed(call);
    if (point === 'after' || dead) {
      die();
      return NEVER;
    }
    return result;
  });
  return { store: intercepted, died, inFlight };
}

/** `store` failing each call with DynamoDB's `ThrottlingException`, before it runs, when `throttle()` says so. */
export function throttlingStore(store: TaskStore, throttle: (call: StoreCall) => boolean): TaskStore {
  return interceptStore(store, async (call) => {
    if (throttle(call)) {
      throw new ThrottlingException({
        message: 'Rate of requests exceeds the allowed throughput',
        $metadata: {},
      });
    }
    return call.proceed();
  });
}

/** How far from Lambda's best behaviour the harness's delivery strays. */
export interface StreamDisorder {
  /** Simulated stream shards, each folded by its own loop, records routed by a hash of the item key. */
  readonly shards: number;
  /** Each batch takes a random number of records from 1 to this. */
  readonly maxBatchSize: number;
  /** Share of records delivered twice in a row within their batch. */
  readonly duplicateShare: number;
  /** Share of deliveries whose invocation dies after 1–6 store calls; the same records come again. */
  readonly crashShare: number;
  /** Share of store calls that fail with throttling: the batch answers `resumeFrom` and the rest comes again. */
  readonly throttleShare: number;
  /** Share of batches delivered once more after they succeeded. */
  readonly replayShare: number;
  /** How long a loop waits for more records before it folds a batch shorter than it drew. */
  readonly windowMs: number;
}

export const CALM: StreamDisorder = {
  shards: 1,
  maxBatchSize: 1_000,
  duplicateShare: 0,
  crashShare: 0,
  throttleShare: 0,
  replayShare: 0,
  windowMs: 0,
};

export interface FoldTotals extends Omit<FoldSummary, 'records'> {
  /** Invocations of `foldBatch`, those that died included. */
  readonly invocations: number;
  /** Batches taken from the stream (each delivered until it fully succeeded). */
  readonly batches: number;
  /** Records handed to `foldBatch`, counting every redelivery and duplicate. */
  readonly records: number;
  readonly crashes: number;
  /** Partial batch responses honoured. */
  readonly resumes: number;
  readonly replays: number;
}

const ZERO_TOTALS: FoldTotals = {
  invocations: 0,
  batches: 0,
  records: 0,
  crashes: 0,
  resumes: 0,
  replays: 0,
  shardsFolded: 0,
  countersWritten: 0,
  tasksWritten: 0,
  nothingToDo: 0,
  eventsPublished: 0,
  eventsDeferred: 0,
  skipped: 0,
  retried: 0,
};

export interface FoldHarnessOptions {
  readonly store: TaskStore;
  readonly streamArn: string;
  readonly random: () => number;
  readonly disorder?: Partial<StreamDisorder>;
  readonly streams?: DynamoDBStreamsClient;
  /** Read the stream from its start, or only what is written after the harness started. @default 'LATEST' */
  readonly startingPosition?: 'TRIM_HORIZON' | 'LATEST';
  readonly now?: () => number;
  readonly log?: Log;
  readonly events?: CollectingPublisher;
  /** Shards one `foldBatch` folds at once. @default foldBatch's own */
  readonly parallelism?: number;
}

export interface FoldHarness {
  readonly events: CollectingPublisher;
  totals(): FoldTotals;
  /**
   * Resolves once every record written to the stream before the call (and every record the fold's own writes
   * caused) has been folded and every redelivery done; throws what went wrong in a fold loop.
   */
  drain(): Promise<FoldTotals>;
  stop(): Promise<FoldTotals>;
}

/** Gives up on a batch that keeps failing: the fold should succeed once throttling stops. */
const MAX_DELIVERIES_PER_BATCH = 200;

function shardOfRecord(record: DynamoDBRecord, shards: number): number {
  return createHash('sha256').update(itemKeyOf(record)).digest().readUInt32BE(0) % shards;
}

/**
 * Starts reading the table's stream and folding it; resolves once the poller is reading (with `LATEST`, every
 * record written after this resolves is folded).
 */
export async function startFoldHarness(options: FoldHarnessOptions): Promise<FoldHarness> {
  const disorder: StreamDisorder = { ...CALM, ...options.disorder };
  const { random } = options;
  const events = options.events ?? new CollectingPublisher();
  const log = options.log ?? SILENT_LOG;
  const now = options.now ?? Date.now;
  const queues: DynamoDBRecord[][] = Array.from({ length: disorder.shards }, () => []);
  const errors: unknown[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let busy = 0;
  let stopping = false;
  let totals = ZERO_TOTALS;

  const add = (more: Partial<FoldTotals>) => {
    const sum: Record<string, number> = { ...totals };
    for (const [key, value] of Object.entries(more)) sum[key] = (sum[key] ?? 0) + (value ?? 0);
    totals = sum as unknown as FoldTotals;
  };

  const chance = (share: number) => share > 0 && random() < share;

  /** One invocation: the summary, or undefined when it died. */
  async function invoke(records: readonly DynamoDBRecord[]): Promise<FoldBatchResult | undefined> {
    const crashAt = chance(disorder.crashShare) ? 1 + Math.floor(random() * 6) : undefined;
    const throttled =
      disorder.throttleShare > 0
        ? throttlingStore(options.store, () => chance(disorder.throttleShare))
        : options.store;
    const mortal = mortalStore(throttled, (_, index) => (index === crashAt ? 'before' : undefined), inFlight);
    add({ invocations: 1, records: records.length });
    const result = await Promise.race([
      foldBatch(records, {
        store: mortal.store,
        events,
        log,
        now,
        ...(options.parallelism === undefined ? {} : { parallelism: options.parallelism }),
      }),
      mortal.died.then(() => undefined),
    ]);
    if (result === undefined) {
      add({ crashes: 1 });
      return undefined;
    }
    const { records: _records, ...summary } = result.summary;
    add(summary);
    return result;
  }

  /** Delivers `batch` until all of it succeeded: again whole after a crash, from `resumeFrom` on after a partial failure. */
  async function deliver(batch: readonly DynamoDBRecord[]): Promise<void> {
    let pending = batch;
    for (let delivery = 1; pending.length > 0; delivery++) {
      if (delivery > MAX_DELIVERIES_PER_BATCH) {
        throw new Error(`A batch of ${batch.length} records still failed after ${delivery - 1} deliveries`);
      }
      const result = await invoke(pending);
      if (result === undefined) continue;
      if (result.resumeFrom === undefined) return;
      const from = pending.findIndex((record) => sequenceNumberOf(record) === result.resumeFrom);
      if (from < 0) throw new Error(`resumeFrom ${result.resumeFrom} names no record of the batch`);
      add({ resumes: 1 });
      pending = pending.slice(from);
      await sleep(1);
    }
  }

  function withDuplicates(records: readonly DynamoDBRecord[]): DynamoDBRecord[] {
    return records.flatMap((record) => (chance(disorder.duplicateShare) ? [record, record] : [record]));
  }

  async function foldLoop(queue: DynamoDBRecord[]): Promise<void> {
    while (!stopping) {
      if (queue.length === 0) {
        await sleep(2);
        continue;
      }
      busy++;
      try {
        const size = 1 + Math.floor(random() * disorder.maxBatchSize);
        if (queue.length < size && disorder.windowMs > 0) await sleep(disorder.windowMs);
        const batch = withDuplicates(queue.splice(0, size));
        add({ batches: 1 });
        await deliver(batch);
        if (chance(disorder.replayShare)) {
          add({ replays: 1 });
          await deliver(batch);
        }
      } catch (error) {
        errors.push(error);
        stopping = true;
      } finally {
        busy--;
      }
    }
  }

  const pollerErrors: unknown[] = [];
  const poller = startPoller(
    options.streams ?? streamsClient(),
    options.streamArn,
    options.startingPosition ?? 'LATEST',
    (records) => {
      for (const record of records) queues[shardOfRecord(record, disorder.shards)]?.push(record);
    },
    pollerErrors,
  );
  await caughtUp(poller, pollerErrors);
  const loops = queues.map((queue) => foldLoop(queue));

  const check = () => {
    if (errors.length > 0) throw new AggregateError(errors, 'The fold harness failed');
  };

  async function idle(): Promise<void> {
    for (;;) {
      check();
      if (busy === 0 && queues.every((queue) => queue.length === 0) && inFlight.size === 0) return;
      if (inFlight.size > 0 && busy === 0) await Promise.all(inFlight);
      else await sleep(3);
    }
  }

  let stopped: Promise<FoldTotals> | undefined;
  return {
    events,
    totals: () => totals,
    async drain() {
      // The second round folds the records of the fold's own last writes (the task's ending among them).
      for (let round = 0; round < 2; round++) {
        await caughtUp(poller, pollerErrors);
        await idle();
      }
      return totals;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await poller.stop();
        await Promise.all(loops);
        check();
        return totals;
      })();
      return stopped;
    },
  };
}
