/**
 * `streamed`, round 2's write path as deployed: N appliers run the service's `applyBatch` with its `TaskStore`
 * (one conditional put per changed subtask), and the table's real stream, read by `local/stream-poller.ts` (the
 * stand-in for Lambda's event source mapping) with the aggregator's batch size and batching window, feeds the
 * aggregator's real Lambda handler (`createAggregatorHandler`): recount each touched shard, write its counter,
 * refresh the task. Every write and read of both sides is metered through the store's `StoreObserver`; a reader
 * polls `getTask` to measure read lag.
 */

import { performance } from 'node:perf_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createAggregatorHandler } from '../../lambdas/aggregator/stream-handler';
import { applyBatch, type Log, type QueueRecord } from '../../lambdas/applier/apply-batch';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import type { EventPublisher } from '../../lambdas/events/event-publisher';
import { type DeadLetter, DeadLetterQueue, type UnsentLetter } from '../../lambdas/queue/dead-letter-queue';
import { AGGREGATOR } from '../../lambdas/service-settings';
import { taskKey } from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_REGION } from '../../local/emulators';
import { type StreamPoller, startStreamPoller } from '../../local/stream-poller';
import {
  type BatchOutcome,
  type FinalState,
  NOTHING_STARTED,
  type Strategy,
  type StrategyContext,
  type VersionCheck,
} from '../types';
import { StreamMeter } from './meter';
import { percentile, ReadLagTracer, startReader, tracedFoldStore } from './read-lag';

const SILENT_LOG: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** How often the reader polls `getTask` for the read lag: the lag's resolution. */
const READ_POLL_MS = 100;

/** The bench has no dead-letter queue: its workload only holds valid statuses; a dead letter fails the row. */
class NoDeadLetterQueue extends DeadLetterQueue {
  constructor() {
    super(new SQSClient({ region: LOCAL_REGION }), 'bench:no-dead-letter-queue');
  }

  override async send(_letters: readonly DeadLetter[]): Promise<UnsentLetter[]> {
    return [];
  }
}

/** `Task Ended` has nowhere to go in the bench. */
const NO_EVENTS: EventPublisher = { publish: async () => undefined };

/** The aggregator's Powertools logger, silent, keeping its errors and warnings for the row's verdict. */
class KeepingLogger extends Logger {
  constructor(private readonly kept: string[]) {
    super({ serviceName: 'bench-aggregator', logLevel: 'SILENT' });
  }

  override error(input: Parameters<Logger['error']>[0], ...extra: Parameters<Logger['error']>[1][]): void {
    this.kept.push(`error: ${typeof input === 'string' ? input : JSON.stringify(input)} ${safeJson(extra)}`);
  }

  override warn(input: Parameters<Logger['warn']>[0], ...extra: Parameters<Logger['warn']>[1][]): void {
    this.kept.push(`warn: ${typeof input === 'string' ? input : JSON.stringify(input)} ${safeJson(extra)}`);
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, entry: unknown) =>
      entry instanceof Error ? `${entry.name}: ${entry.message}` : entry,
    );
  } catch {
    return String(value);
  }
}

