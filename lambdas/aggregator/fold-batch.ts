/**
 * The aggregator's use case: one batch of stream records in, the record to resume from out. Records only say
 * which write shards changed; each touched shard is recounted once, however many of its records the batch
 * holds, and each touched task is refreshed once, after all its recounts: one task write per task per batch,
 * whatever the number of its shards. Ended tasks and timed-out subtasks are published from their own records;
 * an event that does not go out never holds up the stream: a `Task Ended` stays marked on its task by its ending
 * write, any other event is deferred to the task's pending events, and the sweeper publishes both (see
 * `store/pending-events.ts`).
 */

import type { DynamoDBRecord } from 'aws-lambda';
import { type ServiceEvent, subtaskTimedOutEvent, taskEndedEvent } from '../core/events';
import type { TaskRecord } from '../core/task';
import { type EventPublisher, publishEvents } from '../events/event-publisher';
import type { Log } from '../log';
import { EVENTS } from '../service-settings';
import { inParallel } from '../store/table';
import type { FoldStore } from '../store/task-store';
import { errorName, isTransient } from '../store/transient-errors';
import { foldableTask, recountInto, refreshTask } from './fold-shard';
import { changesOf } from './stream-records';

export interface FoldBatchDependencies {
  readonly store: FoldStore;
  readonly events: EventPublisher;
  readonly log: Log;
  readonly now: () => number;
  /** Shards recounted (and tasks refreshed) at once. @default 8 */
  readonly parallelism?: number;
}

export interface FoldSummary {
  readonly records: number;
  readonly shardsFolded: number;
  readonly countersWritten: number;
  /** Task items written: at most one per task of the batch. */
  readonly tasksWritten: number;
  /** Shards of tasks absent, not ready, replaced or ended: nothing to fold. */
  readonly nothingToDo: number;
  readonly eventsPublished: number;
  /** Events EventBridge did not accept: left to the sweeper, marked on their tasks. */
  readonly eventsDeferred: number;
  /** Folds or events that failed for good: logged and skipped, since the next recount repairs them. */
  readonly skipped: number;
  /** Shards or events that failed transiently: their records come again. */
  readonly retried: number;
}

export interface FoldBatchResult {
  /**
   * The `SequenceNumber` to report as the batch item failure: the first record whose work did not commit.
   * Lambda delivers it and every later record of the batch again.
   */
  readonly resumeFrom?: string;
  readonly summary: FoldSummary;
}

/** The records a unit of work stands for: it is redone from the first of them. */
interface Work {
  readonly firstIndex: number;
  readonly describe: Record<string, unknown>;
}

/** A touched task: its shards to recount, redone from the first record of any of them. */
interface TaskWork extends Work {
  readonly taskId: string;
  readonly shards: Map<number, Work>;
}

