/**
 * Exactness under at-least-once delivery, on DynamoDB Local and its real stream: appliers race on one task with
 * duplicated, reordered deliveries while the fold reads the stream under every disorder Lambda allows
 * (duplicates, random batches, crashed invocations, partial batch responses, several stream shards), and once
 * both are done the task holds exactly the ground truth.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { sleep } from '../../lambdas/core/backoff';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { EVENTS } from '../../lambdas/service-settings';
import { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { type HarnessTotals, runAppliers } from '../support/applier-harness';
import {
  dynamoEndpoint,
  newStatusQueues,
  newTaskTable,
  receiveAll,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import { initializeRequest, T0 } from '../support/factories';
import { type FoldTotals, type StreamDisorder, startFoldHarness } from '../support/fold-harness';
import { StoreRecorder } from '../support/store-recorder';
import {
  type ExpectedProgress,
  seededRandom,
  subtaskIdsFor,
  type WorkloadShape,
  workloadFor,
} from '../support/workload';

const recorder = new StoreRecorder();
let table: TestTable;
let queues: TestQueues;
let deadLetters: DeadLetterQueue;
/** Reads for the watcher, kept out of the recorder. */
let watcherStore: TaskStore;
const figures: Record<string, number> = { runs: 0, statuses: 0, crashes: 0, resumes: 0 };

beforeAll(async () => {
  // Up to 16 appliers writing 100 subtasks each at once, beside the fold: more sockets than the SDK's 50.
  const client = new DynamoDBClient({
    endpoint: dynamoEndpoint(),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    requestHandler: { httpAgent: { maxSockets: 512 } },
  });
  [table, queues] = await Promise.all([newTaskTable(client, recorder), newStatusQueues()]);
  deadLetters = new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl);
  watcherStore = new TaskStore(documentClient(table.client), table.tableName);
});

afterAll(() => {
  console.info('concurrent appliers and fold:', JSON.stringify(figures));
});

/** What a poller saw of the task while statuses were applied and folded. */
interface Watch {
  readonly versions: number[];
  readonly problems: string[];
}

/** Reads the task every few milliseconds until stopped, noting anything a reader must never see. */
function watchTask(taskId: string, expected: ExpectedProgress) {
  const watch: Watch = { versions: [], problems: [] };
  let watching = true;
  const done = (async () => {
    let ended: string | undefined;
    while (watching) {
      const task = await watcherStore.getTask(taskId);
      if (task !== undefined) {
        watch.versions.push(task.version);
        const remaining = task.subtasks.total - task.subtasks.succeeded - task.subtasks.failed;
        if (remaining < 0) watch.problems.push(`remaining ${remaining} at version ${task.version}`);
        // Counters only ever hold what was applied: a reader never sees a count above the ground truth.
        if (task.task_output.attempted > expected.attempted || task.task_output.skipped > expected.skipped) {
          watch.problems.push(`over-counted at version ${task.version}`);
        }
        if (ended !== undefined && task.task_state !== ended) {
          watch.problems.push(`ended ${ended}, later ${task.task_state}`);
        }
        if (task.task_state !== 'PROGRESS') ended = task.task_state;
      }
      await sleep(20);
    }
  })();
  return {
    watch,
    stop: async () => {
      watching = false;
      await done;
      return watch;
    },
  };
}

/** The design's ending rule without a tolerance, computed from the ground truth. */
function expectedEnding(expected: ExpectedProgress): 'SUCCESS' | 'FAILURE' {
  const everySubtaskFailed = expected.subtasksFailed === expected.subtasks;
  const everyItemFailed = expected.attempted > 0 && expected.failed === expected.attempted;
  return everySubtaskFailed || everyItemFailed ? 'FAILURE' : 'SUCCESS';
}

async function allSubtasks(task: TaskRecord): Promise<SubtaskRecord[]> {
  const shards = await Promise.all(
    Array.from({ length: task.write_shards }, (_, shard) => table.store.readShard(task, shard)),
  );
  return shards.flat().filter((subtask) => subtask.generation === task.generation);
}

interface RunOutcome {
  readonly taskId: string;
  readonly expected: ExpectedProgress;
  readonly finals: ReadonlyMap<string, unknown>;
  readonly appliers: HarnessTotals;
  readonly fold: FoldTotals;
  readonly watch: Watch;
  readonly deliveries: number;
  readonly events: readonly { readonly detail: Record<string, unknown> }[];
}

