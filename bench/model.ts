/**
 * The model for real DynamoDB: how many statuses a second one task can take, from a row's measured per-status
 * and per-fold figures and DynamoDB's per-partition limits (one partition serves at most 1,000 write units and
 * 3,000 read units a second: developerguide/bp-partition-key-design.html). DynamoDB Local enforces no limit, so
 * this is arithmetic on measured units, not a measurement.
 */

import { randomUUID } from 'node:crypto';
import { initializeTask } from '../lambdas/core/task';
import { shardSizes, writeShardCount } from '../lambdas/core/write-shards';
import { APPLIER } from '../lambdas/service-settings';
import { taskItem } from '../lambdas/store/task-items';
import type { ItemKind } from '../lambdas/store/task-store';
import { itemBytes, itemReadUnits, writeUnitsForBytes } from '../test/support/metering';
import { subtaskIdsFor } from '../test/support/workload';
import type { Role } from './streamed/meter';
import type { StreamedFigures } from './types';

export const PARTITION_WRITE_UNITS_PER_SECOND = 1_000;
export const PARTITION_READ_UNITS_PER_SECOND = 3_000;
/** The model's hot task. */
export const MODEL_SUBTASKS = 100_000;

export interface TransactionalModel {
  readonly kind: 'transactional';
  /** The task and all its subtasks share one partition, whatever the fan-out: 1,000 / WU per status. */
  readonly maxStatusesPerSecond: number;
  readonly maxStatusesPerSecondCommitted: number;
}

/** One partition's peak load at `READ_MODEL_RATE` statuses/s on the model's hot task. */
export interface PartitionLoad {
  readonly partition: 'task' | 'busiest write shard' | 'due index';
  readonly readUnitsPerSecond: number;
  readonly writeUnitsPerSecond: number;
}

export interface StreamedModel {
  readonly kind: 'streamed';
  readonly subtasks: number;
  /** S: write shards at `subtasks` (one partition key each). */
  readonly writeShards: number;
  /** k: the largest shard over the mean (the hash's unevenness at `subtasks`). */
  readonly skew: number;
  /** s: subtask write units billed per applied status (refused writes included), measured. */
  readonly subtaskUnitsPerStatus: number;
  /** ρ: subtask items written per applied status (statuses of one subtask in one batch share a write). */
  readonly writesPerStatus: number;
  /** The task item's size at `subtasks`: the largest the row wrote, plus what `subtasks` add to it. */
  readonly taskItemBytes: number;
  /** f: task-partition write units per recount: counter writes plus task writes (refused ones included). */
  readonly taskPartitionUnitsPerRecount: number;
  /** W (seconds) and B (records) of the aggregator's event source. */
  readonly batchingWindowSeconds: number;
  readonly batchSize: number;
  /** Bound from the subtask partitions: S × 1,000 / (s × k). */
  readonly subtaskPartitionsBound: number;
  /** f × S / W: what the task partition takes when every shard is recounted once per window. */
  readonly windowWriteLoad: number;
  /** Bound from the task partition once batches fill before the window closes: 1,000 × B / (f × ρ). */
  readonly taskPartitionBound: number;
  /** min of the two; 0 when the window load alone is over 1,000 WU/s. */
  readonly maxStatusesPerSecond: number;
  /** q: task-partition read units per recount (the task item read, every counter of the task read). */
  readonly taskPartitionReadUnitsPerRecount: number;
  /** q × S / W against the partition's 3,000 read units a second. */
  readonly windowReadLoad: number;
  /** When the read load is over the limit: the recounts a second the task partition allows, and so how often
   * each shard can be recounted at best (a floor under the read lag, not a bound on statuses/s). */
  readonly readLimitedShardRecountSeconds?: number;
  /** The aggregator's read units per recount at `subtasks`: the shard Query (measured) plus q. */
  readonly foldReadUnitsPerRecount: number;
  /** The aggregator's read units per status at `READ_MODEL_RATE` statuses/s: S / W recounts a second share them. */
  readonly foldReadUnitsPerStatusAtRate: number;
  readonly readModelRate: number;
  /** T: task refreshes a second at `readModelRate`: one per stream batch that holds the task's records. */
  readonly refreshesPerSecond: number;
  /** Each partition's peak read and write units a second at `readModelRate`, against 3,000 RCU and 1,000 WCU. */
  readonly partitions: readonly PartitionLoad[];
  /** The row's read units per applied status, by caller and item kind (measured). */
  readonly readUnitsPerStatus: Readonly<Record<Role, Readonly<Record<ItemKind, number>>>>;
}

/** The rate at which the model prices the aggregator's reads per status. */
export const READ_MODEL_RATE = 10_000;

const taskItemSizes = new Map<number, number>();

/**
 * A task item of `subtasks` subtasks late in its run: ready, due, with every count at a generous per-subtask
 * scale (200 items each, 10 writes each), so that the digits the counts gain with the fan-out are priced.
 */