export function streamedStrategy(context: StrategyContext): Strategy {
  const { db, tableName, taskId } = context;
  // The aggregator and the reader are other Lambdas in production: their own connections, not the appliers'.
  const aggregatorClient = context.newClient();
  const readerClient = context.newClient();
  const meter = new StreamMeter();
  const tracer = new ReadLagTracer(READ_POLL_MS);
  const deadLetters = new NoDeadLetterQueue();
  const foldProblems: string[] = [];
  /** Unmetered: the checks and the reader are not part of the service's bill. */
  const plain = new TaskStore(readerClient.db, tableName);
  const batchingWindowMs = AGGREGATOR.maxBatchingWindowSeconds * 1_000;
  let poller: StreamPoller | undefined;
  let reader: ReturnType<typeof startReader> | undefined;
  let counting = false;
  let foldBatches = 0;
  const foldBatchMs: number[] = [];
  let catchUpSeconds = 0;
  let subtaskWrites = 0;

  const handler = createAggregatorHandler({
    store: tracedFoldStore(new TaskStore(aggregatorClient.db, tableName, meter.observer('fold')), tracer),
    events: NO_EVENTS,
    now: Date.now,
    logger: new KeepingLogger(foldProblems),
    // Disabled (POWERTOOLS_METRICS_DISABLED, set by run.ts): the EMF lines would interleave with the tables.
    metrics: new Metrics({ namespace: 'SubtaskProgressBench', serviceName: 'aggregator' }),
  });

  let closed = false;
  const close = async () => {
    await reader?.stop();
    await poller?.stop();
    if (closed) return;
    closed = true;
    aggregatorClient.close();
    readerClient.close();
  };

  return {
    async initialize(request) {
      // Initialize's own writes are not a status's cost: they only tell the meter what each item holds.
      await new TaskStore(db, tableName, meter.seeding()).initialize(request, Date.now());
      // Marking the task ready is an unobserved update: price later task writes against the item as stored.
      const { Item } = await db.send(
        new GetCommand({ TableName: tableName, Key: taskKey(taskId), ConsistentRead: true }),
      );
      if (Item === undefined) throw new Error(`Task '${taskId}' missing after initialize`);
      meter.seed('task', Item);
      poller = startStreamPoller({
        streams: context.streams,
        streamArn: context.streamArn,
        region: LOCAL_REGION,
        handler: async (event, lambdaContext) => {
          const response = await handler(event, lambdaContext);
          if (!('batchItemFailures' in response))
            throw new Error('The aggregator answered a stream batch oddly');
          return response;
        },
        batchSize: AGGREGATOR.batchSize,
        batchingWindowMs,
        startingPosition: 'TRIM_HORIZON',
        onBatch: (report) => {
          if (counting) {
            foldBatches += 1;
            foldBatchMs.push(report.durationMs);
          }
          if (report.failure !== undefined) foldProblems.push(`batch failed: ${report.failure}`);
        },
        onError: (error) => foldProblems.push(`poller: ${safeJson(error)}`),
      });
      // Initialize's inserts (which the aggregator ignores) go through before the clock starts.
      await poller.caughtUp();
      counting = true;
      reader = startReader(plain, taskId, tracer);
    },

    async processBatch(batch, mayStart): Promise<BatchOutcome> {
      if (!batch.every(mayStart)) return NOTHING_STARTED(batch);
      const handedAt = performance.now();
      const store = new TaskStore(
        db,
        tableName,
        meter.observer('applier', (kind, item, applied) => {
          if (!applied || kind !== 'subtask') return;
          const { subtask_id, version } = item as { subtask_id: string; version: number };
          subtaskWrites += 1;
          tracer.noteWrite(subtask_id, version, handedAt);
        }),
      );
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

    async settle() {
      const started = performance.now();
      await poller?.caughtUp();
      catchUpSeconds = (performance.now() - started) / 1_000;
      // The last fold is in: one more read shows it, then the reader stops.
      await reader?.pollOnce();
      await reader?.stop();
    },

    figures() {
      const lag = tracer.summary();
      const subtask = meter.writes.subtask;
      return {
        billedUnits: meter.billedUnits,
        committedUnits:
          meter.billedUnits -
          subtask.failedUnits -
          meter.writes.counter.failedUnits -
          meter.writes.task.failedUnits,
        conflicts: subtask.failed,
        readUnits: { applier: meter.readUnits('applier'), fold: meter.readUnits('fold') },
        largestItemBytes: Math.max(...Object.values(meter.largestItemBytes)),
        streamed: {
          writes: structuredClone(meter.writes),
          indexUnits: meter.indexUnits,
          reads: structuredClone(meter.reads),
          largestItemBytes: { ...meter.largestItemBytes },
          subtaskWrites,
          foldBatches,
          foldBatchMs: {
            p50: percentile(foldBatchMs, 0.5),
            max: foldBatchMs.reduce((max, ms) => Math.max(max, ms), 0),
          },
          recounts: meter.writes.counter.attempts,
          catchUpSeconds,
          foldProblems: [...foldProblems],
          readLag: lag,
          aggregator: { batchSize: AGGREGATOR.batchSize, batchingWindowMs },
        },
      };
    },

    async finalState(): Promise<FinalState> {
      await reader?.stop();
      await poller?.stop();
      const task = await plain.getTask(taskId);
      if (task === undefined) return { task, statuses: new Map(), versions: [] };
      const statuses = new Map<string, SubtaskStatus>();
      const versions: VersionCheck[] = [];
      for (let shard = 0; shard < task.write_shards; shard++) {
        for (const item of await plain.readShard(task, shard)) {
          if (item.generation !== task.generation) continue;
          statuses.set(item.subtask_id, item.status);
          // Every applied write raised its subtask's version by exactly one: none lost, none doubled.
          versions.push({
            item: `subtask ${item.subtask_id}`,
            stored: item.version,
            expected: meter.appliedSubtaskWrites.get(item.subtask_id) ?? 0,
          });
        }
      }
      return { task, statuses, versions };
    },

    close,
  };
}
