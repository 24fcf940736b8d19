/**
 * The sweeper's use case, run every minute: for each task due on the sparse due index (never a table scan),
 * publish the events still unpublished, end an initialization that never finished, end what a cancel, the
 * deadline or subtask timeouts say has ended, and recount a task that has been idle. Urgent work comes first:
 * the urgent lane of the index before the routine lane of idle recounts, and within a run's tasks, every task
 * with urgent work before those that only need a recount. A run is bounded in time (the Lambda's remaining
 * time, checked before each task, shard and page) and in the subtasks it ends; unfinished passes leave their
 * cursors on the task, which stays due, and the next run resumes there.
 */
import { nextDueAt, oldestRunningMs } from '../core/fold';
import type { ShardCounter, TaskRecord } from '../core/task';
import type { EventPublisher } from '../events/event-publisher';
import type { Log } from '../log';
import { SWEEPER } from '../service-settings';
import type { DueLane } from '../store/task-items';
import type { TaskStore } from '../store/task-store';
import { errorName } from '../store/transient-errors';
import { endingFor, endSubtasks } from './end-subtasks';
import { recountIdleTask } from './idle-recount';
import { publishPending } from './publish-pending';
import { RunBudget } from './run-budget';

export interface SweepDependencies {
  readonly store: TaskStore;
  /** Where unpublished events go again. */
  readonly events: EventPublisher;
  readonly log: Log;
  readonly now: () => number;
  /** Time this run has left (the Lambda context's `getRemainingTimeInMillis`). @default unbounded */
  readonly remainingTimeMs?: () => number;
  /** Subtasks one run ends at most, over all its tasks. @default SWEEPER.subtasksPerRun */
  readonly subtasksPerRun?: number;
}

export interface SweepSummary {
  readonly tasksDue: number;
  readonly subtasksEnded: number;
  readonly tasksReconciled: number;
  readonly tasksEndedIncomplete: number;
  readonly eventsPublished: number;
  /** Events that failed for good in this run: they stay marked on their tasks. */
  readonly eventsUndeliverable: number;
  /** Shards whose idle recount found changes the fold never counted: the stream consumer has stopped. */
  readonly unfoldedShards: number;
  /** Due tasks left for the next run because this one ran out of time. */
  readonly tasksDeferred: number;
  /** Tasks whose sweep failed: logged, and left due for the next run. */
  readonly errors: number;
}

type Counts = { -readonly [K in keyof SweepSummary]: number };

const MINUTE_MS = 60_000;

interface Sweep {
  readonly deps: SweepDependencies;
  readonly budget: RunBudget;
  readonly nowMs: number;
  readonly counts: Counts;
}

function isIdle(task: TaskRecord, nowMs: number): boolean {
  return Date.parse(task.updated_at) + SWEEPER.idleRecountMinutes * MINUTE_MS <= nowMs;
}

/** True when the task needs more than a routine idle recount: it goes before those that do not. */
function isUrgent(task: TaskRecord, counters: readonly ShardCounter[], nowMs: number): boolean {
  return (
    task.task_state !== 'PROGRESS' ||
    task.outbox_pending === true ||
    !task.ready ||
    task.end_cursor !== undefined ||
    endingFor(task, counters, nowMs) !== undefined
  );
}

/** The next due time of a task in progress with no pass unfinished, and its lane. */
function nextDue(task: TaskRecord, counters: readonly ShardCounter[], nowMs: number) {
  // Swept now: the idle recount is due from now on, even when nothing changed.
  const latest = Math.max(nowMs, ...counters.map((counter) => counter.latest_change_ms));
  const settled = { ...task, cancel_requested: false };
  const dueAt = nextDueAt(settled, oldestRunningMs(task, counters), latest);
  const idleAt = nextDueAt({ ...settled, options: {} }, undefined, latest);
  const lane: DueLane = dueAt < idleAt ? 'urgent' : 'routine';
  return { dueAt, lane };
}

async function sweepEnded(run: Sweep, task: TaskRecord): Promise<void> {
  const pending = await publishPending(run.deps, task, run.nowMs);
  run.counts.eventsPublished += pending.published;
  run.counts.eventsUndeliverable += pending.undeliverable;
  await run.deps.store.pendingEvents.settleEnded(task, pending.retryAt);
}

async function sweepIncomplete(run: Sweep, task: TaskRecord): Promise<void> {
  const { store } = run.deps;
  // The grace runs from the initialization's last saved page (`updated_at`), not from its start.
  const giveUpAt = Date.parse(task.updated_at) + SWEEPER.initializeGraceMinutes * MINUTE_MS;
  if (giveUpAt > run.nowMs) await store.setDueAt(task, Math.ceil(giveUpAt / 1000));
  else if (await store.endIncomplete(task, 'FAILURE', 'INITIALIZE_INCOMPLETE', run.nowMs)) {
    run.counts.tasksEndedIncomplete++;
  }
}

