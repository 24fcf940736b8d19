import type { Outcome, StatusUpdate } from '../core/apply-statuses';
import { ProgressError } from '../core/errors';
import { parseStatusMessage } from '../core/status-message';
import type { DeadLetter, DeadLetterQueue } from '../queue/dead-letter-queue';
import { type ApplyToTaskOptions, applyToTask } from '../store/apply-to-task';
import type { TaskStore } from '../store/task-store';

/**
 * The applier's use case: one batch of queue records in, the ids to redeliver out. Records of the same task are
 * coalesced into one read-compute-commit cycle; messages that can never apply go to the dead-letter queue with
 * their reason; nothing is dropped.
 */

export interface QueueRecord {
  readonly messageId: string;
  readonly body: string;
  /** How many times SQS has delivered this message, this delivery included. */
  readonly receiveCount: number;
}

export interface Log {
  info(message: string, attributes: Record<string, unknown>): void;
  warn(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
}

export interface ApplierDependencies {
  readonly store: TaskStore;
  readonly deadLetters: DeadLetterQueue;
  readonly log: Log;
  /** The queue's maxReceiveCount: on the last delivery a transient failure is dead-lettered with its reason. */
  readonly receiveLimit: number;
  readonly applyOptions?: ApplyToTaskOptions;
}

export interface BatchSummary {
  readonly applied: number;
  readonly duplicate: number;
  readonly stale: number;
  readonly deadLettered: number;
  /** Records left for SQS to deliver again. */
  readonly retried: number;
  readonly attempts: number;
  readonly conflicts: number;
  /** Transactions committed; each raised the task's version by one. */
  readonly commits: number;
}

export interface BatchResult {
  /** Message ids to report as `batchItemFailures`. */
  readonly retry: readonly string[];
  readonly summary: BatchSummary;
}

interface PendingUpdate {
  readonly record: QueueRecord;
  readonly update: StatusUpdate;
}

/** Our errors carry a code; anything else (throttling, network) is named by the SDK's or runtime's own name. */
function describeError(error: unknown): { errorCode: string; errorMessage: string } {
  if (error instanceof ProgressError) return { errorCode: error.code, errorMessage: error.message };
  if (error instanceof Error) return { errorCode: error.name, errorMessage: error.message };
  return { errorCode: 'INTERNAL_ERROR', errorMessage: String(error) };
}

/** Applies one SQS batch. Never throws for a bad record: its fate is in the result. */
export async function applyBatch(
  records: readonly QueueRecord[],
  deps: ApplierDependencies,
): Promise<BatchResult> {
  const letters: DeadLetter[] = [];
  const retry: string[] = [];
  const counts = { applied: 0, duplicate: 0, stale: 0 };
  let attempts = 0;
  let conflicts = 0;
  let commits = 0;

  const deadLetter = (record: QueueRecord, taskId: string | undefined, error: unknown) => {
    const reason = describeError(error);
    letters.push({ messageId: record.messageId, body: record.body, ...reason });
    deps.log.error('Status message dead-lettered', {
      messageId: record.messageId,
      taskId,
      ...reason,
      receiveCount: record.receiveCount,
    });
  };

  const fail = (record: QueueRecord, taskId: string, error: unknown) => {
    const permanent = error instanceof ProgressError && error.permanent;
    if (permanent || record.receiveCount >= deps.receiveLimit) {
      deadLetter(record, taskId, error);
      return;
    }
    retry.push(record.messageId);
    deps.log.warn('Status message will be retried', {
      messageId: record.messageId,
      taskId,
      receiveCount: record.receiveCount,
      ...describeError(error),
    });
  };

  const settle = (pending: PendingUpdate, taskId: string, outcome: Outcome) => {
    if (outcome.kind === 'rejected') deadLetter(pending.record, taskId, outcome.error);
    else counts[outcome.kind]++;
  };

  const byTask = new Map<string, PendingUpdate[]>();
  for (const record of records) {
    try {
      const { taskId, subtaskId, status } = parseStatusMessage(record.body);
      const group = byTask.get(taskId) ?? [];
      group.push({ record, update: { subtaskId, status } });
      byTask.set(taskId, group);
    } catch (error) {
      deadLetter(record, undefined, error);
    }
  }

  await Promise.all(
    [...byTask].map(async ([taskId, group]) => {
      try {
        const report = await applyToTask(
          deps.store,
          taskId,
          group.map((pending) => pending.update),
          deps.applyOptions,
        );
        attempts += report.attempts;
        conflicts += report.conflicts;
        commits += report.transactions.filter((write) => write.committed).length;
        report.outcomes.forEach((outcome, index) => {
          const pending = group[index];
          if (pending !== undefined) settle(pending, taskId, outcome);
        });
      } catch (error) {
        for (const pending of group) fail(pending.record, taskId, error);
      }
    }),
  );

  const unsentLetters = letters.length === 0 ? [] : await deps.deadLetters.send(letters);
  for (const unsent of unsentLetters) {
    retry.push(unsent.messageId);
    deps.log.error('Dead-letter queue refused a message; leaving it on the source queue', { ...unsent });
  }

  const summary: BatchSummary = {
    ...counts,
    deadLettered: letters.length - unsentLetters.length,
    retried: retry.length,
    attempts,
    conflicts,
    commits,
  };
  return { retry, summary };
}