/** The audit: the task, every subtask item, every write the store made, and what the watcher saw. */
async function expectExact(run: RunOutcome): Promise<void> {
  const { taskId, expected } = run;
  const task = await table.store.getTask(taskId);
  if (task === undefined) throw new Error(`task ${taskId} vanished`);

  // The task's totals and state.
  expect(task.task_output).toMatchObject({
    attempted: expected.attempted,
    succeeded: expected.succeeded,
    failed: expected.failed,
    skipped: expected.skipped,
  });
  expect(task.subtasks).toEqual({
    total: expected.subtasks,
    succeeded: expected.subtasksSucceeded,
    failed: expected.subtasksFailed,
  });
  expect(task.in_flight).toEqual({ attempted: 0, succeeded: 0, failed: 0, skipped: 0 });
  expect(task.task_state).toBe(expectedEnding(expected));

  // Every subtask holds its terminal status, at the version its applied writes took it to, one at a time.
  const subtasks = await allSubtasks(task);
  expect(subtasks).toHaveLength(expected.subtasks);
  const written = recorder.subtaskVersions(taskId);
  for (const subtask of subtasks) {
    expect(subtask.status).toEqual(run.finals.get(subtask.subtask_id));
    const versions = [...(written.get(subtask.subtask_id) ?? [])].sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: subtask.version }, (_, index) => index + 1));
  }
  expect(subtasks.reduce((sum, subtask) => sum + subtask.version, 0)).toBe(run.appliers.writes);

  // Every delivery was judged once; nothing was dead-lettered.
  expect(run.appliers.deadLettered).toBe(0);
  expect(run.appliers.applied + run.appliers.duplicate + run.appliers.stale).toBe(run.deliveries);
  expect(run.fold.skipped).toBe(0);

  // The task's version: 1 at initialize, +1 when ready, +1 for every fold write, and never seen going back.
  expect(task.version).toBe(1 + recorder.appliedWrites('task', taskId).length);
  expect(run.watch.problems).toEqual([]);
  expect(run.watch.versions).toEqual([...run.watch.versions].sort((a, b) => a - b));

  // The ending was announced, at least once, always as the same event.
  const ended = run.events.filter((event) => event.detail.task_id === taskId);
  expect(ended.length).toBeGreaterThan(0);
  expect(new Set(ended.map((event) => event.detail.event_id)).size).toBe(1);
  expect(ended[0]?.detail.task_state).toBe(task.task_state);
}

interface Scenario {
  readonly subtasks: number;
  readonly appliers: number;
  readonly batchSize: number;
  readonly disorder: StreamDisorder;
  readonly seed: number;
  /**
   * Write shards of the task. Tasks are small here, so several shards are asked for explicitly: the fold is the
   * same for shards of 40 subtasks as of 1,000. @default one
   */
  readonly writeShards?: number;
  /** @default up to 3 progress or retry statuses before the terminal one, a tenth of them delivered twice */
  readonly shape?: WorkloadShape;
}

const SHAPE: WorkloadShape = { duplicateShare: 0.1, minProgressSteps: 0, maxProgressSteps: 3 };

async function runScenario(scenario: Scenario): Promise<RunOutcome> {
  const random = seededRandom(scenario.seed);
  const taskId = uniqueName('prop');
  const ids = subtaskIdsFor(scenario.subtasks);
  const workload = workloadFor(taskId, ids, scenario.shape ?? SHAPE, random);
  await table.store.initialize(initializeRequest(taskId, ids), T0, {
    writeShards: scenario.writeShards ?? 1,
  });
  const fold = await startFoldHarness({
    store: table.store,
    streamArn: table.streamArn,
    random,
    disorder: scenario.disorder,
  });
  const watcher = watchTask(taskId, workload.expected);
  try {
    const appliers = await runAppliers({
      store: table.store,
      deadLetters,
      bodies: workload.deliveries.map((delivery) => delivery.body),
      appliers: scenario.appliers,
      batchSize: scenario.batchSize,
      random,
      applyOptions: { retry: { maxAttempts: 8, baseDelayMs: 2, maxDelayMs: 50 } },
    });
    const folded = await fold.drain();
    const finals = new Map(
      [...workload.histories].map(([subtaskId, history]) => [subtaskId, history.at(-1)] as const),
    );
    return {
      taskId,
      expected: workload.expected,
      finals,
      appliers,
      fold: folded,
      watch: await watcher.stop(),
      deliveries: workload.deliveries.length,
      events: fold.events.of(taskId, EVENTS.taskEnded),
    };
  } finally {
    await watcher.stop();
    await fold.stop();
  }
}

const disorder: fc.Arbitrary<StreamDisorder> = fc.record({
  shards: fc.integer({ min: 1, max: 4 }),
  maxBatchSize: fc.integer({ min: 1, max: 100 }),
  duplicateShare: fc.constantFrom(0, 0.1, 0.3),
  crashShare: fc.constantFrom(0, 0.05, 0.2),
  throttleShare: fc.constantFrom(0, 0.02, 0.1),
  replayShare: fc.constantFrom(0, 0.1),
  windowMs: fc.constantFrom(0, 5, 20),
});