function taskItemBytesAt(subtasks: number): number {
  const known = taskItemSizes.get(subtasks);
  if (known !== undefined) return known;
  const nowMs = Date.now();
  const { task } = initializeTask(
    {
      taskId: 'bench-task',
      actionName: 'emailed',
      total: subtasks * 100,
      subtaskIds: subtaskIdsFor(subtasks),
    },
    nowMs,
    randomUUID(),
  );
  const items = subtasks * 200;
  const counts = { attempted: items, succeeded: items - 1_234, failed: 1_234, skipped: 4_321 };
  const bytes = itemBytes(
    taskItem(
      {
        ...task,
        ready: true,
        init_written: subtasks,
        version: subtasks * 10,
        counters_vsum: subtasks * 10,
        task_output: { ...task.task_output, ...counts, duration_ms: 86_400_123 },
        in_flight: counts,
        subtasks: { total: subtasks, succeeded: subtasks - 123, failed: 122 },
        updated_at: new Date(nowMs).toISOString(),
      },
      Math.floor(nowMs / 1000) + 900,
    ),
  );
  taskItemSizes.set(subtasks, bytes);
  return bytes;
}

const skews = new Map<number, number>();

/** The busiest write shard's subtasks over the mean, for the bench's subtask ids. */
function skewAt(subtasks: number, shards: number): number {
  const known = skews.get(subtasks);
  if (known !== undefined) return known;
  const skew = Math.max(...shardSizes(subtaskIdsFor(subtasks), shards)) / (subtasks / shards);
  skews.set(subtasks, skew);
  return skew;
}

/**
 * Streamed at `MODEL_SUBTASKS` subtasks:
 *   max statuses/s = min( S × 1,000 / (s × k),  1,000 × B / (f × ρ) ),  provided f × S / W ≤ 1,000.
 * Subtask writes spread over the S shard partitions (the busiest holds k / S of the subtasks). The task partition
 * `TASK#<id>` takes one counter write and the task writes of every recount. A shard is recounted once per stream
 * batch holding its records: once per batching window W while its records trickle in (S / W recounts a second for
 * the task, whatever the rate), or once per B records when batches fill first (R × ρ / B).
 */
export function streamedModel(
  figures: StreamedFigures,
  applied: number,
  fanOut: number,
  applierBatchSize: number,
  subtasks: number = MODEL_SUBTASKS,
): StreamedModel {
  const S = writeShardCount(subtasks);
  const k = skewAt(subtasks, S);
  const s = applied === 0 ? 0 : figures.writes.subtask.units / applied;
  const rho = applied === 0 ? 0 : figures.subtaskWrites / applied;
  const recounts = Math.max(1, figures.recounts);
  // The task item grows with the subtasks (one `shard_sizes` entry per shard, more digits in every count).
  const taskItemBytes = figures.largestItemBytes.task + taskItemBytesAt(subtasks) - taskItemBytesAt(fanOut);
  const counterUnitsPerRecount = figures.writes.counter.units / recounts;
  const taskWritesPerRecount = figures.writes.task.attempts / recounts;
  const f = counterUnitsPerRecount + taskWritesPerRecount * writeUnitsForBytes(taskItemBytes);
  const W = figures.aggregator.batchingWindowMs / 1_000;
  const B = figures.aggregator.batchSize;
  const subtaskPartitionsBound = s === 0 ? Infinity : (S * PARTITION_WRITE_UNITS_PER_SECOND) / (s * k);
  const windowWriteLoad = (f * S) / W;
  const taskPartitionBound = f * rho === 0 ? Infinity : (PARTITION_WRITE_UNITS_PER_SECOND * B) / (f * rho);
  const maxStatusesPerSecond =
    windowWriteLoad > PARTITION_WRITE_UNITS_PER_SECOND
      ? 0
      : Math.min(subtaskPartitionsBound, taskPartitionBound);
  // Reads on the task partition per recount: the fold's task reads, and each refresh's one Query of all S
  // counters, billed by their size together (4 KB a unit).
  const taskReadsPerRecount = figures.reads.fold.task.requests / recounts;
  const counterQueriesPerRecount = figures.reads.fold.counter.requests / recounts;
  const counterQueryUnits = itemReadUnits(S * Math.max(1, figures.largestItemBytes.counter));
  const q = taskReadsPerRecount * itemReadUnits(taskItemBytes) + counterQueriesPerRecount * counterQueryUnits;
  const windowReadLoad = (q * S) / W;
  // A shard's Query reads its ~1,000 items whatever the fan-out: measured per recount.
  const foldReadUnitsPerRecount = figures.reads.fold.subtask.units / recounts + q;
  const recountsPerSecond = Math.max(S / W, (READ_MODEL_RATE * rho) / B);
  const loads = partitionLoads(figures, applied, applierBatchSize, { S, k, s, rho, W, B, taskItemBytes });
  return {
    kind: 'streamed',
    subtasks,
    writeShards: S,
    skew: k,
    subtaskUnitsPerStatus: s,
    writesPerStatus: rho,
    taskItemBytes,
    taskPartitionUnitsPerRecount: f,
    batchingWindowSeconds: W,
    batchSize: B,
    subtaskPartitionsBound,
    windowWriteLoad,
    taskPartitionBound,
    maxStatusesPerSecond,
    taskPartitionReadUnitsPerRecount: q,
    windowReadLoad,
    foldReadUnitsPerRecount,
    foldReadUnitsPerStatusAtRate: (foldReadUnitsPerRecount * recountsPerSecond) / READ_MODEL_RATE,
    readModelRate: READ_MODEL_RATE,
    ...loads,
    ...(windowReadLoad > PARTITION_READ_UNITS_PER_SECOND
      ? { readLimitedShardRecountSeconds: S / (PARTITION_READ_UNITS_PER_SECOND / q) }
      : {}),
  };
}