/** Folds one stream batch. Never throws for a record: its fate is in the result. */
export async function foldBatch(
  records: readonly DynamoDBRecord[],
  deps: FoldBatchDependencies,
): Promise<FoldBatchResult> {
  const tasks = new Map<string, TaskWork>();
  const events: (Work & {
    readonly event: ServiceEvent;
    readonly task: Pick<TaskRecord, 'task_id' | 'generation' | 'expires_at'>;
  })[] = [];
  records.forEach((record, index) => {
    for (const change of changesOf(record)) {
      if (change.kind === 'shard-changed') {
        const { taskId, shard } = change;
        let work = tasks.get(taskId);
        if (work === undefined) {
          work = { firstIndex: index, taskId, shards: new Map(), describe: { taskId } };
          tasks.set(taskId, work);
        }
        if (!work.shards.has(shard))
          work.shards.set(shard, { firstIndex: index, describe: { taskId, shard } });
      } else {
        const [event, task] =
          change.kind === 'task-ended'
            ? [taskEndedEvent(change.task), change.task]
            : [subtaskTimedOutEvent(change.subtask), change.subtask];
        events.push({ firstIndex: index, event, task, describe: { eventId: event.detail.event_id } });
      }
    }
  });

  const counts = {
    shardsFolded: 0,
    countersWritten: 0,
    tasksWritten: 0,
    nothingToDo: 0,
    skipped: 0,
    retried: 0,
  };
  let resumeIndex = Number.POSITIVE_INFINITY;
  const failed = (work: Work, error: unknown) => {
    const attributes = {
      ...work.describe,
      sequenceNumber: records[work.firstIndex]?.dynamodb?.SequenceNumber,
    };
    if (isTransient(error)) {
      counts.retried++;
      resumeIndex = Math.min(resumeIndex, work.firstIndex);
      deps.log.warn('Fold will be retried', { ...attributes, errorCode: errorName(error), error });
    } else {
      // A record that fails for good would block every task on its stream shard: skip it, the next recount
      // of the shard (or a reconcile) repairs what it missed.
      counts.skipped++;
      deps.log.error('Fold skipped', { ...attributes, errorCode: errorName(error), error });
    }
  };
  const parallelism = deps.parallelism ?? 8;

  // The task items first, then every touched shard of every foldable task, then one refresh per task: the
  // refresh reads the counters once, after this batch's recounts are stored.
  const foldable: (TaskWork & { readonly task: TaskRecord })[] = [];
  await inParallel([...tasks.values()], parallelism, async (work) => {
    try {
      const task = await foldableTask(deps.store, work.taskId);
      const outside = [...work.shards.keys()].filter(
        (shard) => task === undefined || shard >= task.write_shards,
      );
      counts.nothingToDo += outside.length;
      for (const shard of outside) work.shards.delete(shard);
      if (task !== undefined && work.shards.size > 0) foldable.push({ ...work, task });
    } catch (error) {
      failed(work, error);
    }
  });
  const recounts = foldable.flatMap(({ task, shards }) =>
    [...shards].map(([shard, work]) => ({ ...work, task, shard })),
  );
  await inParallel(recounts, parallelism, async (work) => {
    try {
      if (await recountInto(deps.store, work.task, work.shard)) counts.countersWritten++;
      counts.shardsFolded++;
    } catch (error) {
      failed(work, error);
    }
  });
  // Even a task whose recounts were all dropped as equal is refreshed: it may not show them yet (a fold that
  // crashed between its writes), and the guarded write costs one attempt at most.
  await inParallel(foldable, parallelism, async (work) => {
    try {
      if (await refreshTask(deps.store, work.task, deps.now)) counts.tasksWritten++;
    } catch (error) {
      failed(work, error);
    }
  });

  const report = await publishEvents(
    deps.events,
    events.map((work) => work.event),
  );
  const failedIds = new Set(report.failed.map((failure) => failure.event.detail.event_id));
  for (const failure of report.failed) {
    deps.log.warn('Event not published; left to the sweeper', {
      eventId: failure.event.detail.event_id,
      errorCode: failure.errorCode,
      errorMessage: failure.errorMessage,
      permanent: failure.permanent,
    });
  }
  // What went out clears its task's mark; what did not is deferred, one write of the mark per task (a
  // `Task Ended` is marked already). Either write must commit before the record is checkpointed, so it fails
  // like a fold.
  const isPublished = (work: (typeof events)[number]) => !failedIds.has(work.event.detail.event_id);
  const cleared = events.filter((work) => work.event.detailType === EVENTS.taskEnded && isPublished(work));
  const deferred = new Map<string, (typeof events)[number][]>();
  for (const work of events) {
    if (work.event.detailType === EVENTS.taskEnded || isPublished(work)) continue;
    deferred.set(work.task.task_id, [...(deferred.get(work.task.task_id) ?? []), work]);
  }
  const settles = [
    ...cleared.map((work) => ({ work, settle: () => deps.store.pendingEvents.clearTaskEnded(work.task) })),
    ...[...deferred.values()].map((works) => {
      const first = works.reduce((a, b) => (b.firstIndex < a.firstIndex ? b : a));
      return {
        work: {
          firstIndex: first.firstIndex,
          describe: { taskId: first.task.task_id, events: works.length },
        },
        settle: () =>
          deps.store.pendingEvents.defer(
            first.task,
            works.map((work) => work.event),
          ),
      };
    }),
  ];
  await inParallel(settles, deps.parallelism ?? 8, async ({ work, settle }) => {
    try {
      await settle();
    } catch (error) {
      failed(work, error);
    }
  });
  const eventsPublished = report.published.length;

  const resumeFrom = Number.isFinite(resumeIndex)
    ? records[resumeIndex]?.dynamodb?.SequenceNumber
    : undefined;
  if (Number.isFinite(resumeIndex) && resumeFrom === undefined) {
    throw new Error('A stream record to retry has no SequenceNumber: the whole batch must be retried');
  }
  return {
    ...(resumeFrom === undefined ? {} : { resumeFrom }),
    summary: { records: records.length, eventsPublished, eventsDeferred: report.failed.length, ...counts },
  };
}
