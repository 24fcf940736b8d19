/**
 * Stands in for Lambda's DynamoDB Streams event source mapping: finds the stream's shards, reads each one in
 * order (a parent to its end before its children), gathers a batch within the batching window, invokes the
 * function with a real-shaped `DynamoDBStreamEvent` and keeps a checkpoint per shard. Partial batch responses
 * are always on: the checkpoint moves to just before the lowest failed sequence number. A whole-batch failure
 * is bisected (when asked) and retried for ever, as with `MaximumRetryAttempts: -1`: a record that keeps failing
 * holds its shard up, exactly as it would in AWS. One batch at a time per shard (a `ParallelizationFactor` of 1,
 * so records stay in order per shard, not just per item). Checkpoints live in memory: a new poller starts again
 * from its starting position.
 */

import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { sleep } from '../lambdas/core/backoff';
import { AGGREGATOR, serviceName } from '../lambdas/service-settings';
import type { EventSourceOptions } from './lambda-invocation';
import { DeadlineInvocations, describeError, failedItems, InvocationTimeoutError } from './lambda-invocation';
import { sequenceNumber, toRecord } from './lambda-stream-records';
import { deferred, newShard, type ShardState, WakeableTimer } from './stream-shard';

export type StreamHandler = (
  event: DynamoDBStreamEvent,
  context: Context,
  // biome-ignore lint/suspicious/noConfusingVoidType: Lambda's own `DynamoDBStreamHandler` may return nothing.
) => Promise<DynamoDBBatchResponse | undefined | void>;

export interface StreamBatchReport {
  readonly shardId: string;
  readonly records: number;
  /** Records that will be handed over again: the whole batch, or those from the lowest failed one on. */
  readonly retried: number;
  readonly durationMs: number;
  /** Why the whole batch failed (the handler threw, timed out or answered nonsense). */
  readonly failure?: string;
}

export interface StreamPollerOptions extends EventSourceOptions<StreamBatchReport> {
  readonly streams: DynamoDBStreamsClient;
  /** Goes into each record's `eventSourceARN`. */
  readonly streamArn: string;
  /** Goes into each record's `awsRegion` (DynamoDB Local reports its own, `ddblocal`). */
  readonly region: string;
  readonly handler: StreamHandler;
  /** Where to start in the shards open when the poller starts; shards that appear later are read whole. @default 'TRIM_HORIZON' */
  readonly startingPosition?: 'TRIM_HORIZON' | 'LATEST';
  /** Split a batch that failed as a whole in two and retry each half in turn. @default true */
  readonly bisectBatchOnError?: boolean;
}

export interface StreamPoller {
  /** Finishes the batch in hand, then resolves. Idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves once every record written to the stream before this call (from the starting position on) has been
   * handed to the handler and succeeded: the poller has read to the end of each shard with nothing left to
   * retry. For tests and scripts that must wait for the fold to catch up. Rejects if the poller stops first.
   */
  caughtUp(): Promise<void>;
}

/** GetRecords returns at most 1,000 records a call. */
const GET_RECORDS_LIMIT = 1_000;
/** Pause between reads of a shard that had nothing new: GetRecords on DynamoDB Local never waits. */
const IDLE_POLL_MS = 250;
/** Pause between reads that found nothing while a batching window is open. */
const SHORT_POLL_PAUSE_MS = 50;
/** Shards close and new ones open (every few hours in AWS): look for new ones this often, and whenever one ends. */
const DISCOVERY_INTERVAL_MS = 10_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

/** 100 ms after the first failure in a row, doubling up to 5 s. */
function backoffMs(failures: number): number {
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
}

