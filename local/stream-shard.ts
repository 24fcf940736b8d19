/** What the stream poller keeps for each shard it reads, and the timers its loops sleep on. */

import type { Shard } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';

/** A timer that `wake()` cuts short: stop() must not wait out a backoff, nor caughtUp() an idle pause. */
export class WakeableTimer {
  private ring: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), ms);
      this.ring = () => {
        clearTimeout(timer);
        this.ring = undefined;
        resolve();
      };
    });
  }

  wake(): void {
    this.ring?.();
  }
}

export interface ShardState {
  readonly shardId: string;
  readonly parentShardId: string | undefined;
  /** False for shards open when a LATEST poller starts: their parents are closed, and LATEST skips them anyway. */
  readonly waitsForParent: boolean;
  /** Where a fresh iterator starts while nothing has been read from the shard. */
  readonly startAt: 'TRIM_HORIZON' | 'LATEST';
  iterator: string | undefined;
  /** The last record read; a lost or expired iterator is replaced by one after it. */
  lastRead: string | undefined;
  /** Records read and not yet succeeded, in order: the batch being gathered, or what of it must come again. */
  pending: DynamoDBRecord[];
  /** Sizes of the bisected parts of a failed batch, to be retried one after the other from `pending`'s front. */
  splits: number[];
  /** GetRecords returned no next iterator: the shard ends with what has been read. */
  closed: boolean;
  /** Everything read from the closed shard succeeded. */
  done: boolean;
  /** Resolves when the shard is done: its children may start. */
  readonly finished: Promise<void>;
  readonly finish: () => void;
  /** Tick of the last read that found the shard at its end with nothing in hand. */
  idleAt: number;
  invokeFailures: number;
  readFailures: number;
  /** Waiting out the idle pause, which caughtUp() may cut short (never a backoff). */
  idle: boolean;
  readonly timer: WakeableTimer;
}

export interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

export function deferred(): Deferred {
  let resolve = () => {};
  const promise = new Promise<void>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

export function newShard(
  shard: Shard & { ShardId: string },
  startAt: ShardState['startAt'],
  waitsForParent: boolean,
): ShardState {
  const finished = deferred();
  return {
    shardId: shard.ShardId,
    parentShardId: shard.ParentShardId,
    waitsForParent,
    startAt,
    iterator: undefined,
    lastRead: undefined,
    pending: [],
    splits: [],
    closed: false,
    done: false,
    finished: finished.promise,
    finish: finished.resolve,
    idleAt: 0,
    invokeFailures: 0,
    readFailures: 0,
    idle: false,
    timer: new WakeableTimer(),
  };
}
