/**
 * Helpers the reliability suite shares: deliveries as SQS makes them, workloads over several tasks (from the
 * one workload module the bench uses too), the table's real stream read as Lambda hands it over, and the audit.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { AttributeValue as SdkAttributeValue } from '@aws-sdk/client-dynamodb';
import {
  type _Record,
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { GetQueueAttributesCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';
import type {
  AttributeValue,
  DynamoDBRecord,
  DynamoDBStreamEvent,
  SQSBatchResponse,
  SQSEvent,
  SQSMessageAttributes,
} from 'aws-lambda';
import { expect } from 'vitest';
import { type FoldBatchDependencies, foldBatch } from '../../lambdas/aggregator/fold-batch';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { createAggregatorHandler } from '../../lambdas/aggregator/stream-handler';
import { type ApplierDependencies, applyBatch } from '../../lambdas/applier/apply-batch';
import { createApplierHandler } from '../../lambdas/applier/sqs-batch-handler';
import { isTerminalState, type SubtaskStatus, sameStatus } from '../../lambdas/core/subtask-status';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import type { TaskStore } from '../../lambdas/store/task-store';
import { addTotals, type HarnessTotals, SILENT_LOG, ZERO_TOTALS } from '../support/applier-harness';
import { uniqueName } from '../support/aws';
import { initializeRequest, sqsRecord, subtaskIds, T0 } from '../support/factories';
import { shuffle, type Workload, type WorkloadShape, workloadFor } from '../support/workload';

/** Seeds are fixed so that a failure replays; `RELIABILITY_SEED=<n>` explores other runs. */
export const SEED = Number(process.env.RELIABILITY_SEED ?? 20_260_101);

// ---------------------------------------------------------------------------------------------------------------
// The status queue, as Lambda's SQS event source delivers it
// ---------------------------------------------------------------------------------------------------------------

/** One delivery of a queued message, as SQS hands it to the applier. */
export interface Delivery {
  readonly messageId: string;
  readonly body: string;
  /** Deliveries so far, this one included (SQS's `ApproximateReceiveCount`). */
  readonly receiveCount: number;
  /** The message's own attributes, as the producer sent them. */
  readonly attributes?: Readonly<Record<string, MessageAttributeValue>>;
}

/** Message attributes in the shape Lambda's SQS event spells them. */
function lambdaAttributes(attributes: Readonly<Record<string, MessageAttributeValue>>): SQSMessageAttributes {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        dataType: value.DataType ?? 'String',
        ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
        ...(value.BinaryValue === undefined
          ? {}
          : { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
        stringListValues: [],
        binaryListValues: [],
      },
    ]),
  );
}

export function sqsEventOf(deliveries: readonly Delivery[]): SQSEvent {
  return {
    Records: deliveries.map(({ messageId, body, receiveCount, attributes }) => ({
      ...sqsRecord(body, receiveCount),
      messageId,
      messageAttributes: attributes === undefined ? {} : lambdaAttributes(attributes),
    })),
  };
}

/** Takes the next batch off `pool`; SQS raises a message's receive count on every delivery. */
export function receiveBatch(pool: Delivery[], size: number): Delivery[] {
  return pool.splice(0, size).map((delivery) => ({ ...delivery, receiveCount: delivery.receiveCount + 1 }));
}

/** Puts deliveries back at random places: SQS redelivers them once their visibility timeout ends, in no order. */
export function redeliver(pool: Delivery[], deliveries: readonly Delivery[], random: () => number): void {
  for (const delivery of deliveries) pool.splice(Math.floor(random() * (pool.length + 1)), 0, delivery);
}

/** The deliveries of `batch` that the response hands back to SQS. */
export function failedDeliveries(batch: readonly Delivery[], response: SQSBatchResponse): Delivery[] {
  const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
  return batch.filter((delivery) => failed.has(delivery.messageId));
}

