/**
 * Crashes: the applier, and the aggregator, each run in a child process against DynamoDB Local and are SIGKILLed
 * at a chosen point of an invocation; the batch is then delivered again, as SQS does when an applier never
 * answers and as Lambda's stream event source does when an aggregator never answers. Whatever the point, every
 * terminal status must end up counted exactly once, and the task's totals must only ever move forward.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DynamoDBBatchResponse, DynamoDBRecord, SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesOf } from '../../lambdas/aggregator/stream-records';
import { applyBatch, type BatchSummary } from '../../lambdas/applier/apply-batch';
import type { ServiceEvent } from '../../lambdas/core/events';
import { parseStatusMessage } from '../../lambdas/core/status-message';
import { isTerminalState } from '../../lambdas/core/subtask-status';
import type { TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { EVENTS } from '../../lambdas/service-settings';
import type { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { SILENT_LOG } from '../support/applier-harness';
import {
  newStatusQueues,
  newTaskTable,
  streamsClient,
  type TestQueues,
  type TestTable,
} from '../support/aws';
import { roleEndpoint, roleSqsClient, roleStore } from '../support/role-gateways';
import { seededRandom, shuffle } from '../support/workload';
import { bundleChildren, type ChildBundles, LambdaProcess, WarmProcesses } from './crash-process';
import {
  APPLIER_KILL_POINTS,
  type ApplierInput,
  type ApplierKillPoint,
  type CrashOutcome,
  FOLD_KILL_POINTS,
  type FoldInput,
  type FoldKillPoint,
  type KillPlan,
  type KillReport,
} from './crash-protocol';
import {
  allSubtasks,
  auditTasks,
  type Delivery,
  deliveriesOf,
  expectExact,
  failedDeliveries,
  foldGap,
  queueDepth,
  receiveBatch,
  redeliver,
  reportFigures,
  SEED,
  StreamTap,
  sqsEventOf,
  startWorkloads,
  streamEventOf,
  sumAudits,
  type Workloads,
} from './support';

/** Receive counts climb with every crash; this file is about crashes, not about parking messages (see store-faults). */
const RECEIVE_LIMIT = 1_000;
/** Independent applier scenarios, each on its own tasks; two run at a time, one per core. */
const LANES = 2;
const PARALLEL_LANES = 2;
const KILLS_PER_LANE = 6;
const MIN_APPLIER_KILLS = 10;
const MAX_BATCH = 10;
/** Of the batches handed to a child while kills remain, this share runs to the end instead. */
const SPARED_SHARE = 0.1;
const FOLD_KILLS = 6;

let bundles: ChildBundles;
let table: TestTable;
let queues: TestQueues;
let deadLetters: DeadLetterQueue;

let applierStore: TaskStore;
let applierEndpoint: string;

beforeAll(async () => {
  [table, queues, bundles] = await Promise.all([newTaskTable(), newStatusQueues(), bundleChildren()]);
  // The applier's calls, in this process and in its children, go through the applier's synthesized role.
  applierEndpoint = await roleEndpoint('applier', table, queues);
  applierStore = await roleStore('applier', table, queues);
  deadLetters = new DeadLetterQueue(await roleSqsClient('applier', table, queues), queues.deadLetterQueueUrl);
});

afterAll(async () => {
  await bundles?.remove();
});

/** What every deployed function gets, pointed at the gateway that enforces its role in front of the emulators. */
function awsEnvironment(endpoint: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_ENDPOINT_URL_SQS: endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}

function applierEnvironment(): NodeJS.ProcessEnv {
  return {
    ...awsEnvironment(applierEndpoint),
    TABLE_NAME: table.tableName,
    DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
    RECEIVE_LIMIT: String(RECEIVE_LIMIT),
  };
}

function aggregatorEnvironment(endpoint: string, tableName: string, eventsFile: string): NodeJS.ProcessEnv {
  return {
    ...awsEnvironment(endpoint),
    TABLE_NAME: tableName,
    EVENT_BUS_NAME: 'default',
    EVENTS_FILE: eventsFile,
  };
}

