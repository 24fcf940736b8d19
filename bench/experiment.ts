import { DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createTaskTable } from '../local/resources';
import { drive } from './driver';
import { exactnessProblems } from './exactness';
import { ItemTooLargeError } from './single-item-store';
import { createStrategy, type StrategyName } from './strategies';
import { expectedProgress, type Workload } from './workload';
import { WriteTally } from './write-tally';

/** One row of the bench: a strategy applying one workload with a given concurrency and Lambda batch size. */

export interface Cell {
  readonly strategy: StrategyName;
  readonly fanOut: number;
  readonly appliers: number;
  readonly batchSize: number;
}

/** The one-task write budget DynamoDB gives a partition: 1,000 write units a second. */
export const PARTITION_WRITE_UNITS_PER_SECOND = 1_000;

export interface RowResult extends Cell {
  /** `item-too-large`: DynamoDB refused the single item (over 400 KB) — a finding, not a failure. */
  readonly status: 'ok' | 'item-too-large' | 'failed';
  readonly note?: string;
  readonly deliveries: number;
  /** Deliveries taken within the row's time budget; the figures and the exactness check cover exactly these. */
  readonly deliveriesTaken: number;
  /** Whether every delivery of the workload was taken within the budget. */
  readonly complete: boolean;
  readonly applied: number;
  readonly duplicate: number;
  readonly stale: number;
  readonly redelivered: number;
  readonly batches: number;
  readonly seconds: number;
  readonly statusesPerSecond: number;
  readonly commits: number;
  readonly conflicts: number;
  readonly committedUnits: number;
  readonly canceledUnits: number;
  /** Units of committed writes per applied status. */
  readonly unitsPerStatusCommitted: number;
  /** Units of every write attempt, canceled ones included, as DynamoDB bills them, per applied status. */
  readonly unitsPerStatusBilled: number;
  /**
   * The same if a canceled transaction were billed only its prepare phase (half its items' units): the
   * documentation says a canceled transaction's capacity is consumed but not how much, so DynamoDB's bill lies
   * between the two. Failed conditional puts are billed in full either way, as documented.
   */
  readonly unitsPerStatusBilledLowerBound: number;
  readonly conflictsPerStatus: number;
  /** Deliveries handed back for redelivery (their cycle ran out of attempts) per applied status. */
  readonly retriesPerStatus: number;
  readonly batchLatencyMs: { readonly p50: number; readonly p99: number };
  readonly largestItemBytes: number;
  /** Null when the run could not measure it (item too large, run aborted). */
  readonly exact: boolean | null;
  readonly problems: readonly string[];
  /** Where DynamoDB Local reports units as DynamoDB does (plain PutItem), its total against ours. */
  readonly emulatorCheck?: { readonly reportedUnits: number; readonly meteredUnits: number };
  /**
   * Model for real DynamoDB: the most statuses a second one task can take before its partition's 1,000 write
   * units a second run out, from this row's units per status.
   */
  readonly modelMaxStatusesPerSecond: { readonly committed: number; readonly billed: number };
}