/** The applier's Lambda edge as deployed; the test environment silences its logs and metrics. */
export function applierHandler(dependencies: Omit<ApplierDependencies, 'log'>) {
  return createApplierHandler({
    ...dependencies,
    logger: new Logger({ serviceName: 'reliability' }),
    metrics: new Metrics({ namespace: 'Reliability' }),
  });
}

export interface ApplierPoolOptions extends Omit<ApplierDependencies, 'log' | 'receiveLimit'> {
  readonly deliveries: readonly Delivery[];
  /** Concurrent applier invocations. */
  readonly appliers: number;
  /** The largest batch; each batch takes a random size up to it. */
  readonly batchSize: number;
  readonly random: () => number;
  /** Stop after this many batches, so that a livelock fails the test instead of hanging it. */
  readonly maxBatches: number;
}

/**
 * SQS and Lambda's event source, in process: `appliers` concurrent loops take batches off one pool and put back,
 * at random places, whatever a batch hands back for retry. The receive limit is lifted: nothing is parked.
 */
export async function runApplierPool(options: ApplierPoolOptions): Promise<HarnessTotals> {
  const pool = [...options.deliveries];
  let totals = ZERO_TOTALS;
  let inFlight = 0;
  const worker = async () => {
    while (totals.batches < options.maxBatches) {
      if (pool.length === 0) {
        if (inFlight === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      inFlight++;
      try {
        const batch = receiveBatch(pool, 1 + Math.floor(options.random() * options.batchSize));
        const { retry, summary } = await applyBatch(batch, {
          ...options,
          log: SILENT_LOG,
          receiveLimit: Number.POSITIVE_INFINITY,
        });
        const again = new Set(retry);
        redeliver(
          pool,
          batch.filter((delivery) => again.has(delivery.messageId)),
          options.random,
        );
        totals = addTotals(totals, { ...summary, batches: 1, deliveries: batch.length });
      } finally {
        inFlight--;
      }
    }
    throw new Error(`The appliers did not drain the pool in ${options.maxBatches} batches`);
  };
  await Promise.all(Array.from({ length: options.appliers }, worker));
  return totals;
}

/** Messages a queue holds, visible or in flight or delayed: 0 means nothing was parked there. */
export async function queueDepth(client: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return Object.values(Attributes).reduce((sum, value) => sum + Number(value), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------------------------

export interface TaskWorkload {
  readonly taskId: string;
  /** Per subtask, every status its worker sent, the one terminal status last. */
  readonly histories: ReadonlyMap<string, readonly SubtaskStatus[]>;
}

export interface Workloads {
  readonly tasks: readonly TaskWorkload[];
  /** Every task's message bodies interleaved in one delivery order, duplicates included. */
  readonly bodies: readonly string[];
  /** Distinct statuses the workers sent, duplicates not counted. */
  readonly statusesSent: number;
}

/**
 * Initializes one task per entry of `subtaskCounts` and generates what their workers would send (with
 * `test/support/workload.ts`, as the bench does), all tasks' deliveries interleaved.
 */
export async function startWorkloads(
  store: TaskStore,
  subtaskCounts: readonly number[],
  shape: WorkloadShape,
  random: () => number,
  prefix: string,
): Promise<Workloads> {
  const generated: Workload[] = [];
  for (const count of subtaskCounts) {
    const taskId = uniqueName(prefix);
    const ids = subtaskIds(count);
    await store.initialize(initializeRequest(taskId, ids), T0);
    generated.push(workloadFor(taskId, ids, shape, random));
  }
  return {
    tasks: generated.map(({ taskId, histories }) => ({ taskId, histories })),
    bodies: shuffle(
      generated.flatMap((workload) => workload.deliveries.map((delivery) => delivery.body)),
      random,
    ),
    statusesSent: generated.reduce((sum, workload) => sum + workload.sent, 0),
  };
}

export function deliveriesOf(bodies: readonly string[], prefix: string): Delivery[] {
  return bodies.map((body, index) => ({ messageId: `${prefix}-${index}`, body, receiveCount: 0 }));
}

// ---------------------------------------------------------------------------------------------------------------
// The audit
// ---------------------------------------------------------------------------------------------------------------

/** Every subtask item of the task's generation, shard by shard, read consistently. */
export async function allSubtasks(store: TaskStore, task: TaskRecord): Promise<SubtaskRecord[]> {
  const items: SubtaskRecord[] = [];
  for (let shard = 0; shard < task.write_shards; shard++) items.push(...(await store.readShard(task, shard)));
  return items.filter((item) => item.generation === task.generation);
}

export interface ExpectedTotals {
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly subtasks: { readonly total: number; readonly succeeded: number; readonly failed: number };
  readonly task_state: TaskRecord['task_state'];
}

/**
 * The totals a task must show for the subtask statuses it holds, computed here from the statuses alone: ended
 * subtasks' counts summed, and the design's ending rule without a tolerance (`FAILURE` when every subtask failed
 * or every attempted item did), restated rather than imported.
 */
export function totalsOf(total: number, statuses: readonly SubtaskStatus[]): ExpectedTotals {
  const ended = statuses.filter((status) => isTerminalState(status.state));
  const sum = (field: 'attempted' | 'succeeded' | 'failed' | 'skipped') =>
    ended.reduce((count, status) => count + status[field], 0);
  const succeeded = ended.filter((status) => status.state === 'SUCCESS').length;
  const failed = ended.length - succeeded;
  const items = { attempted: sum('attempted'), succeeded: sum('succeeded'), failed: sum('failed') };
  const everyItemFailed = items.attempted > 0 && items.failed === items.attempted;
  const state =
    ended.length < total ? 'PROGRESS' : failed === total || everyItemFailed ? 'FAILURE' : 'SUCCESS';
  return { ...items, skipped: sum('skipped'), subtasks: { total, succeeded, failed }, task_state: state };
}

/** What the task item shows, in the shape (and key order) of `ExpectedTotals`. */
export function shownTotals(task: TaskRecord): ExpectedTotals {
  const { attempted, succeeded, failed, skipped } = task.task_output;
  const { total, succeeded: subtasksSucceeded, failed: subtasksFailed } = task.subtasks;
  return {
    attempted,
    succeeded,
    failed,
    skipped,
    subtasks: { total, succeeded: subtasksSucceeded, failed: subtasksFailed },
    task_state: task.task_state,
  };
}

export function sameTotals(a: ExpectedTotals, b: ExpectedTotals): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface Audit {
  readonly tasks: number;
  /** Terminal statuses in the ground truth: one per subtask. */
  readonly terminalExpected: number;
  /** Subtasks the tasks' totals count as ended. */
  readonly terminalCounted: number;
  /** Terminal statuses missing from the totals, over all tasks. */
  readonly lost: number;
  /** Terminal statuses counted more than once, over all tasks. */
  readonly doubleCounted: number;
  /** Every way the stored tasks differ from the ground truth, in words; empty when exact. */
  readonly mismatches: readonly string[];
}

export interface AuditOptions {
  /**
   * Recount every shard of each task first (`reconcileTask`, what the sweeper's idle recount and the
   * `reconcile` operation do): the audit of the applier's work, once the appliers are done. Without it, the
   * audit checks what the fold alone made of the stream.
   */
  readonly reconcile: boolean;
}

/**
 * Reads every task back and compares it with the ground truth, the workers' own histories: each subtask item
 * must hold the one terminal status its worker sent; the task's totals, subtask counters and final state must
 * be those of exactly those statuses. Counts, assumes nothing.
 */
export async function auditTasks(
  store: TaskStore,
  tasks: readonly TaskWorkload[],
  { reconcile }: AuditOptions,
): Promise<Audit> {
  const mismatches: string[] = [];
  let terminalExpected = 0;
  let terminalCounted = 0;
  let lost = 0;
  let doubleCounted = 0;
  for (const { taskId, histories } of tasks) {
    if (reconcile) await reconcileTask(store, taskId, Date.now);
    const task = await store.getTask(taskId);
    if (task === undefined) {
      mismatches.push(`${taskId}: missing`);
      continue;
    }
    // Every history ends with its one terminal status.
    const finals = [...histories.values()].flatMap((history) => history.slice(-1));
    const expected = totalsOf(histories.size, finals);
    const counted = task.subtasks.succeeded + task.subtasks.failed;
    terminalExpected += finals.length;
    terminalCounted += counted;
    lost += Math.max(0, finals.length - counted);
    doubleCounted += Math.max(0, counted - finals.length);
    const shown = shownTotals(task);
    if (!sameTotals(shown, expected)) {
      mismatches.push(`${taskId}: shows ${JSON.stringify(shown)}, expected ${JSON.stringify(expected)}`);
    }
    const items = await allSubtasks(store, task);
    if (items.length !== histories.size)
      mismatches.push(`${taskId}: ${items.length} subtask items, expected ${histories.size}`);
    for (const item of items) {
      const final = histories.get(item.subtask_id)?.at(-1);
      if (final === undefined || !sameStatus(item.status, final))
        mismatches.push(`${taskId}/${item.subtask_id}: stored ${JSON.stringify(item.status)}`);
    }
  }
  return { tasks: tasks.length, terminalExpected, terminalCounted, lost, doubleCounted, mismatches };
}

/** The promise itself: every terminal status counted exactly once, nothing else changed. */
export function expectExact(audit: Audit): void {
  expect(audit.mismatches).toEqual([]);
  expect({ lost: audit.lost, doubleCounted: audit.doubleCounted }).toEqual({ lost: 0, doubleCounted: 0 });
  expect(audit.terminalCounted).toBe(audit.terminalExpected);
}

export function sumAudits(audits: readonly Audit[]): { lost: number; doubleCounted: number } {
  return {
    lost: audits.reduce((sum, audit) => sum + audit.lost, 0),
    doubleCounted: audits.reduce((sum, audit) => sum + audit.doubleCounted, 0),
  };
}

/**
 * What the task must show for the subtask items it holds right now, and what it does show: after a fold that
 * committed, with no applier writing meanwhile, the two are equal.
 */
export async function foldGap(
  store: TaskStore,
  taskId: string,
): Promise<{ shown: ExpectedTotals; expected: ExpectedTotals; task: TaskRecord }> {
  const task = await store.getTask(taskId);
  if (task === undefined) throw new Error(`Task ${taskId} is gone`);
  const items = await allSubtasks(store, task);
  return {
    task,
    shown: shownTotals(task),
    expected: totalsOf(
      task.subtasks.total,
      items.map((item) => item.status),
    ),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The table's stream and the aggregator
// ---------------------------------------------------------------------------------------------------------------

/**
 * An attribute in Lambda's JSON wire form; the service's items hold no binaries. DynamoDB Local's stream writes
 * an empty map as `{}` (no type at all) where DynamoDB writes `{"M":{}}`: a task's `options` without options is
 * one. Lambda would hand over `{"M":{}}`, so that is what the tap hands over too.
 */
function lambdaAttribute(value: SdkAttributeValue): AttributeValue {
  if (value.B !== undefined || value.BS !== undefined) throw new Error('Binary attributes are not expected');
  if (value.L !== undefined) return { L: value.L.map(lambdaAttribute) };
  if (value.M !== undefined) return { M: lambdaImage(value.M) };
  const typed = Object.entries(value).filter(([, member]) => member !== undefined);
  if (typed.length === 0) return { M: {} };
  return value as AttributeValue;
}

function lambdaImage(image: Record<string, SdkAttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, lambdaAttribute(value)]));
}

function lambdaRecord(record: _Record, streamArn: string): DynamoDBRecord {
  const stream = record.dynamodb ?? {};
  return {
    ...(record.eventID === undefined ? {} : { eventID: record.eventID }),
    ...(record.eventName === undefined ? {} : { eventName: record.eventName }),
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ...(stream.ApproximateCreationDateTime === undefined
        ? {}
        : { ApproximateCreationDateTime: stream.ApproximateCreationDateTime.getTime() / 1000 }),
      ...(stream.Keys === undefined ? {} : { Keys: lambdaImage(stream.Keys) }),
      ...(stream.NewImage === undefined ? {} : { NewImage: lambdaImage(stream.NewImage) }),
      ...(stream.OldImage === undefined ? {} : { OldImage: lambdaImage(stream.OldImage) }),
      ...(stream.SequenceNumber === undefined ? {} : { SequenceNumber: stream.SequenceNumber }),
      ...(stream.SizeBytes === undefined ? {} : { SizeBytes: stream.SizeBytes }),
      ...(stream.StreamViewType === undefined ? {} : { StreamViewType: stream.StreamViewType }),
    },
    eventSourceARN: streamArn,
  };
}

/**
 * Reads a table's real stream (DynamoDB Local's), every shard from the start, and hands out what was written
 * since the last read, in stream order, shaped as Lambda's DynamoDB event source shapes it.
 */
export class StreamTap {
  private readonly positions = new Map<string, string>();

  constructor(
    private readonly streams: DynamoDBStreamsClient,
    readonly streamArn: string,
  ) {}

  async read(): Promise<DynamoDBRecord[]> {
    const shardIds: string[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(
        new DescribeStreamCommand({ StreamArn: this.streamArn, ExclusiveStartShardId: start }),
      );
      for (const shard of StreamDescription?.Shards ?? [])
        if (shard.ShardId !== undefined) shardIds.push(shard.ShardId);
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start !== undefined);

    const records: DynamoDBRecord[] = [];
    for (const shardId of shardIds) {
      const after = this.positions.get(shardId);
      const { ShardIterator } = await this.streams.send(
        new GetShardIteratorCommand({
          StreamArn: this.streamArn,
          ShardId: shardId,
          ...(after === undefined
            ? { ShardIteratorType: 'TRIM_HORIZON' }
            : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: after }),
        }),
      );
      let iterator = ShardIterator;
      while (iterator !== undefined) {
        const page = await this.streams.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 }),
        );
        const got = page.Records ?? [];
        if (got.length === 0) break;
        records.push(...got.map((record) => lambdaRecord(record, this.streamArn)));
        const last = got.at(-1)?.dynamodb?.SequenceNumber;
        if (last !== undefined) this.positions.set(shardId, last);
        iterator = page.NextShardIterator;
      }
    }
    return records;
  }
}