async function sweepInProgress(run: Sweep, task: TaskRecord, counters: readonly ShardCounter[]) {
  const { store } = run.deps;
  const { budget, nowMs, counts } = run;
  const pending = await publishPending(run.deps, task, nowMs);
  counts.eventsPublished += pending.published;
  counts.eventsUndeliverable += pending.undeliverable;

  const ending = endingFor(task, counters, nowMs);
  const pass = ending === undefined ? { ended: 0 } : await endSubtasks(store, task, ending, budget, nowMs);
  counts.subtasksEnded += pass.ended;

  let recountCursor = task.recount_cursor;
  if (pass.cursor === undefined && (recountCursor !== undefined || isIdle(task, nowMs))) {
    // Idle: a stream record may have been lost. A recount repairs the totals, and ends the task if it is done.
    const recount = await recountIdleTask(store, task, counters, budget, nowMs);
    counts.unfoldedShards += recount.unfoldedShards;
    if (recount.cursor === undefined) counts.tasksReconciled++;
    recountCursor = recount.cursor;
  }

  const nowSeconds = Math.floor(nowMs / 1000);
  const cursors = {
    ...(pass.cursor === undefined ? {} : { endCursor: pass.cursor }),
    ...(recountCursor === undefined ? {} : { recountCursor }),
  };
  if (pass.cursor !== undefined) {
    await store.setDueAt(task, nowSeconds, { lane: 'urgent', ...cursors });
    return;
  }
  if (recountCursor !== undefined) {
    await store.setDueAt(task, nowSeconds, { lane: 'routine', ...cursors });
    return;
  }
  const next = nextDue(task, await store.getCounters(task), nowMs);
  const dueAt = pending.retryAt === undefined ? next.dueAt : Math.min(next.dueAt, pending.retryAt);
  await store.setDueAt(task, dueAt, { lane: dueAt < next.dueAt ? 'urgent' : next.lane });
}

async function sweepTask(run: Sweep, task: TaskRecord, counters: readonly ShardCounter[]): Promise<void> {
  if (task.task_state !== 'PROGRESS') await sweepEnded(run, task);
  else if (!task.ready) await sweepIncomplete(run, task);
  else await sweepInProgress(run, task, counters);
}

interface DueTask {
  readonly task: TaskRecord;
  readonly counters: readonly ShardCounter[];
}

async function readDue(run: Sweep, taskId: string): Promise<DueTask | undefined> {
  const { store } = run.deps;
  const task = await store.getTask(taskId);
  if (task === undefined) return undefined;
  const counters = task.task_state === 'PROGRESS' && task.ready ? await store.getCounters(task) : [];
  return { task, counters };
}

export async function sweep(deps: SweepDependencies): Promise<SweepSummary> {
  const nowMs = deps.now();
  const budget = new RunBudget(
    deps.remainingTimeMs ?? (() => Number.POSITIVE_INFINITY),
    SWEEPER.timeMarginSeconds * 1000,
    deps.subtasksPerRun ?? SWEEPER.subtasksPerRun,
  );
  const counts: Counts = {
    tasksDue: 0,
    subtasksEnded: 0,
    tasksReconciled: 0,
    tasksEndedIncomplete: 0,
    eventsPublished: 0,
    eventsUndeliverable: 0,
    unfoldedShards: 0,
    tasksDeferred: 0,
    errors: 0,
  };
  const run: Sweep = { deps, budget, nowMs, counts };
  const nowSeconds = Math.floor(nowMs / 1000);
  const ids = [
    ...(await deps.store.dueTaskIds(nowSeconds, SWEEPER.tasksPerRun, 'urgent')),
    ...(await deps.store.dueTaskIds(nowSeconds, SWEEPER.tasksPerRun, 'routine')),
  ];
  counts.tasksDue = ids.length;

  const failed = (taskId: string, error: unknown) => {
    counts.errors++;
    deps.log.error('Sweep of a task failed; it stays due', { taskId, errorCode: errorName(error), error });
  };
  const routine: DueTask[] = [];
  for (const [index, taskId] of ids.entries()) {
    if (!budget.hasTime) {
      counts.tasksDeferred += ids.length - index + routine.length;
      return counts;
    }
    try {
      const due = await readDue(run, taskId);
      if (due === undefined) continue;
      if (isUrgent(due.task, due.counters, nowMs)) await sweepTask(run, due.task, due.counters);
      else routine.push(due);
    } catch (error) {
      failed(taskId, error);
    }
  }
  for (const [index, due] of routine.entries()) {
    if (!budget.hasTime) {
      counts.tasksDeferred += routine.length - index;
      break;
    }
    try {
      await sweepTask(run, due.task, due.counters);
    } catch (error) {
      failed(due.task.task_id, error);
    }
  }
  return counts;
}