const scenarios: fc.Arbitrary<Scenario> = fc.record({
  // Mostly small tasks, so that the runs fit the suite's budget; besides WIDE, which always runs first.
  subtasks: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 21, max: 60 }) },
  ),
  writeShards: fc.integer({ min: 1, max: 3 }),
  appliers: fc.integer({ min: 1, max: 16 }),
  batchSize: fc.integer({ min: 1, max: 100 }),
  disorder,
  seed: fc.integer(),
});

/** Runs first whatever fast-check draws: three write shards under the harshest disorder. */
const WIDE: Scenario = {
  subtasks: 150,
  writeShards: 3,
  appliers: 8,
  batchSize: 10,
  disorder: {
    shards: 3,
    maxBatchSize: 100,
    duplicateShare: 0.3,
    crashShare: 0.2,
    throttleShare: 0.05,
    replayShare: 0.1,
    windowMs: 5,
  },
  seed: 7,
};

describe('concurrent appliers with the fold', () => {
  it('end every task exact whatever the duplicates, order, batches, concurrency and stream disorder', async () => {
    const runs = Number(process.env.PROPERTY_RUNS ?? 15);
    await fc.assert(
      fc.asyncProperty(scenarios, async (scenario) => {
        recorder.clear();
        const started = Date.now();
        const run = await runScenario(scenario);
        await expectExact(run);
        const size = scenario.subtasks > 20 ? 'medium' : 'small';
        figures[`${size}Runs`] = (figures[`${size}Runs`] ?? 0) + 1;
        figures[`${size}Ms`] = (figures[`${size}Ms`] ?? 0) + Date.now() - started;
        if ((scenario.writeShards ?? 1) > 1) figures.shardedRuns = (figures.shardedRuns ?? 0) + 1;
        figures.runs = (figures.runs ?? 0) + 1;
        figures.statuses = (figures.statuses ?? 0) + run.deliveries;
        figures.crashes = (figures.crashes ?? 0) + run.fold.crashes;
        figures.resumes = (figures.resumes ?? 0) + run.fold.resumes;
      }),
      { numRuns: runs, examples: [[WIDE]] },
    );
    expect(figures.shardedRuns).toBeGreaterThan(0);
    expect(figures.crashes).toBeGreaterThan(0);
    expect(figures.resumes).toBeGreaterThan(0);
    expect(await receiveAll(queues.client, queues.deadLetterQueueUrl, 1, 1)).toEqual([]);
    // The timeout is a guard for a busy machine; on an idle one the default runs take well under this.
  }, 300_000);

  it('apply each of 250 subtasks exactly once with 32 appliers racing on one task while the fold runs', async () => {
    recorder.clear();
    const scenario: Scenario = {
      subtasks: 250,
      appliers: 32,
      // Three deliveries a batch: 96 in flight over some 550, as a larger task has about a tenth of its statuses
      // in flight at once with batches of ten.
      batchSize: 3,
      writeShards: 1,
      disorder: { ...WIDE.disorder, shards: 2, maxBatchSize: 1_000, crashShare: 0, throttleShare: 0 },
      seed: 32,
      shape: { duplicateShare: 0.1, minProgressSteps: 0, maxProgressSteps: 2 },
    };

    const run = await runScenario(scenario);

    await expectExact(run);
    // Only statuses of one subtask in two batches at once contend: every subtask write that lost, lost to a
    // write of the same subtask at the same version, and such losses stay rare.
    const lost = recorder.writes.filter(
      (write) => write.kind === 'subtask' && !write.applied && write.item.task_id === run.taskId,
    );
    const won = new Set(
      recorder
        .appliedWrites('subtask', run.taskId)
        .map((item) => `${String(item.subtask_id)}@${String(item.version)}`),
    );
    expect(lost).toHaveLength(run.appliers.conflicts);
    expect(
      lost.filter((write) => !won.has(`${String(write.item.subtask_id)}@${String(write.item.version)}`)),
    ).toEqual([]);
    // How rare depends on timing (`npm run bench` measures it against its target of 0.1); round 1's task-item
    // transaction lost 1.41 times per status here, and any return of a shared item would show far above this.
    expect(run.appliers.conflicts / run.appliers.applied).toBeLessThan(0.5);
    figures.hotConflictsPerApplied = run.appliers.conflicts / run.appliers.applied;
    figures.hotStatuses = run.deliveries;
  }, 300_000);
});
