/**
 * Round 1's applier (`lambdas/store/apply-to-task.ts` and `lambdas/applier/apply-batch.ts` at b7f12fc), trimmed
 * to what the bench row needs: a batch's records are parsed and grouped per task, and each task gets one
 * read-compute-commit cycle — read the task, then its subtasks, apply with the pure core, commit everything in
 * one transaction conditioned on the task's version; on a conflict back off and start again on fresh data,
 * chained in transactions of at most 99 subtasks. The bench has no dead-letter queue and no Lambda clock.
 */

import { backoffDelayMs, sleep } from '../../lambdas/core/backoff';
import { parseStatusMessage } from '../../lambdas/core/status-message';
import { ROUND1_RETRY_POLICY } from './pacing';
import { type Round1Outcome, type Round1StatusUpdate, round1ApplyStatuses } from './records';
import type { TransactionalStore } from './store';

/** A transaction holds at most 100 actions: the task update and 99 subtask puts. */
const MAX_SUBTASKS_PER_TRANSACTION = 99;

export class Round1RetriesExhaustedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Round1RetriesExhaustedError';
  }
}

export interface Round1QueueRecord {
  readonly messageId: string;
  readonly body: string;
}

export interface Round1BatchResult {
  /** Message ids to deliver again: their cycle ran out of attempts. */
  readonly retry: readonly string[];
  readonly applied: number;
  readonly duplicate: number;
  readonly stale: number;
  /** Records that could never apply: unparseable, unknown task or subtask. */
  readonly rejected: number;
}

/** Splits updates, in order, into runs that each touch at most `limit` distinct subtasks. */
function chunkBySubtasks(updates: readonly Round1StatusUpdate[], limit: number): Round1StatusUpdate[][] {
  const chunks: Round1StatusUpdate[][] = [];
  let chunk: Round1StatusUpdate[] = [];
  let subtasks = new Set<string>();
  for (const update of updates) {
    if (!subtasks.has(update.subtaskId) && subtasks.size === limit) {
      chunks.push(chunk);
      chunk = [];
      subtasks = new Set();
    }
    subtasks.add(update.subtaskId);
    chunk.push(update);
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Applies `updates` to task `taskId` exactly once each, however many appliers race on the task. */
export async function round1ApplyToTask(
  store: TransactionalStore,
  taskId: string,
  updates: readonly Round1StatusUpdate[],
): Promise<Round1Outcome[]> {
  const outcomes: Round1Outcome[] = [];
  for (const chunk of chunkBySubtasks(updates, MAX_SUBTASKS_PER_TRANSACTION)) {
    const subtaskIds = [...new Set(chunk.map((update) => update.subtaskId))];
    for (let attempt = 1; ; attempt++) {
      const task = await store.getTask(taskId);
      if (task === undefined) {
        outcomes.push(...chunk.map((): Round1Outcome => 'rejected'));
        break;
      }
      const subtasks = await store.getSubtasks(taskId, subtaskIds);
      const result = round1ApplyStatuses(task, subtasks, chunk, Date.now());
      if (result.changed.length === 0 || (await store.commit(task, result.task, result.changed, subtasks))) {
        outcomes.push(...result.outcomes);
        break;
      }
      if (attempt >= ROUND1_RETRY_POLICY.maxAttempts) {
        throw new Round1RetriesExhaustedError(`Task '${taskId}' kept changing: ${attempt} attempts`);
      }
      await sleep(backoffDelayMs(ROUND1_RETRY_POLICY, attempt, Math.random));
    }
  }
  return outcomes;
}

/** One Lambda batch: records grouped per task, one cycle per task; what ran out of attempts comes back. */
export async function round1ApplyBatch(
  records: readonly Round1QueueRecord[],
  store: TransactionalStore,
): Promise<Round1BatchResult> {
  const counts = { applied: 0, duplicate: 0, stale: 0, rejected: 0 };
  const retry: string[] = [];
  const byTask = new Map<string, { record: Round1QueueRecord; update: Round1StatusUpdate }[]>();
  for (const record of records) {
    try {
      const { taskId, subtaskId, status } = parseStatusMessage(record.body);
      byTask.set(taskId, [...(byTask.get(taskId) ?? []), { record, update: { subtaskId, status } }]);
    } catch {
      counts.rejected++;
    }
  }
  await Promise.all(
    [...byTask].map(async ([taskId, group]) => {
      try {
        const outcomes = await round1ApplyToTask(
          store,
          taskId,
          group.map((pending) => pending.update),
        );
        for (const outcome of outcomes) counts[outcome]++;
      } catch (error) {
        if (!(error instanceof Round1RetriesExhaustedError)) throw error;
        retry.push(...group.map((pending) => pending.record.messageId));
      }
    }),
  );
  return { retry, ...counts };
}
