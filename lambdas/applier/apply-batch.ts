/**
 * The applier's use case: one batch of queue records in, the ids to redeliver out. Records of the same task
 * share one read of the task item; each changed subtask is one conditional write of its own item; messages that
 * can never apply go to the dead-letter queue with their reason and attributes; nothing is dropped.
 */

import type { Outcome, StatusUpdate } from '../core/apply-statuses';
import { ProgressError } from '../core/errors';
import { parseStatusMessage } from '../core/status-message';
import { isTerminalState } from '../core/subtask-status';
import type { Log } from '../log';
import type { DeadLetter, DeadLetterQueue } from '../queue/dead-letter-queue';
import { type ApplyToTaskOptions, applyToTask } from '../store/apply-to-task';
import type { ApplierStore } from '../store/task-store';
import { errorName } from '../store/transient-errors';

export interface QueueRecord {
  readonly messageId: string;
  readonly body: string;
  /** How many times SQS has delivered this message, this delivery included. */
  readonly receiveCount: number;
  readonly attributes?: DeadLetter['attributes'];
}

export type { Log } from '../log';

export interface ApplierDependencies {
  readonly store: ApplierStore;
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
  /** Subtask writes that lost to a concurrent writer of the same subtask, and were retried. */
  readonly conflicts: number;
  /** Subtask items written. */
  readonly writes: number;
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

/** Our errors carry a code; anything else by its network error code (ECONNRESET) or the SDK's error name. */
function describeError(error: unknown): { errorCode: string; errorMessage: string } {
  return {
    errorCode: errorName(error),
    errorMessage: error instanceof Error ? error.message : String(error),
  };
}

/** Applies one SQS batch. Never throws for a bad record: its fate is in the result. */
export async function applyBatch(
  records: readonly QueueRecord[],
  deps: ApplierDependencies,
): Promise<BatchResult> {
  const letters: DeadLetter[] = [];
  const retry: string[] = [];
  const counts = { applied: 0, duplicate: 0, stale: 0 };
  let conflicts = 0;
  let writes = 0;

  const deadLetter = (record: QueueRecord, taskId: string | undefined, error: unknown) => {
    const reason = describeError(error);
    letters.push({
      messageId: record.messageId,
      body: record.body,
      ...reason,
      ...(record.attributes === undefined ? {} : { attributes: record.attributes }),
    });
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
    if (outcome.kind === 'rejected') {
      deadLetter(pending.record, taskId, outcome.error);
      return;
    }
    counts[outcome.kind]++;
    // A terminal status that changes nothing is worth a look: a worker reporting twice, or a subtask the
    // service already ended (deadline, cancel) finishing after all.
    if (outcome.kind !== 'applied' && isTerminalState(pending.update.status.state)) {
      deps.log.warn(`Terminal status ignored as ${outcome.kind}`, {
        messageId: pending.record.messageId,
        taskId,
        subtaskId: pending.update.subtaskId,
        state: pending.update.status.state,
      });
    }
  };

  const byTask = new Map<string, PendingUpdate[]>();
  for (const record of records) {
    try {
      const { taskId, subtaskId, status, generation } = parseStatusMessage(record.body);
      const group = byTask.get(taskId) ?? [];
      group.push({
        record,
        update: { subtaskId, status, ...(generation === undefined ? {} : { generation }) },
      });
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
        conflicts += report.conflicts;
        writes += report.writes;
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
    conflicts,
    writes,
  };
  return { retry, summary };
}
