import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { expect } from 'vitest';
import type { ApplierDependencies } from '../../lambdas/applier/apply-batch';
import { createSqsBatchHandler } from '../../lambdas/applier/sqs-batch-handler';
import { type SubtaskStatus, sameStatus } from '../../lambdas/core/subtask-status';
import type { SubtaskRecord } from '../../lambdas/core/task';
import type { TaskStore } from '../../lambdas/store/task-store';
import { shuffle } from '../support/applier-harness';
import { uniqueName } from '../support/aws';
import { initializeRequest, sqsRecord, subtaskIds, T0 } from '../support/factories';
import { expectedProgress, type WorkloadShape, workload } from '../support/histories';

/** Helpers the reliability suite shares: deliveries as SQS makes them, workloads over several tasks, the audit. */

/** Seeds are fixed so that a failure replays; `RELIABILITY_SEED=<n>` explores other runs. */
export const SEED = Number(process.env.RELIABILITY_SEED ?? 20_260_101);

/** One delivery of a queued message, as SQS hands it to the applier. */
export interface Delivery {
  readonly messageId: string;
  readonly body: string;
  /** Deliveries so far, this one included (SQS's `ApproximateReceiveCount`). */
  readonly receiveCount: number;
}

export function sqsEventOf(deliveries: readonly Delivery[]): SQSEvent {
  return {
    Records: deliveries.map(({ messageId, body, receiveCount }) => ({
      ...sqsRecord(body, receiveCount),
      messageId,
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
  return createSqsBatchHandler({
    ...dependencies,
    logger: new Logger({ serviceName: 'reliability' }),
    metrics: new Metrics({ namespace: 'Reliability' }),
  });
}

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

/** Initializes one task per entry of `subtaskCounts` and generates what their workers would send, interleaved. */
export async function startWorkloads(
  store: TaskStore,
  subtaskCounts: readonly number[],
  shape: WorkloadShape,
  random: () => number,
  prefix: string,
): Promise<Workloads> {
  const tasks: TaskWorkload[] = [];
  const bodies: string[] = [];
  for (const count of subtaskCounts) {
    const taskId = uniqueName(prefix);
    const ids = subtaskIds(count);
    await store.initialize(initializeRequest(taskId, ids), T0);
    const generated = workload(taskId, ids, shape, random);
    tasks.push({ taskId, histories: generated.histories });
    bodies.push(...generated.bodies);
  }
  const statusesSent = tasks.reduce(
    (sum, task) => sum + [...task.histories.values()].reduce((count, history) => count + history.length, 0),
    0,
  );
  return { tasks, bodies: shuffle(bodies, random), statusesSent };
}

export interface Audit {
  readonly tasks: number;
  /** Terminal statuses in the ground truth: one per subtask. */
  readonly terminalExpected: number;
  /** Terminal statuses the tasks' subtask counters hold. */
  readonly terminalCounted: number;
  /** Terminal statuses missing from the counters, over all tasks. */
  readonly lost: number;
  /** Terminal statuses counted more than once, over all tasks. */
  readonly doubleCounted: number;
  /** Every way the stored tasks differ from the ground truth, in words; empty when exact. */
  readonly mismatches: readonly string[];
}

async function allSubtasks(store: TaskStore, taskId: string): Promise<SubtaskRecord[]> {
  const subtasks: SubtaskRecord[] = [];
  let after: string | undefined;
  do {
    const page = await store.listSubtasks(taskId, { limit: 500, ...(after === undefined ? {} : { after }) });
    subtasks.push(...page.subtasks);
    after = page.lastSubtaskId;
  } while (after !== undefined);
  return subtasks;
}

/**
 * Reads every task back and compares it with the ground truth: item counts, subtask counters, final state, and
 * each subtask's stored status, which must be the one terminal status its worker sent. Counts, assumes nothing.
 */
export async function auditTasks(store: TaskStore, tasks: readonly TaskWorkload[]): Promise<Audit> {
  const mismatches: string[] = [];
  let terminalExpected = 0;
  let terminalCounted = 0;
  let lost = 0;
  let doubleCounted = 0;
  for (const { taskId, histories } of tasks) {
    const truth = expectedProgress(histories);
    const task = await store.getTask(taskId);
    if (task === undefined) {
      mismatches.push(`${taskId}: missing`);
      continue;
    }
    const expected = histories.size;
    const counted = task.subtasks.succeeded + task.subtasks.failed;
    terminalExpected += expected;
    terminalCounted += counted;
    lost += Math.max(0, expected - counted);
    doubleCounted += Math.max(0, counted - expected);
    const output = task.task_output;
    for (const field of ['attempted', 'succeeded', 'failed', 'skipped'] as const) {
      if (output[field] !== truth[field])
        mismatches.push(`${taskId}: ${field} ${output[field]}, expected ${truth[field]}`);
    }
    if (
      task.subtasks.succeeded !== truth.subtasksSucceeded ||
      task.subtasks.failed !== truth.subtasksFailed ||
      task.subtasks.total !== expected
    ) {
      mismatches.push(
        `${taskId}: subtasks ${JSON.stringify(task.subtasks)}, expected ` +
          `${JSON.stringify({ total: expected, succeeded: truth.subtasksSucceeded, failed: truth.subtasksFailed })}`,
      );
    }
    if (task.task_state !== 'SUCCESS') mismatches.push(`${taskId}: ${task.task_state}, expected SUCCESS`);
    for (const subtask of await allSubtasks(store, taskId)) {
      const final = histories.get(subtask.subtask_id)?.at(-1);
      if (final === undefined || !sameStatus(subtask.status, final))
        mismatches.push(`${taskId}/${subtask.subtask_id}: stored ${JSON.stringify(subtask.status)}`);
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

/** One line per run with what it counted, so the suite's figures come from the run, not from its description. */
export function reportFigures(title: string, figures: Readonly<Record<string, number | string>>): void {
  const line = Object.entries(figures)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  console.log(`[reliability] ${title}: ${line}`);
}
