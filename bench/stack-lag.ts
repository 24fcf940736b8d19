/**
 * Read lag end to end on the whole local stack (`startLocalStack`): statuses sent to the SQS queue, the applier
 * function fed by the stack's SQS event source stand-in with `appliers` polling loops, the aggregator fed by its
 * stream poller, and the HTTP API answering real `GET /tasks/{id}` requests, every one of them with the deployed
 * batch sizes and batching windows.
 *
 * The hot task's workload is sent as the load, with at most `batchSize` statuses per polling loop sent and not
 * yet applied, as each applier of the bench rows holds one batch (so the lag is the service's, not a backlog's). Beside it, a few probe tasks each send one status at a
 * time, a fresh subtask reporting one attempted item, and poll `GET /tasks/{probe}` until the task shows it
 * (`task_progress.attempted + in_flight.attempted` reaches the probes sent): the lag from `SendMessage` to that
 * response. A probe task holds only probe statuses, so each response says exactly which probes it counts.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { documentClient } from '../lambdas/aws-clients';
import { statusMessageBody } from '../lambdas/core/status-message';
import { createSubtaskStatus } from '../lambdas/core/subtask-status';
import { AGGREGATOR, APPLIER } from '../lambdas/service-settings';
import { TaskStore } from '../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/emulators';
import { startLocalStack } from '../local/local-stack';
import { type Delivery, expectedProgress, subtaskIdsFor, type Workload } from '../test/support/workload';
import { type LagFigures, percentile } from './streamed/read-lag';

/** Its samples are probe statuses a GET showed; `unseen`, those no GET showed within a minute. */
export interface StackLagResult extends LagFigures {
  readonly appliers: number;
  readonly probeTasks: number;
  /** The load: the hot task's statuses sent (within the budget), and how long the stack took to apply them. */
  readonly loadDeliveries: number;
  readonly loadSeconds: number;
  readonly settings: {
    /** The load's statuses in flight per polling loop, at most. */
    readonly loadPerPoller: number;
    readonly applierBatchSize: number;
    readonly applierBatchingWindowMs: number;
    readonly aggregatorBatchSize: number;
    readonly aggregatorBatchingWindowMs: number;
  };
  /** Whether the hot task ended exactly as its workload says, once the stack caught up. */
  readonly loadExact: boolean;
  readonly errors: readonly string[];
}

const PROBE_TASKS = 4;
/** Small probe tasks: every probe status makes the aggregator recount its shard, which costs per item. */
const PROBE_SUBTASKS = 100;
const POLL_MS = 100;
const PROBE_TIMEOUT_MS = 60_000;
/** Longer than the queue's visibility timeout (180 s), after which a record handed back comes again. */
const DRAIN_TIMEOUT_MS = 240_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ProgressBody {
  readonly task_progress?: { readonly attempted?: number };
  readonly in_flight?: { readonly attempted?: number };
}