interface CatchUpWaiter {
  readonly tick: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Starts polling `streamArn` at once, with Lambda's defaults for the aggregator; `stop()` ends it, `caughtUp()`
 * waits for the handler to have succeeded on everything written so far.
 */
export function startStreamPoller(options: StreamPollerOptions): StreamPoller {
  const { streams, streamArn, region, handler } = options;
  const batchSize = options.batchSize ?? AGGREGATOR.batchSize;
  const windowMs = options.batchingWindowMs ?? AGGREGATOR.maxBatchingWindowSeconds * 1000;
  const timeoutMs = options.timeoutMs ?? AGGREGATOR.timeoutSeconds * 1000;
  const startingPosition = options.startingPosition ?? 'TRIM_HORIZON';
  const bisect = options.bisectBatchOnError ?? true;
  const functionName = options.functionName ?? serviceName('aggregator');
  const onError = options.onError ?? (() => undefined);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be a whole number of at least 1: ${batchSize}`);
  }

  let stopping = false;
  const stopSignal = deferred();
  const shards = new Map<string, ShardState>();
  const runners: Promise<void>[] = [];
  const invocations = new DeadlineInvocations();
  const discoveryTimer = new WakeableTimer();
  /** Set when a listing is wanted now: one that starts after the request, even if another is under way. */
  let relistRequested = false;
  /** Orders reads and listings against caughtUp() calls. */
  let clock = 0;
  /** Tick at which the last complete DescribeStream listing began; 0 before the first. */
  let listedAt = 0;
  const waiters = new Set<CatchUpWaiter>();

  function relist(): void {
    relistRequested = true;
    discoveryTimer.wake();
  }

  function settleWaiters(): void {
    for (const waiter of waiters) {
      const shardsCaughtUp = [...shards.values()].every((shard) => shard.done || shard.idleAt > waiter.tick);
      if (listedAt > waiter.tick && shardsCaughtUp) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  async function iteratorFor(shard: ShardState): Promise<string | undefined> {
    const position =
      shard.lastRead === undefined
        ? { ShardIteratorType: shard.startAt }
        : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' as const, SequenceNumber: shard.lastRead };
    const { ShardIterator } = await streams.send(
      new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.shardId, ...position }),
    );
    return ShardIterator;
  }

  /**
   * GetRecords from the shard's iterator. DynamoDB Local now and then answers a read of records just written with
   * `TrimmedDataAccessException` though nothing is older than a day (aws/aws-sdk-java#2923); a fresh iterator from
   * the same position reads them, so that one is tried before the failure counts.
   */
  async function getRecords(
    shard: ShardState,
    iterator: string,
    limit: number,
  ): Promise<GetRecordsCommandOutput> {
    try {
      return await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }));
    } catch (error) {
      if (!(error instanceof Error && error.name === 'TrimmedDataAccessException')) throw error;
      const fresh = await iteratorFor(shard);
      if (fresh === undefined) throw error;
      shard.iterator = fresh;
      return await streams.send(new GetRecordsCommand({ ShardIterator: fresh, Limit: limit }));
    }
  }

  /** One GetRecords call; what it returns joins `pending`. Returns how many records came. */
  async function read(shard: ShardState, limit: number): Promise<number> {
    const tick = ++clock;
    shard.iterator ??= await iteratorFor(shard);
    if (shard.iterator === undefined) {
      shard.closed = true;
      return 0;
    }
    let output: GetRecordsCommandOutput;
    try {
      output = await getRecords(shard, shard.iterator, limit);
    } catch (error) {
      // Expired, trimmed or simply failed: the next read starts from a fresh iterator after the last record read.
      shard.iterator = undefined;
      throw error;
    }
    const records = (output.Records ?? []).map((record) => toRecord(record, streamArn, region));
    const last = records.at(-1);
    if (last !== undefined) shard.lastRead = sequenceNumber(last);
    shard.pending.push(...records);
    shard.iterator = output.NextShardIterator ?? undefined;
    if (shard.iterator === undefined) shard.closed = true;
    if (records.length === 0 && shard.pending.length === 0) {
      shard.idleAt = tick;
      settleWaiters();
    }
    return records.length;
  }

  /**
   * The next batch of a shard: the next bisected part of a failed batch if there is one; otherwise up to
   * `batchSize` records, gathered until the batch is full or the batching window that the first record opened
   * has closed. Records still in hand from a failed batch open the window at once. Empty when the shard is idle.
   */
  async function nextBatch(shard: ShardState): Promise<DynamoDBRecord[]> {
    const part = shard.splits[0];
    if (part !== undefined) return shard.pending.slice(0, part);
    let windowEnd = shard.pending.length > 0 ? Date.now() + windowMs : undefined;
    while (shard.pending.length < batchSize && !shard.closed && !stopping) {
      if (windowEnd !== undefined && Date.now() >= windowEnd) break;
      let count: number;
      try {
        count = await read(shard, Math.min(GET_RECORDS_LIMIT, batchSize - shard.pending.length));
        shard.readFailures = 0;
      } catch (error) {
        if (shard.pending.length === 0) throw error;
        // Hand over what is in hand; the next batch reads on from a fresh iterator.
        onError(error);
        break;
      }
      if (windowEnd === undefined) {
        if (count === 0) break;
        windowEnd = Date.now() + windowMs;
      } else if (count === 0) {
        await sleep(Math.min(SHORT_POLL_PAUSE_MS, windowEnd - Date.now()));
      }
    }
    return shard.pending.slice(0, batchSize);
  }

  /** Invokes the handler; returns the index of the lowest failed record, or undefined if all succeeded. */
  async function invoke(records: readonly DynamoDBRecord[]): Promise<number | undefined> {
    const positions = new Map(records.map((record, index) => [sequenceNumber(record), index]));
    const response = await invocations.invoke(
      handler,
      // Each invocation gets its own copy, as each Lambda invocation parses its own JSON.
      { Records: structuredClone([...records]) },
      { functionName, region, memoryMiB: AGGREGATOR.memoryMiB },
      Date.now() + timeoutMs,
      () => new InvocationTimeoutError(timeoutMs),
    );
    const failed = failedItems(response, positions);
    return failed.length === 0 ? undefined : Math.min(...failed);
  }

  /** Hands `batch` to the handler and moves the shard's checkpoint. Returns whether anything must come again. */
  async function processBatch(shard: ShardState, batch: readonly DynamoDBRecord[]): Promise<boolean> {
    const started = Date.now();
    let failure: string | undefined;
    let succeeded: number;
    try {
      succeeded = (await invoke(batch)) ?? batch.length;
    } catch (error) {
      failure = describeError(error);
      succeeded = 0;
      onError(error);
    }
    // The checkpoint: the records before the lowest failure are done, whatever else the response said.
    shard.pending.splice(0, succeeded);
    const retried = batch.length - succeeded;
    const inPart = shard.splits.length > 0;
    if (retried === 0) {
      if (inPart) shard.splits.shift();
    } else if (failure !== undefined && bisect && batch.length > 1) {
      // Bisect: the first half first, then the second; either may be split again.
      const first = Math.ceil(batch.length / 2);
      shard.splits.splice(0, inPart ? 1 : 0, first, batch.length - first);
    } else if (bisect) {
      // A partial failure splits the batch at the failed record: only the rest is retried, on its own.
      shard.splits.splice(0, inPart ? 1 : 0, retried);
    }
    // Without bisecting, whatever is left in `pending` starts the next batch, which may gather newer records.
    shard.invokeFailures = retried === 0 ? 0 : shard.invokeFailures + 1;
    options.onBatch?.({
      shardId: shard.shardId,
      records: batch.length,
      retried,
      durationMs: Date.now() - started,
      ...(failure === undefined ? {} : { failure }),
    });
    return retried > 0;
  }

  function finishShard(shard: ShardState): void {
    shard.done = true;
    shard.finish();
    // Its children may already be listed; if not, look for them now rather than at the next periodic listing.
    relist();
    settleWaiters();
  }

  async function runShard(shard: ShardState): Promise<void> {
    const parent = shard.parentShardId === undefined ? undefined : shards.get(shard.parentShardId);
    if (parent !== undefined && shard.waitsForParent) {
      await Promise.race([parent.finished, stopSignal.promise]);
    }
    while (!stopping) {
      try {
        const batch = await nextBatch(shard);
        if (stopping) break; // Records gathered but not handed over: a new poller reads them again.
        if (batch.length > 0) {
          const failed = await processBatch(shard, batch);
          if (failed && !stopping) await shard.timer.sleep(backoffMs(shard.invokeFailures));
        } else if (shard.closed) {
          finishShard(shard);
          return;
        } else {
          shard.idle = true;
          await shard.timer.sleep(IDLE_POLL_MS);
          shard.idle = false;
        }
      } catch (error) {
        onError(error);
        shard.readFailures += 1;
        if (!stopping) await shard.timer.sleep(backoffMs(shard.readFailures));
      }
    }
  }

  /** Lists every shard of the stream and starts reading the new ones. */
  async function discover(): Promise<void> {
    const tick = ++clock;
    const listed: Shard[] = [];
    let exclusiveStartShardId: string | undefined;
    do {
      const { StreamDescription } = await streams.send(
        new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: exclusiveStartShardId }),
      );
      listed.push(...(StreamDescription?.Shards ?? []));
      exclusiveStartShardId = StreamDescription?.LastEvaluatedShardId;
    } while (exclusiveStartShardId !== undefined);
    const initial = listedAt === 0;
    const added: ShardState[] = [];
    for (const shard of listed) {
      if (shard.ShardId === undefined || shards.has(shard.ShardId)) continue;
      // Shards that open after the start hold only new records: they are read whole, whatever the position.
      const startAt = initial ? startingPosition : 'TRIM_HORIZON';
      const state = newShard({ ...shard, ShardId: shard.ShardId }, startAt, startAt === 'TRIM_HORIZON');
      shards.set(state.shardId, state);
      added.push(state);
    }
    // Every shard of the listing is known before any starts, so each child finds its parent.
    if (!stopping) for (const shard of added) runners.push(runShard(shard));
    listedAt = tick;
    settleWaiters();
  }

  async function discoveryLoop(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      relistRequested = false;
      try {
        await discover();
        failures = 0;
      } catch (error) {
        onError(error);
        failures += 1;
      }
      if (stopping || (relistRequested && failures === 0)) continue;
      await discoveryTimer.sleep(failures > 0 ? backoffMs(failures) : DISCOVERY_INTERVAL_MS);
    }
  }

  const discovery = discoveryLoop();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      if (stopped !== undefined) return stopped;
      stopping = true;
      stopSignal.resolve();
      discoveryTimer.wake();
      for (const shard of shards.values()) shard.timer.wake();
      for (const waiter of waiters) waiter.reject(new Error('The stream poller stopped before catching up'));
      waiters.clear();
      stopped = discovery.then(async () => {
        await Promise.all(runners);
        await invocations.settled();
      });
      return stopped;
    },
    caughtUp() {
      if (stopping) return Promise.reject(new Error('The stream poller is stopped'));
      return new Promise<void>((resolve, reject) => {
        waiters.add({ tick: ++clock, resolve, reject });
        // A fresh listing and a fresh read of every idle shard, rather than waiting for their timers.
        relist();
        for (const shard of shards.values()) if (shard.idle) shard.timer.wake();
      });
    },
  };
}