interface ModelTerms {
  readonly S: number;
  readonly k: number;
  readonly s: number;
  readonly rho: number;
  readonly W: number;
  readonly B: number;
  readonly taskItemBytes: number;
}

/**
 * Peak partition loads at `READ_MODEL_RATE` statuses/s. Each stream shard batches its own records, and a write
 * shard's partition key may sit on a table partition (so a stream shard) of its own: at worst every batch holds
 * one write shard of the task, so the task is refreshed T = max(S / W, R × ρ / B) times a second, each refresh
 * one task read, one Query of its S counters (billed by size) and one task write, as measured per refresh. Each
 * write shard is recounted once per window (its Query as measured). The appliers' reads scale with the rate as
 * measured per status, their task reads with the deployed batch size. The due index takes at most the task
 * writes that moved the task's due time (measured).
 */
function partitionLoads(
  figures: StreamedFigures,
  applied: number,
  applierBatchSize: number,
  { S, k, s, rho, W, B, taskItemBytes }: ModelTerms,
): Pick<StreamedModel, 'refreshesPerSecond' | 'partitions' | 'readUnitsPerStatus'> {
  const R = READ_MODEL_RATE;
  const perStatus = (units: number) => (applied === 0 ? 0 : units / applied);
  const readUnitsPerStatus = {
    applier: mapKinds((kind) => perStatus(figures.reads.applier[kind].units)),
    fold: mapKinds((kind) => perStatus(figures.reads.fold[kind].units)),
  };
  const refreshes = Math.max(1, figures.reads.fold.counter.requests);
  const recounts = Math.max(1, figures.recounts);
  const T = Math.max(S / W, (R * rho) / B);
  const counterBytes = Math.max(1, figures.largestItemBytes.counter);
  const taskReadUnits = itemReadUnits(taskItemBytes);
  const refreshReadUnits =
    (figures.reads.fold.task.requests / refreshes) * taskReadUnits + itemReadUnits(S * counterBytes);
  const taskWritesPerRefresh = figures.writes.task.attempts / refreshes;
  const counterUnitsPerRecount = figures.writes.counter.units / recounts;
  // The appliers read the task item once per task per batch (eventually consistent): their reads per status as
  // measured, each of the task item at this size, in the deployed batches (a hot task fills them) rather than
  // the row's.
  const deployedBatches = Math.min(1, applierBatchSize / APPLIER.batchSize);
  const applierTaskReadUnits =
    perStatus(figures.reads.applier.task.requests) * deployedBatches * itemReadUnits(taskItemBytes, false);
  const recountsPerSecond = S / W;
  const shardQueryUnits = figures.reads.fold.subtask.units / recounts;
  const indexUnitsPerTaskWrite =
    figures.writes.task.attempts === 0 ? 0 : figures.indexUnits / figures.writes.task.attempts;
  return {
    refreshesPerSecond: T,
    readUnitsPerStatus,
    partitions: [
      {
        partition: 'task',
        readUnitsPerSecond: T * refreshReadUnits + R * applierTaskReadUnits,
        writeUnitsPerSecond:
          recountsPerSecond * counterUnitsPerRecount +
          T * taskWritesPerRefresh * writeUnitsForBytes(taskItemBytes),
      },
      {
        partition: 'busiest write shard',
        readUnitsPerSecond: ((R * k) / S) * readUnitsPerStatus.applier.subtask + shardQueryUnits / W,
        writeUnitsPerSecond: (R * s * k) / S,
      },
      {
        partition: 'due index',
        readUnitsPerSecond: 0,
        writeUnitsPerSecond: T * taskWritesPerRefresh * indexUnitsPerTaskWrite,
      },
    ],
  };
}

function mapKinds(value: (kind: ItemKind) => number): Record<ItemKind, number> {
  return { task: value('task'), counter: value('counter'), subtask: value('subtask') };
}

/** Round 1: every status's transaction lands in the task's one partition, at any fan-out. */
export function transactionalModel(billedPerStatus: number, committedPerStatus: number): TransactionalModel {
  const within = (units: number) => (units === 0 ? Infinity : PARTITION_WRITE_UNITS_PER_SECOND / units);
  return {
    kind: 'transactional',
    maxStatusesPerSecond: within(billedPerStatus),
    maxStatusesPerSecondCommitted: within(committedPerStatus),
  };
}
