import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { sleep } from '../../lambdas/store/backoff';
import { runAppliers, seededRandom } from '../support/applier-harness';
import {
  newStatusQueues,
  newTaskTable,
  receiveAll,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import { initializeRequest, subtaskIds, T0 } from '../support/factories';
import { expectedProgress, workload } from '../support/histories';

/**
 * Exactness under at-least-once delivery, on DynamoDB Local: many appliers race on one task with duplicated,
 * reordered deliveries, and the counts still equal the ground truth.
 */

let table: TestTable;
let queues: TestQueues;
let deadLetters: DeadLetterQueue;

beforeAll(async () => {
  [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  deadLetters = new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl);
});

function expectExact(
  task: TaskRecord | undefined,
  truth: ReturnType<typeof expectedProgress>,
  subtasks: number,
) {
  expect(task?.task_output).toMatchObject({
    attempted: truth.attempted,
    succeeded: truth.succeeded,
    failed: truth.failed,
    skipped: truth.skipped,
  });
  expect(task?.subtasks).toEqual({
    total: subtasks,
    succeeded: truth.subtasksSucceeded,
    failed: truth.subtasksFailed,
  });
  expect(task?.task_state).toBe('SUCCESS');
}

describe('concurrent appliers', () => {
  it('count every terminal status exactly once whatever the duplicates, order, batches and concurrency', async () => {
    const runs = Number(process.env.PROPERTY_RUNS ?? 200);
    await fc.assert(
      fc.asyncProperty(
        // Mostly small tasks, so that 200 runs fit the suite's budget, with enough large ones to need chunking.
        fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 1, max: 40 }) },
          { weight: 1, arbitrary: fc.integer({ min: 41, max: 300 }) },
        ),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer(),
        async (subtaskCount, appliers, batchSize, seed) => {
          const random = seededRandom(seed);
          const taskId = uniqueName('prop');
          const ids = subtaskIds(subtaskCount);
          await table.store.initialize(initializeRequest(taskId, ids), T0);
          const { histories, bodies } = workload(
            taskId,
            ids,
            { duplicateShare: 0.1, maxProgressSteps: 3 },
            random,
          );
          const versions: number[] = [];
          let watching = true;
          const watcher = (async () => {
            while (watching) {
              const seen = await table.store.getTask(taskId);
              if (seen !== undefined) versions.push(seen.version);
              await sleep(5);
            }
          })();

          const totals = await runAppliers({
            store: table.store,
            deadLetters,
            bodies,
            appliers,
            batchSize,
            random,
            applyOptions: { retry: { maxAttempts: 6, baseDelayMs: 2, maxDelayMs: 50 } },
          });
          watching = false;
          await watcher;

          const task = await table.store.getTask(taskId);
          expectExact(task, expectedProgress(histories), subtaskCount);
          expect(totals.deadLettered).toBe(0);
          expect(totals.applied + totals.duplicate + totals.stale).toBe(bodies.length);
          expect(task?.version).toBe(1 + totals.commits);
          expect(versions).toEqual([...versions].sort((a, b) => a - b));
        },
      ),
      { numRuns: runs },
    );
    expect(await receiveAll(queues.client, queues.deadLetterQueueUrl, 1, 1)).toEqual([]);
  }, 480_000);

  it('apply each of 1,000 subtasks exactly once with 32 appliers racing on one task, run after run', async () => {
    for (let run = 0; run < 3; run++) {
      const random = seededRandom(run + 1);
      const taskId = uniqueName('hot');
      const ids = subtaskIds(1_000);
      await table.store.initialize(initializeRequest(taskId, ids), T0);
      const { histories, bodies } = workload(
        taskId,
        ids,
        { duplicateShare: 0.1, maxProgressSteps: 0 },
        random,
      );

      const totals = await runAppliers({
        store: table.store,
        deadLetters,
        bodies,
        appliers: 32,
        batchSize: 10,
        // Short waits keep the 32 appliers colliding: more conflicts per second, a harder test, a shorter run.
        applyOptions: { retry: { maxAttempts: 10, baseDelayMs: 5, maxDelayMs: 100 } },
      });

      expectExact(await table.store.getTask(taskId), expectedProgress(histories), ids.length);
      expect(totals.applied + totals.duplicate + totals.stale).toBe(bodies.length);
      expect(totals.conflicts).toBeGreaterThan(0);
    }
  }, 300_000);
});
