/** One row of the bench: a strategy applying one workload with a given concurrency and Lambda batch size. */

import { DeleteTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createTaskTable } from '../local/resources';
import { expectedProgress, type Workload } from '../test/support/workload';
import { drive } from './driver';
import { exactnessProblems } from './exactness';
import { type StreamedModel, streamedModel, type TransactionalModel, transactionalModel } from './model';
import { createStrategy } from './strategies';
import { percentile } from './streamed/read-lag';
import type {
  Strategy,
  StrategyContext,
  StrategyFigures,
  StrategyName,
  StreamedFigures,
  TransactionalFigures,
} from './types';

export interface Cell {
  readonly strategy: StrategyName;
  readonly fanOut: number;
  readonly appliers: number;
  readonly batchSize: number;
}

export interface RowResult extends Cell {
  readonly status: 'ok' | 'failed';
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
  /** The appliers' wall time: from the first batch taken to the last one answered. */
  readonly seconds: number;
  readonly statusesPerSecond: number;
  /** Units of every write sent, refused ones included, per applied status. */
  readonly unitsPerStatusBilled: number;
  /** Units of the writes that took effect, per applied status. */
  readonly unitsPerStatusCommitted: number;
  readonly conflictsPerStatus: number;
  /** Deliveries handed back for redelivery (their cycle ran out of attempts) per applied status. */
  readonly retriesPerStatus: number;
  /** Read units per applied status, as DynamoDB Local reports them. */
  readonly readUnitsPerStatus: { readonly applier: number; readonly fold: number; readonly total: number };
  readonly batchLatencyMs: { readonly p50: number; readonly p99: number };
  readonly largestItemBytes: number;
  /** Null when the run could not measure it (run aborted). */
  readonly exact: boolean | null;
  readonly problems: readonly string[];
  readonly model?: StreamedModel | TransactionalModel;
  readonly figures?: StrategyFigures;
  readonly streamed?: StreamedRow;
  readonly transactional?: TransactionalRow;
}

/** Per applied status unless said otherwise. */
export interface StreamedRow {
  readonly subtaskUnits: number;
  /** The part of `subtaskUnits` that refused (condition-failed) puts account for. */
  readonly refusedSubtaskUnits: number;
  readonly counterUnits: number;
  readonly taskUnits: number;
  readonly indexUnits: number;
  readonly foldBatches: number;
  readonly foldBatchMs: StreamedFigures['foldBatchMs'];
  readonly recounts: number;
  readonly statusesPerRecount: number;
  /** Counter, task and index units per recount, refused writes included. */
  readonly foldUnitsPerRecount: number;
  readonly foldReadUnitsPerRecount: number;
  /** Condition-failed counter and task writes (dropped recounts, overtaken refreshes). */
  readonly foldRefusedWrites: number;
  readonly catchUpSeconds: number;
  readonly readLag: StreamedFigures['readLag'];
  readonly aggregator: StreamedFigures['aggregator'];
  readonly foldProblems: readonly string[];
}

export interface TransactionalRow extends TransactionalFigures {
  /** The billed units if a canceled transaction were billed only its prepare phase (half its items' units). */
  readonly unitsPerStatusBilledLowerBound: number;
}

export interface ExperimentContext {
  readonly client: DynamoDBClient;
  readonly db: DynamoDBDocumentClient;
  readonly newClient: StrategyContext['newClient'];
  readonly streams: DynamoDBStreamsClient;
  /** Stop taking new deliveries after this long. */
  readonly rowBudgetSeconds: number;
  /** Abandon the row (and fail the bench) after this long. */
  readonly rowTimeoutSeconds: number;
  readonly maxDeliveries: number;
}

const perStatus = (amount: number, applied: number): number => (applied === 0 ? 0 : amount / applied);

let tableSequence = 0;

function streamedRow(figures: StreamedFigures, applied: number): StreamedRow {
  const { writes } = figures;
  const recounts = figures.recounts;
  const foldUnits = writes.counter.units + writes.task.units + figures.indexUnits;
  const foldReads = Object.values(figures.reads.fold).reduce((sum, read) => sum + read.units, 0);
  return {
    subtaskUnits: perStatus(writes.subtask.units, applied),
    refusedSubtaskUnits: perStatus(writes.subtask.failedUnits, applied),
    counterUnits: perStatus(writes.counter.units, applied),
    taskUnits: perStatus(writes.task.units, applied),
    indexUnits: perStatus(figures.indexUnits, applied),
    foldBatches: figures.foldBatches,
    foldBatchMs: figures.foldBatchMs,
    recounts,
    statusesPerRecount: recounts === 0 ? 0 : applied / recounts,
    foldUnitsPerRecount: recounts === 0 ? 0 : foldUnits / recounts,
    foldReadUnitsPerRecount: recounts === 0 ? 0 : foldReads / recounts,
    foldRefusedWrites: writes.counter.failed + writes.task.failed,
    catchUpSeconds: figures.catchUpSeconds,
    readLag: figures.readLag,
    aggregator: figures.aggregator,
    foldProblems: figures.foldProblems,
  };
}

