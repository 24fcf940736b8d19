import { type BatchOutcome, NOTHING_STARTED, type Strategy, type StrategyContext } from '../types';
import { round1ApplyBatch } from './apply';
import { TransactionalStore } from './store';
import { TransactionTally } from './tally';

/**
 * `coalesced`, round 1's transactional strategy (frozen in this folder): each Lambda batch groups its records per
 * task and gives each task one read-compute-commit cycle with one version-conditioned `TransactWriteItems`.
 */
export function coalescedStrategy(context: StrategyContext): Strategy {
  const tally = new TransactionTally();
  const store = new TransactionalStore(context.db, context.tableName, tally);
  return {
    initialize: (request) => store.initialize(request, Date.now()),
    async processBatch(batch, mayStart): Promise<BatchOutcome> {
      // One cycle applies the whole batch: it starts on all of it or, once the budget is spent, on none of it.
      if (!batch.every(mayStart)) return NOTHING_STARTED(batch);
      const result = await round1ApplyBatch(
        batch.map((delivery) => ({ messageId: String(delivery.id), body: delivery.body })),
        store,
      );
      const retried = new Set(result.retry);
      return {
        again: batch.filter((delivery) => retried.has(String(delivery.id))),
        untouched: [],
        applied: result.applied,
        duplicate: result.duplicate,
        stale: result.stale,
        rejected: result.rejected,
      };
    },
    settle: async () => undefined,
    async finalState() {
      const task = await store.getTask(context.taskId);
      const subtasks = await store.allSubtasks(context.taskId);
      return {
        task,
        statuses: new Map(subtasks.map((subtask) => [subtask.subtask_id, subtask.status])),
        // One version step per committed transaction: none lost, none counted twice.
        versions:
          task === undefined ? [] : [{ item: 'task', stored: task.version, expected: 1 + tally.commits }],
      };
    },
    figures: () => ({
      billedUnits: tally.committedUnits + tally.canceledUnits,
      committedUnits: tally.committedUnits,
      conflicts: tally.conflicts,
      readUnits: { applier: tally.taskReadUnits + tally.subtaskReadUnits, fold: 0 },
      largestItemBytes: tally.largestItemBytes,
      transactional: {
        commits: tally.commits,
        canceledUnits: tally.canceledUnits,
        taskReadUnits: tally.taskReadUnits,
        subtaskReadUnits: tally.subtaskReadUnits,
      },
    }),
    close: async () => undefined,
  };
}
