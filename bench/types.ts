/**
 * What the driver (`driver.ts`) and the strategies (`streamed/`, `transactional/`, chosen in `strategies.ts`)
 * share: a strategy takes one Lambda batch at a time and says which deliveries must come back. Kept apart so that
 * neither imports the other.
 */

import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SubtaskStatus } from '../lambdas/core/subtask-status';
import type { ItemKind } from '../lambdas/store/task-store';
import type { Delivery } from '../test/support/workload';
import type { ReadCount, Role, WriteCount } from './streamed/meter';
import type { ReadLagSummary } from './streamed/read-lag';

export const STRATEGY_NAMES = ['streamed', 'coalesced'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Whether a strategy may still start on a delivery; false once the budget is spent and it was never started. */
export type MayStart = (delivery: Delivery) => boolean;

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

export const NOTHING_STARTED = (batch: readonly Delivery[]): BatchOutcome => ({
  again: [],
  untouched: batch,
  applied: 0,
  duplicate: 0,
  stale: 0,
  rejected: 0,
});

/** What the task shows once a run is over, in the fields both layouts share. */
export interface FinalTask {
  readonly task_state: string;
  readonly task_output: {
    readonly attempted: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly skipped: number;
  };
  readonly subtasks: { readonly total: number; readonly succeeded: number; readonly failed: number };
  /** Live counts of the subtasks still running (streamed only). */
  readonly in_flight?: {
    readonly attempted: number;
    readonly succeeded: number;
    readonly failed: number;
    readonly skipped: number;
  };
}

/** What the table holds once the run is over, to compare with the ground truth. */
export interface FinalState {
  readonly task: FinalTask | undefined;
  readonly statuses: ReadonlyMap<string, SubtaskStatus>;
  /**
   * The check that no write was lost or doubled: each versioned item's stored version against the writes the
   * bench saw committed to it (the task item for the transactional layout, each subtask item for streamed).
   */
  readonly versions: readonly VersionCheck[];
}

export interface VersionCheck {
  readonly item: string;
  readonly stored: number;
  readonly expected: number;
}

/** The task a row initializes: the bench's workload task. */
export interface TaskRequest {
  readonly taskId: string;
  readonly actionName: string;
  readonly total: number;
  readonly subtaskIds: readonly string[];
}

/** What a strategy is given: a fresh table (with its stream) for its row. */
export interface StrategyContext {
  /** The appliers' client. */
  readonly db: DynamoDBDocumentClient;
  /**
   * A client of its own (own connections), for what runs beside the appliers in production (the aggregator
   * Lambda, API readers), so that it does not queue behind the appliers' requests; `close()` destroys it.
   */
  readonly newClient: () => { readonly db: DynamoDBDocumentClient; close(): void };
  readonly streams: DynamoDBStreamsClient;
  readonly tableName: string;
  readonly streamArn: string;
  readonly taskId: string;
}

export interface Strategy {
  initialize(request: TaskRequest): Promise<void>;
  processBatch(batch: readonly Delivery[], mayStart: MayStart): Promise<BatchOutcome>;
  /** Once the appliers are done: waits for whatever runs behind them (the aggregator) to catch up. */
  settle(): Promise<void>;
  /** The metered figures of the run; taken before `finalState`, whose reads are not part of the run. */
  figures(): StrategyFigures;
  finalState(): Promise<FinalState>;
  /** Stops whatever the strategy started; idempotent. */
  close(): Promise<void>;
}

export interface StrategyFigures {
  /** Write units of every write sent, refused ones included, as DynamoDB bills them (index writes included). */
  readonly billedUnits: number;
  /** Write units of the writes that took effect. */
  readonly committedUnits: number;
  /** Writes refused because another writer got there first (subtask puts; whole transactions). */
  readonly conflicts: number;
  /** Read units as DynamoDB Local reports them: the appliers' reads and the aggregator's. */
  readonly readUnits: { readonly applier: number; readonly fold: number };
  readonly largestItemBytes: number;
  readonly transactional?: TransactionalFigures;
  readonly streamed?: StreamedFigures;
}

export interface TransactionalFigures {
  readonly commits: number;
  readonly canceledUnits: number;
  readonly taskReadUnits: number;
  readonly subtaskReadUnits: number;
}

export interface StreamedFigures {
  readonly writes: Readonly<Record<ItemKind, WriteCount>>;
  readonly indexUnits: number;
  readonly reads: Readonly<Record<Role, Readonly<Record<ItemKind, ReadCount>>>>;
  readonly largestItemBytes: Readonly<Record<ItemKind, number>>;
  /** Subtask items written (applied), all told. */
  readonly subtaskWrites: number;
  /** Handler invocations of the stream poller once the appliers started. */
  readonly foldBatches: number;
  /** How long the aggregator took per stream batch (wall time of the handler). */
  readonly foldBatchMs: { readonly p50: number; readonly max: number };
  /** Shard recounts (each writes one counter, applied or dropped by the `vsum` guard). */
  readonly recounts: number;
  /** From the appliers' end until the poller had caught up. */
  readonly catchUpSeconds: number;
  /** Errors and warnings the aggregator logged, and batches the poller saw fail whole. */
  readonly foldProblems: readonly string[];
  readonly readLag: ReadLagSummary;
  readonly aggregator: { readonly batchSize: number; readonly batchingWindowMs: number };
}