export interface ExperimentContext {
  readonly client: DynamoDBClient;
  readonly db: DynamoDBDocumentClient;
  /** Stop taking new deliveries after this long. */
  readonly rowBudgetSeconds: number;
  /** Abandon the row (and fail the bench) after this long. */
  readonly rowTimeoutSeconds: number;
  readonly maxDeliveries: number;
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

const perStatus = (amount: number, applied: number): number => (applied === 0 ? 0 : amount / applied);
const statusesWithin = (units: number): number =>
  units === 0 ? Number.POSITIVE_INFINITY : PARTITION_WRITE_UNITS_PER_SECOND / units;

let tableSequence = 0;

/** Runs one cell on a fresh table, checks it against the ground truth, and drops the table. */
export async function runExperiment(
  cell: Cell,
  workload: Workload,
  context: ExperimentContext,
): Promise<RowResult> {
  const tableName = `bench-${process.pid}-${++tableSequence}`;
  await createTaskTable(context.client, tableName);
  const tally = new WriteTally();
  const strategy = createStrategy(cell.strategy, context.db, tableName, workload.taskId, tally);
  let status: RowResult['status'] = 'ok';
  let note: string | undefined;
  let drove: Awaited<ReturnType<typeof drive>> | undefined;
  try {
    await strategy.initialize(
      {
        taskId: workload.taskId,
        actionName: 'emailed',
        total: workload.subtaskIds.length * 100,
        subtaskIds: workload.subtaskIds,
      },
      Date.now(),
    );
    drove = await drive(
      workload.deliveries,
      {
        appliers: cell.appliers,
        batchSize: cell.batchSize,
        budgetMs: context.rowBudgetSeconds * 1_000,
        timeoutMs: context.rowTimeoutSeconds * 1_000,
        maxDeliveries: context.maxDeliveries,
      },
      (batch, mayStart) => strategy.processBatch(batch, mayStart),
    );
  } catch (error) {
    if (error instanceof ItemTooLargeError) {
      status = 'item-too-large';
      note = `item of ${error.itemBytes.toLocaleString('en-US')} bytes refused (limit 409,600)`;
      tally.largestItemBytes = Math.max(tally.largestItemBytes, error.itemBytes);
    } else {
      status = 'failed';
      note = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }

  let exact: boolean | null = null;
  const problems: string[] = [];
  const complete = drove !== undefined && drove.taken.length === workload.deliveries.length;
  if (status === 'ok' && drove !== undefined) {
    const expected = complete ? workload.expected : expectedProgress(workload.subtaskIds.length, drove.taken);
    problems.push(...exactnessProblems(await strategy.finalState(), expected, tally.commits));
    if (drove.rejected > 0) problems.push(`${drove.rejected} deliveries were dead-lettered`);
    exact = problems.length === 0;
  }
  await context.client.send(new DeleteTableCommand({ TableName: tableName }));

  const applied = drove?.applied ?? 0;
  const billedUnits = tally.committedUnits + tally.canceledUnits;
  const unitsPerStatusCommitted = perStatus(tally.committedUnits, applied);
  const unitsPerStatusBilled = perStatus(billedUnits, applied);
  const seconds = (drove?.elapsedMs ?? 0) / 1_000;
  return {
    ...cell,
    status,
    ...(note === undefined ? {} : { note }),
    deliveries: workload.deliveries.length,
    deliveriesTaken: drove?.taken.length ?? 0,
    complete,
    applied,
    duplicate: drove?.duplicate ?? 0,
    stale: drove?.stale ?? 0,
    redelivered: drove?.redelivered ?? 0,
    batches: drove?.batchLatenciesMs.length ?? 0,
    seconds,
    statusesPerSecond: seconds === 0 ? 0 : applied / seconds,
    commits: tally.commits,
    conflicts: tally.conflicts,
    committedUnits: tally.committedUnits,
    canceledUnits: tally.canceledUnits,
    unitsPerStatusCommitted,
    unitsPerStatusBilled,
    unitsPerStatusBilledLowerBound: perStatus(billedUnits - tally.canceledTransactionUnits / 2, applied),
    conflictsPerStatus: perStatus(tally.conflicts, applied),
    retriesPerStatus: perStatus(drove?.redelivered ?? 0, applied),
    batchLatencyMs: {
      p50: percentile(drove?.batchLatenciesMs ?? [], 0.5),
      p99: percentile(drove?.batchLatenciesMs ?? [], 0.99),
    },
    largestItemBytes: tally.largestItemBytes,
    exact,
    problems,
    ...(tally.emulatorReportedWrites === 0
      ? {}
      : {
          emulatorCheck: { reportedUnits: tally.emulatorReportedUnits, meteredUnits: tally.committedUnits },
        }),
    modelMaxStatusesPerSecond: {
      committed: statusesWithin(unitsPerStatusCommitted),
      billed: statusesWithin(unitsPerStatusBilled),
    },
  };
}