export { RecordingPublisher } from '../support/recording-publisher';

export function aggregatorHandler(dependencies: Omit<FoldBatchDependencies, 'log'>) {
  return createAggregatorHandler({
    ...dependencies,
    logger: new Logger({ serviceName: 'reliability' }),
    metrics: new Metrics({ namespace: 'Reliability' }),
  });
}

export function streamEventOf(records: readonly DynamoDBRecord[]): DynamoDBStreamEvent {
  return { Records: structuredClone([...records]) };
}

/**
 * Lambda's stream event source, in process, for one batch: hands `records` to the fold and, while it answers with
 * a record to resume from, hands over that record and every later one again. Returns the deliveries it took.
 */
export async function foldUntilDone(
  records: readonly DynamoDBRecord[],
  dependencies: Omit<FoldBatchDependencies, 'log'>,
  maxDeliveries = 100,
): Promise<number> {
  let pending = [...records];
  for (let delivery = 1; delivery <= maxDeliveries; delivery++) {
    const { resumeFrom } = await foldBatch(structuredClone(pending), { ...dependencies, log: SILENT_LOG });
    if (resumeFrom === undefined) return delivery;
    const index = pending.findIndex((record) => record.dynamodb?.SequenceNumber === resumeFrom);
    expect(index).toBeGreaterThanOrEqual(0);
    pending = pending.slice(index);
  }
  throw new Error(`The fold still asked for retries after ${maxDeliveries} deliveries`);
}

/** One line per run with what it counted, so the suite's figures come from the run, not from its description. */
export function reportFigures(title: string, figures: Readonly<Record<string, number | string>>): void {
  const line = Object.entries(figures)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  console.log(`[reliability] ${title}: ${line}`);
}