export async function measureStackLag(
  dynamoEndpoint: string,
  appliers: number,
  workload: Workload,
  run: number,
  /** Stop sending the load after this long; what was sent is still applied and checked. */
  budgetSeconds: number,
  /** Statuses of the load per polling loop in flight at most (the bench rows' batch size). */
  batchSize: number,
): Promise<StackLagResult> {
  const errors: string[] = [];
  let handled = 0;
  // Its events file goes with it: a bench run leaves nothing in /tmp.
  const directory = await mkdtemp(join(tmpdir(), 'subtask-progress-bench-'));
  const stack = await startLocalStack({
    dynamoEndpoint,
    eventsFile: join(directory, 'events.jsonl'),
    tableName: `bench-stack-${process.pid}-${run}`,
    queueName: `bench-stack-${process.pid}-${run}`,
    pollers: appliers,
    sweepIntervalMs: 0,
    onBatch: (report) => {
      handled += report.deleted;
      if (report.failure !== undefined) errors.push(`applier batch: ${report.failure}`);
    },
    onStreamBatch: (report) => {
      if (report.failure !== undefined) errors.push(`aggregator batch: ${report.failure}`);
    },
    onError: (source, error) =>
      errors.push(`${source}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`),
  });
  const config = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
  const dynamo = new DynamoDBClient({ ...config, endpoint: stack.dynamoEndpoint });
  const sqs = new SQSClient({ ...config, endpoint: stack.sqsEndpoint, useQueueUrlAsEndpoint: false });
  try {
    const store = new TaskStore(documentClient(dynamo), stack.tableName);
    const probeIds = Array.from({ length: PROBE_TASKS }, (_, index) => `probe-${index}`);
    await store.initialize(
      {
        taskId: workload.taskId,
        actionName: 'emailed',
        total: workload.subtaskIds.length * 100,
        subtaskIds: workload.subtaskIds,
      },
      Date.now(),
    );
    for (const taskId of probeIds) {
      await store.initialize(
        { taskId, actionName: 'probed', total: PROBE_SUBTASKS, subtaskIds: subtaskIdsFor(PROBE_SUBTASKS) },
        Date.now(),
      );
    }
    await stack.caughtUp();

    // The load: at most `batchSize` statuses per polling loop sent and not yet applied, as in the bench rows
    // (each applier holds one batch): the queue never builds a backlog, so a probe's lag is the service's.
    const outstandingLimit = appliers * batchSize;
    let loadDone = false;
    let probesSent = 0;
    const loadStarted = performance.now();
    const sentLoad: Delivery[] = [];
    const load = (async () => {
      const { deliveries } = workload;
      for (let start = 0; start < deliveries.length; start += 10) {
        while (start + probesSent - handled >= outstandingLimit) await sleep(5);
        if (performance.now() - loadStarted > budgetSeconds * 1_000) break;
        sentLoad.push(...deliveries.slice(start, start + 10));
        await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: stack.queueUrl,
            Entries: deliveries.slice(start, start + 10).map((delivery) => ({
              Id: String(delivery.id),
              MessageBody: delivery.body,
            })),
          }),
        );
      }
      // Everything sent must be applied; a record handed back waits out the queue's visibility timeout.
      const drainStarted = performance.now();
      while (handled < sentLoad.length + probesSent) {
        if (performance.now() - drainStarted > DRAIN_TIMEOUT_MS) {
          errors.push(
            `${sentLoad.length + probesSent - handled} statuses still not applied after the drain timeout`,
          );
          break;
        }
        await sleep(20);
      }
      loadDone = true;
    })();

    const lags: number[] = [];
    let unseen = 0;
    const probeSubtasks = subtaskIdsFor(PROBE_SUBTASKS);
    const probe = async (taskId: string) => {
      for (const [index, subtaskId] of probeSubtasks.entries()) {
        if (loadDone) return;
        const sent = index + 1;
        const status = createSubtaskStatus(subtaskId, { succeeded: 1, state: 'PROGRESS' });
        const sentAt = performance.now();
        probesSent += 1;
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.queueUrl,
            MessageBody: JSON.stringify(statusMessageBody(taskId, status)),
          }),
        );
        for (;;) {
          const response = await fetch(`${stack.httpUrl}/tasks/${taskId}`);
          const body = (await response.json()) as ProgressBody;
          const now = performance.now();
          if ((body.task_progress?.attempted ?? 0) + (body.in_flight?.attempted ?? 0) >= sent) {
            lags.push(now - sentAt);
            break;
          }
          if (now - sentAt > PROBE_TIMEOUT_MS) {
            unseen += 1;
            return;
          }
          await sleep(POLL_MS);
        }
      }
    };
    await Promise.all([load, ...probeIds.map(probe)]);
    const loadSeconds = (performance.now() - loadStarted) / 1_000;
    await stack.caughtUp();
    const task = await store.getTask(workload.taskId);
    const complete = sentLoad.length === workload.deliveries.length;
    const expected = complete ? workload.expected : expectedProgress(workload.subtaskIds.length, sentLoad);
    const loadExact =
      task !== undefined &&
      task.task_output.attempted === expected.attempted &&
      task.task_output.succeeded === expected.succeeded &&
      task.task_output.failed === expected.failed &&
      task.task_output.skipped === expected.skipped &&
      task.subtasks.succeeded === expected.subtasksSucceeded &&
      task.subtasks.failed === expected.subtasksFailed &&
      task.task_state === (expected.finals.size === expected.subtasks ? 'SUCCESS' : 'PROGRESS');
    return {
      appliers,
      probeTasks: PROBE_TASKS,
      samples: lags.length,
      p50Ms: percentile(lags, 0.5),
      p99Ms: percentile(lags, 0.99),
      maxMs: lags.reduce((max, lag) => Math.max(max, lag), 0),
      unseen,
      pollIntervalMs: POLL_MS,
      loadDeliveries: sentLoad.length,
      loadSeconds,
      settings: {
        loadPerPoller: batchSize,
        applierBatchSize: APPLIER.batchSize,
        applierBatchingWindowMs: APPLIER.maxBatchingWindowSeconds * 1_000,
        aggregatorBatchSize: AGGREGATOR.batchSize,
        aggregatorBatchingWindowMs: AGGREGATOR.maxBatchingWindowSeconds * 1_000,
      },
      loadExact,
      errors,
    };
  } finally {
    dynamo.destroy();
    sqs.destroy();
    await stack.stop();
    await rm(directory, { recursive: true, force: true });
  }
}