/** Runs one cell on a fresh table, checks it against the ground truth, and drops the table. */
export async function runExperiment(
  cell: Cell,
  workload: Workload,
  context: ExperimentContext,
): Promise<RowResult> {
  const tableName = `bench-${process.pid}-${++tableSequence}`;
  const streamArn = await createTaskTable(context.client, tableName);
  const strategy: Strategy = createStrategy(cell.strategy, {
    db: context.db,
    newClient: context.newClient,
    streams: context.streams,
    tableName,
    streamArn,
    taskId: workload.taskId,
  });
  let status: RowResult['status'] = 'ok';
  let note: string | undefined;
  let drove: Awaited<ReturnType<typeof drive>> | undefined;
  let figures: StrategyFigures | undefined;
  const problems: string[] = [];
  let exact: boolean | null = null;
  try {
    await strategy.initialize({
      taskId: workload.taskId,
      actionName: 'emailed',
      total: workload.subtaskIds.length * 100,
      subtaskIds: workload.subtaskIds,
    });
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
    await strategy.settle();
    figures = strategy.figures();
    const complete = drove.taken.length === workload.deliveries.length;
    const expected = complete ? workload.expected : expectedProgress(workload.subtaskIds.length, drove.taken);
    problems.push(...exactnessProblems(await strategy.finalState(), expected));
    if (drove.rejected > 0) problems.push(`${drove.rejected} deliveries were dead-lettered`);
    const lag = figures.streamed?.readLag;
    if (lag !== undefined && lag.unseen > 0) {
      problems.push(`${lag.unseen} applied subtask writes never showed in a read of the task`);
    }
    for (const problem of figures.streamed?.foldProblems ?? []) {
      if (problem.startsWith('error') || problem.startsWith('batch failed'))
        problems.push(`fold: ${problem}`);
    }
    exact = problems.length === 0;
  } catch (error) {
    status = 'failed';
    note = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } finally {
    await strategy.close();
    await context.client.send(new DeleteTableCommand({ TableName: tableName }));
  }

  const applied = drove?.applied ?? 0;
  const seconds = (drove?.elapsedMs ?? 0) / 1_000;
  const billed = figures?.billedUnits ?? 0;
  const readUnits = figures?.readUnits ?? { applier: 0, fold: 0 };
  const unitsPerStatusBilled = perStatus(billed, applied);
  const unitsPerStatusCommitted = perStatus(figures?.committedUnits ?? 0, applied);
  const row = {
    ...cell,
    status,
    ...(note === undefined ? {} : { note }),
    deliveries: workload.deliveries.length,
    deliveriesTaken: drove?.taken.length ?? 0,
    complete: drove !== undefined && drove.taken.length === workload.deliveries.length,
    applied,
    duplicate: drove?.duplicate ?? 0,
    stale: drove?.stale ?? 0,
    redelivered: drove?.redelivered ?? 0,
    batches: drove?.batchLatenciesMs.length ?? 0,
    seconds,
    statusesPerSecond: seconds === 0 ? 0 : applied / seconds,
    unitsPerStatusBilled,
    unitsPerStatusCommitted,
    conflictsPerStatus: perStatus(figures?.conflicts ?? 0, applied),
    retriesPerStatus: perStatus(drove?.redelivered ?? 0, applied),
    readUnitsPerStatus: {
      applier: perStatus(readUnits.applier, applied),
      fold: perStatus(readUnits.fold, applied),
      total: perStatus(readUnits.applier + readUnits.fold, applied),
    },
    batchLatencyMs: {
      p50: percentile(drove?.batchLatenciesMs ?? [], 0.5),
      p99: percentile(drove?.batchLatenciesMs ?? [], 0.99),
    },
    largestItemBytes: figures?.largestItemBytes ?? 0,
    exact,
    problems,
    ...(figures === undefined ? {} : { figures }),
  };
  if (figures?.streamed !== undefined) {
    return {
      ...row,
      streamed: streamedRow(figures.streamed, applied),
      model: streamedModel(figures.streamed, applied, cell.fanOut, cell.batchSize),
    };
  }
  if (figures?.transactional !== undefined) {
    const { canceledUnits } = figures.transactional;
    return {
      ...row,
      transactional: {
        ...figures.transactional,
        unitsPerStatusBilledLowerBound: perStatus(billed - canceledUnits / 2, applied),
      },
      model: transactionalModel(unitsPerStatusBilled, unitsPerStatusCommitted),
    };
  }
  return row;
}