/** The point killed least so far, ties broken at random, so that every point gets its share. */
function leastKilled<P extends string>(
  points: readonly P[],
  kills: Record<P, number>,
  random: () => number,
): P {
  return shuffle(points, random).reduce((least, candidate) =>
    kills[candidate] < kills[least] ? candidate : least,
  );
}

function noKills<P extends string>(points: readonly P[]): Record<P, number> {
  return Object.fromEntries(points.map((point) => [point, 0])) as Record<P, number>;
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// The applier
// ---------------------------------------------------------------------------------------------------------------

/** Delivers `batch` to a healthy applier in this process. */
async function applyHealthy(
  batch: readonly Delivery[],
): Promise<{ retry: Delivery[]; summary: BatchSummary }> {
  const { retry, summary } = await applyBatch(batch, {
    store: applierStore,
    deadLetters,
    log: SILENT_LOG,
    receiveLimit: RECEIVE_LIMIT,
  });
  const again = new Set(retry);
  return { retry: batch.filter((delivery) => again.has(delivery.messageId)), summary };
}

/** Subtask items of the task by version: how many writes each has taken. */
async function subtaskVersions(taskId: string): Promise<number[]> {
  const task = await table.store.getTask(taskId);
  if (task === undefined) throw new Error(`Task ${taskId} is gone`);
  return (await allSubtasks(table.store, task)).map((subtask) => subtask.version);
}

function applierProcess(): LambdaProcess<ApplierInput, SQSBatchResponse> {
  return new LambdaProcess(bundles.paths.applier, applierEnvironment());
}

/** Per task of the batch, how many distinct subtasks it names. */
function subtasksByTask(batch: readonly Delivery[]): Map<string, Set<string>> {
  const tasks = new Map<string, Set<string>>();
  for (const delivery of batch) {
    const { taskId, subtaskId } = parseStatusMessage(delivery.body);
    tasks.set(taskId, (tasks.get(taskId) ?? new Set()).add(subtaskId));
  }
  return tasks;
}

/** Per task of the batch, how many of the subtasks it names have not ended yet: those a status may still change. */
async function openSubtasksByTask(batch: readonly Delivery[]): Promise<number[]> {
  const counts: number[] = [];
  for (const [taskId, subtasks] of subtasksByTask(batch)) {
    const task = await table.store.getTask(taskId);
    if (task === undefined) continue;
    const stored = await table.store.getSubtasks(task, [...subtasks]);
    counts.push([...stored.values()].filter((subtask) => !isTerminalState(subtask.status.state)).length);
  }
  return counts;
}

/**
 * The point killed least so far among those the batch can reach, at a random passage of it: the task reads
 * are passed once per task; `mid-batch` needs a task with two subtasks still open (its statuses may still be
 * stale, and the kill then happens before the response).
 */
async function applierKillPlan(
  batch: readonly Delivery[],
  kills: Record<ApplierKillPoint, number>,
  random: () => number,
): Promise<KillPlan<ApplierKillPoint>> {
  const tasks = subtasksByTask(batch);
  const splittable = (await openSubtasksByTask(batch)).filter((open) => open >= 2).length;
  const reachable = APPLIER_KILL_POINTS.filter((point) => point !== 'mid-batch' || splittable > 0);
  const point = leastKilled(reachable, kills, random);
  const passages = point === 'mid-batch' ? splittable : point === 'before-response' ? 1 : tasks.size;
  return { point, occurrence: 1 + Math.floor(random() * passages), share: random() };
}

interface ApplierFigures {
  readonly kills: Record<ApplierKillPoint, number>;
  /** `mid-batch` kills: subtask writes that went through, of those the killed task's batch had. */
  midBatchWritten: number;
  midBatchOf: number;
  /** Batches a child was spared and ran to the end. */
  childResponses: number;
  /** Kills planned at a point the batch never reached, carried out before the response. */
  plannedPointNotReached: number;
  healthyBatches: number;
  deliveries: number;
  maxReceiveCount: number;
}

/**
 * One scenario: two tasks' statuses, duplicated and shuffled, go through applier processes that are killed at
 * random points; every killed batch goes back to the queue whole. Once the lane's kills are spent, a healthy
 * applier drains what is left, as a fixed deployment would.
 */
async function runApplierLane(lane: number, figures: ApplierFigures) {
  const random = seededRandom(SEED + lane);
  const workloads = await startWorkloads(
    table.store,
    [8, 5],
    { duplicateShare: 0.2, minProgressSteps: 0, maxProgressSteps: 2 },
    random,
    `crash${lane}`,
  );
  const pool = deliveriesOf(workloads.bodies, `lane${lane}`);
  const processes = new WarmProcesses<ApplierInput, SQSBatchResponse>(
    bundles.paths.applier,
    applierEnvironment(),
  );
  let kills = 0;
  try {
    while (pool.length > 0) {
      const batch = receiveBatch(pool, 1 + Math.floor(random() * MAX_BATCH));
      figures.deliveries += batch.length;
      figures.maxReceiveCount = Math.max(figures.maxReceiveCount, ...batch.map((d) => d.receiveCount));
      if (kills >= KILLS_PER_LANE) {
        figures.healthyBatches += 1;
        redeliver(pool, (await applyHealthy(batch)).retry, random);
        continue;
      }
      const kill = random() < SPARED_SHARE ? undefined : await applierKillPlan(batch, figures.kills, random);
      const outcome = await processes.run({
        event: sqsEventOf(batch),
        ...(kill === undefined ? {} : { kill }),
      });
      if (outcome.kind === 'killed') {
        kills += 1;
        const { report } = outcome;
        figures.kills[report.point as ApplierKillPoint] += 1;
        if (report.point !== kill?.point) figures.plannedPointNotReached += 1;
        if (report.point === 'mid-batch') {
          figures.midBatchWritten += report.written ?? 0;
          figures.midBatchOf += report.of ?? 0;
        }
        // No response ever reached SQS: the whole batch comes back once its visibility timeout ends.
        redeliver(pool, batch, random);
      } else {
        figures.childResponses += 1;
        redeliver(pool, failedDeliveries(batch, outcome.response), random);
      }
    }
  } finally {
    await processes.stop();
  }
  return { workloads, audit: await auditTasks(table.store, workloads.tasks, { reconcile: true }) };
}

describe('an applier killed mid-batch', () => {
  /** Of six subtask writes, how many a batch killed at each point has made. */
  const WRITTEN_AT: Record<ApplierKillPoint, number> = {
    'after-task-read': 0,
    'after-subtasks-read': 0,
    'mid-batch': 3,
    'before-response': 6,
  };

  it.each(APPLIER_KILL_POINTS)(
    'killed %s, it loses and doubles nothing once SQS redelivers the batch',
    async (point) => {
      const random = seededRandom(SEED + APPLIER_KILL_POINTS.indexOf(point));
      const workloads = await startWorkloads(
        table.store,
        [6],
        { duplicateShare: 0, minProgressSteps: 0, maxProgressSteps: 0 },
        random,
        `kill-${point}`,
      );
      const taskId = workloads.tasks[0]?.taskId ?? '';
      const batch = receiveBatch(deliveriesOf(workloads.bodies, point), MAX_BATCH);

      const outcome = await applierProcess().run({
        event: sqsEventOf(batch),
        kill: { point, occurrence: 1, share: 0.5 },
      });
      const atKill = await subtaskVersions(taskId);
      const again = await applyHealthy(batch.map((d) => ({ ...d, receiveCount: d.receiveCount + 1 })));
      const afterRedelivery = await subtaskVersions(taskId);

      const written = WRITTEN_AT[point];
      expect(outcome).toMatchObject({ kind: 'killed', report: { point } });
      if (point === 'mid-batch') expect(outcome).toMatchObject({ report: { written, of: 6 } });
      expect(atKill.filter((version) => version > 0)).toHaveLength(written);
      // What the dead applier wrote comes back as duplicates; the rest is applied, once.
      expect(again.retry).toEqual([]);
      expect(again.summary).toMatchObject({
        applied: 6 - written,
        duplicate: written,
        stale: 0,
        deadLettered: 0,
        writes: 6 - written,
      });
      expect(afterRedelivery).toEqual([1, 1, 1, 1, 1, 1]);
      expectExact(await auditTasks(table.store, workloads.tasks, { reconcile: true }));
      reportFigures(`applier killed ${point}`, {
        statusesSent: workloads.statusesSent,
        writtenAtKill: written,
        duplicatesOnRedelivery: again.summary.duplicate,
        appliedOnRedelivery: again.summary.applied,
      });
    },
  );

  it('counts every terminal status once while appliers are killed at random points, batch after batch', async () => {
    const figures: ApplierFigures = {
      kills: noKills(APPLIER_KILL_POINTS),
      midBatchWritten: 0,
      midBatchOf: 0,
      childResponses: 0,
      plannedPointNotReached: 0,
      healthyBatches: 0,
      deliveries: 0,
      maxReceiveCount: 0,
    };
    const lanes = Array.from({ length: LANES }, (_, lane) => lane);
    const results: Awaited<ReturnType<typeof runApplierLane>>[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: PARALLEL_LANES }, async () => {
        for (let lane = lanes.shift(); lane !== undefined; lane = lanes.shift())
          results.push(await runApplierLane(lane, figures));
      }),
    );

    for (const { audit } of results) expectExact(audit);
    // A lane stops killing if its queue runs dry first (spared batches drain it), so allow a little short.
    expect(total(figures.kills)).toBeGreaterThanOrEqual(MIN_APPLIER_KILLS);
    // Every kill point was actually reached, mid-batch kills with some writes made and some not.
    for (const point of APPLIER_KILL_POINTS) expect(figures.kills[point]).toBeGreaterThan(0);
    expect(figures.midBatchWritten).toBeGreaterThan(0);
    expect(figures.midBatchWritten).toBeLessThan(figures.midBatchOf);
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    const audits = results.map(({ audit }) => audit);
    reportFigures('applier crash campaign', {
      seed: SEED,
      kills: total(figures.kills),
      ...Object.fromEntries(APPLIER_KILL_POINTS.map((point) => [`kills.${point}`, figures.kills[point]])),
      midBatchWritten: `${figures.midBatchWritten}/${figures.midBatchOf}`,
      childResponses: figures.childResponses,
      plannedPointNotReached: figures.plannedPointNotReached,
      healthyBatches: figures.healthyBatches,
      statusesSent: results.reduce((sum, { workloads }) => sum + workloads.statusesSent, 0),
      deliveries: figures.deliveries,
      maxReceiveCount: figures.maxReceiveCount,
      terminalExpected: audits.reduce((sum, audit) => sum + audit.terminalExpected, 0),
      ...sumAudits(audits),
      seconds: Math.round((Date.now() - started) / 1000),
    });
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------------
// The aggregator
// ---------------------------------------------------------------------------------------------------------------

describe('an aggregator killed mid-batch', () => {
  let foldTable: TestTable;
  let foldApplierStore: TaskStore;
  let aggregatorEndpoint: string;
  let tap: StreamTap;
  let eventsFile: string;

  beforeAll(async () => {
    foldTable = await newTaskTable();
    [foldApplierStore, aggregatorEndpoint] = await Promise.all([
      roleStore('applier', foldTable, queues),
      roleEndpoint('aggregator', foldTable),
    ]);
    tap = new StreamTap(streamsClient(), foldTable.streamArn);
    eventsFile = join(bundles.directory, 'events.jsonl');
  });

  const foldEnvironment = () => aggregatorEnvironment(aggregatorEndpoint, foldTable.tableName, eventsFile);

  async function publishedEvents(): Promise<ServiceEvent[]> {
    const text = await readFile(eventsFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as ServiceEvent);
  }

  /** Applies every delivery with a healthy applier: the statuses are in, the fold has not run yet. */
  async function applyAll(deliveries: readonly Delivery[]): Promise<void> {
    const { retry } = await applyBatch(deliveries, {
      store: foldApplierStore,
      deadLetters,
      log: SILENT_LOG,
      receiveLimit: RECEIVE_LIMIT,
    });
    expect(retry).toEqual([]);
  }

  async function readTasks(taskIds: readonly string[]): Promise<Map<string, TaskRecord>> {
    const tasks = new Map<string, TaskRecord>();
    for (const taskId of taskIds) {
      const task = await foldTable.store.getTask(taskId);
      if (task !== undefined) tasks.set(taskId, task);
    }
    return tasks;
  }

  /** Task versions, guard sums and states must only move forward, and an ended task never changes again. */
  class Monotony {
    private readonly seen = new Map<string, TaskRecord>();
    readonly violations: string[] = [];
    observations = 0;

    observe(tasks: ReadonlyMap<string, TaskRecord>): void {
      for (const [taskId, task] of tasks) {
        const before = this.seen.get(taskId);
        this.observations += 1;
        if (before !== undefined) {
          if (task.version < before.version)
            this.violations.push(`${taskId}: version ${before.version} → ${task.version}`);
          if (task.counters_vsum < before.counters_vsum)
            this.violations.push(`${taskId}: counters_vsum ${before.counters_vsum} → ${task.counters_vsum}`);
          if (
            before.task_state !== 'PROGRESS' &&
            (task.version !== before.version || task.task_state !== before.task_state)
          )
            this.violations.push(`${taskId}: changed after ending ${before.task_state}`);
        }
        this.seen.set(taskId, task);
      }
    }
  }

  /** Each ended task has its `Task Ended` event (at least once, under its stable id); no other task has one. */
  async function expectEndedEvents(tasks: ReadonlyMap<string, TaskRecord>): Promise<number> {
    const ids = new Set(tasks.keys());
    const events = (await publishedEvents()).filter(
      (event) => event.detailType === EVENTS.taskEnded && ids.has(String(event.detail.task_id)),
    );
    const expected = [...tasks.values()]
      .filter((task) => task.task_state !== 'PROGRESS')
      .map((task) => `${task.task_id}:${task.generation}:${task.task_state}`)
      .sort();
    expect([...new Set(events.map((event) => event.detail.event_id))].sort()).toEqual(expected);
    return events.length;
  }

  it.each(FOLD_KILL_POINTS)(
    'killed %s, the same records delivered again leave totals exact, the tasks ended and versions monotonic',
    async (point) => {
      const random = seededRandom(SEED + 50 + FOLD_KILL_POINTS.indexOf(point));
      await tap.read();
      const workloads = await startWorkloads(
        foldTable.store,
        [4, 3],
        { duplicateShare: 0, minProgressSteps: 0, maxProgressSteps: 0 },
        random,
        `fold-${point}`,
      );
      const taskIds = workloads.tasks.map((task) => task.taskId);
      await applyAll(receiveBatch(deliveriesOf(workloads.bodies, point), workloads.bodies.length));
      const records = await tap.read();
      const monotony = new Monotony();
      const before = await readTasks(taskIds);
      monotony.observe(before);

      const outcome = await new LambdaProcess<FoldInput, DynamoDBBatchResponse>(
        bundles.paths.aggregator,
        foldEnvironment(),
      ).run({ event: streamEventOf(records), kill: { point, occurrence: 1, share: 0 } });
      const atKill = await readTasks(taskIds);
      monotony.observe(atKill);
      const redelivery = new LambdaProcess<FoldInput, DynamoDBBatchResponse>(
        bundles.paths.aggregator,
        foldEnvironment(),
      );
      // Lambda hands the same records over again, then the records of the fold's own writes (the endings).
      const again = await redelivery.run({ event: streamEventOf(records) });
      const afterRedelivery = await readTasks(taskIds);
      monotony.observe(afterRedelivery);
      const endings = await redelivery.run({ event: streamEventOf(await tap.read()) });
      await redelivery.stop();
      const after = await readTasks(taskIds);
      monotony.observe(after);

      expect(outcome).toMatchObject({ kind: 'killed', report: { point } });
      const report = (outcome as { report: KillReport }).report;
      const hit = report.taskId === undefined ? undefined : before.get(report.taskId);
      if (point === 'before-recount') {
        // Nothing of the killed task's fold was written.
        expect(hit).toBeDefined();
        expect(atKill.get(hit?.task_id ?? '')).toEqual(hit);
      }
      if (point === 'between-writes') {
        // The counter holds the new recount; the task's totals still lag behind it.
        expect(report.counterWritten).toBe(true);
        const counters = await foldTable.store.getCounters(atKill.get(hit?.task_id ?? '') as TaskRecord);
        expect(counters.find((counter) => counter.shard === report.shard)?.vsum).toBe(report.vsum);
        expect(atKill.get(hit?.task_id ?? '')?.counters_vsum).toBeLessThan(report.vsum ?? 0);
        expect(atKill.get(hit?.task_id ?? '')?.task_state).toBe('PROGRESS');
      }
      if (point === 'fold-before-response') {
        // Everything was done; the redelivery finds nothing newer and writes nothing.
        for (const taskId of taskIds) expect(afterRedelivery.get(taskId)).toEqual(atKill.get(taskId));
      }
      expect(again).toEqual({ kind: 'responded', response: { batchItemFailures: [] } });
      expect(endings).toEqual({ kind: 'responded', response: { batchItemFailures: [] } });
      expect(monotony.violations).toEqual([]);
      for (const taskId of taskIds) {
        const { shown, expected } = await foldGap(foldTable.store, taskId);
        expect(shown).toEqual(expected);
        expect(shown.task_state).not.toBe('PROGRESS');
      }
      expectExact(await auditTasks(foldTable.store, workloads.tasks, { reconcile: false }));
      const events = await expectEndedEvents(after);
      reportFigures(`aggregator killed ${point}`, {
        records: records.length,
        taskVersionBefore: [...before.values()].map((task) => task.version).join('/'),
        atKill: [...atKill.values()].map((task) => task.version).join('/'),
        after: [...after.values()].map((task) => task.version).join('/'),
        endedEvents: events,
      });
    },
  );

  it('keeps every task exact and monotonic while aggregators are killed at random points, batch after batch', async () => {
    const random = seededRandom(SEED + 60);
    await tap.read();
    const workloads: Workloads = await startWorkloads(
      foldTable.store,
      [6, 5, 4],
      { duplicateShare: 0.2, minProgressSteps: 0, maxProgressSteps: 2 },
      random,
      'fold-campaign',
    );
    const taskIds = workloads.tasks.map((task) => task.taskId);
    const pool = deliveriesOf(workloads.bodies, 'fold-campaign');
    const processes = new WarmProcesses<FoldInput, DynamoDBBatchResponse>(
      bundles.paths.aggregator,
      foldEnvironment(),
    );
    const monotony = new Monotony();
    const kills = noKills(FOLD_KILL_POINTS);
    const figures = {
      rounds: 0,
      records: 0,
      invocations: 0,
      bisected: 0,
      plannedPointNotReached: 0,
      betweenWritesDropped: 0,
      inexactAfterRound: 0,
    };
    const started = Date.now();

    /**
     * Shards the batch makes the fold recount (those of tasks still in progress: an ended task is not folded):
     * a point passed once per shard can be planned at any of them.
     */
    const foldedShards = async (batch: readonly DynamoDBRecord[]) => {
      const running = new Set(
        [...(await readTasks(taskIds)).values()]
          .filter((task) => task.task_state === 'PROGRESS')
          .map((task) => task.task_id),
      );
      return new Set(
        batch.flatMap((record) =>
          changesOf(record).flatMap((change) =>
            change.kind === 'shard-changed' && running.has(change.taskId)
              ? [`${change.taskId}#${change.shard}`]
              : [],
          ),
        ),
      ).size;
    };

    const foldKillPlan = (shards: number): KillPlan<FoldKillPoint> => {
      const reachable = FOLD_KILL_POINTS.filter((point) => point === 'fold-before-response' || shards > 0);
      const point = leastKilled(reachable, kills, random);
      return { point, occurrence: 1 + Math.floor(random() * Math.max(1, shards)), share: 0 };
    };

    /**
     * Lambda's stream event source for one batch: a crashed invocation gets the same records again, or (bisect on
     * function error) each half of them in turn, until every record has been answered for.
     */
    async function deliver(records: readonly DynamoDBRecord[]): Promise<void> {
      const queue: DynamoDBRecord[][] = records.length === 0 ? [] : [[...records]];
      while (queue.length > 0) {
        const batch = queue.shift() ?? [];
        figures.invocations += 1;
        // A batch with no shard to fold (the fold's own writes, duplicates) is killed less often.
        const shards = await foldedShards(batch);
        const kill =
          total(kills) < FOLD_KILLS && random() < (shards > 0 ? 0.8 : 0.15)
            ? foldKillPlan(shards)
            : undefined;
        const outcome: CrashOutcome<DynamoDBBatchResponse> = await processes.run({
          event: streamEventOf(batch),
          ...(kill === undefined ? {} : { kill }),
        });
        monotony.observe(await readTasks(taskIds));
        if (outcome.kind === 'responded') {
          expect(outcome.response.batchItemFailures).toEqual([]);
          continue;
        }
        kills[outcome.report.point as FoldKillPoint] += 1;
        if (outcome.report.point !== kill?.point) figures.plannedPointNotReached += 1;
        if (outcome.report.point === 'between-writes' && outcome.report.counterWritten === false)
          figures.betweenWritesDropped += 1;
        if (batch.length > 1 && random() < 0.3) {
          figures.bisected += 1;
          const half = Math.ceil(batch.length / 2);
          queue.unshift(batch.slice(0, half), batch.slice(half));
        } else {
          queue.unshift(batch);
        }
      }
    }

    try {
      while (pool.length > 0) {
        figures.rounds += 1;
        // Workers report: a few statuses go in, then the aggregator gets what the stream holds.
        await applyAll(receiveBatch(pool, 1 + Math.floor(random() * 4)));
        const records = await tap.read();
        figures.records += records.length;
        await deliver(records);
        // Every touched shard was recounted after its last write: the totals are those of the items.
        for (const taskId of taskIds) {
          const { shown, expected } = await foldGap(foldTable.store, taskId);
          if (JSON.stringify(shown) !== JSON.stringify(expected)) figures.inexactAfterRound += 1;
        }
      }
      // The fold's own ending writes carry the `Task Ended` events.
      await deliver(await tap.read());
    } finally {
      await processes.stop();
    }
    const after = await readTasks(taskIds);
    monotony.observe(after);

    expect(monotony.violations).toEqual([]);
    expect(figures.inexactAfterRound).toBe(0);
    expect(total(kills)).toBe(FOLD_KILLS);
    for (const point of FOLD_KILL_POINTS) expect(kills[point]).toBeGreaterThan(0);
    // The fold alone, no reconcile: exact.
    const audit = await auditTasks(foldTable.store, workloads.tasks, { reconcile: false });
    expectExact(audit);
    const events = await expectEndedEvents(after);
    reportFigures('aggregator crash campaign', {
      seed: SEED,
      kills: total(kills),
      ...Object.fromEntries(FOLD_KILL_POINTS.map((point) => [`kills.${point}`, kills[point]])),
      ...figures,
      statusesSent: workloads.statusesSent,
      monotonyObservations: monotony.observations,
      endedEvents: events,
      terminalExpected: audit.terminalExpected,
      lost: audit.lost,
      doubleCounted: audit.doubleCounted,
      seconds: Math.round((Date.now() - started) / 1000),
    });
  }, 120_000);
});
