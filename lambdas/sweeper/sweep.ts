import { reconcileTask } from '../aggregator/fold-shard';
import type { StatusUpdate } from '../core/apply-statuses';
import { nextDueAt } from '../core/fold';
import type { EndReason, SubtaskRecord, TaskRecord } from '../core/task';
import type { Log } from '../log';
import { SWEEPER } from '../service-settings';
import { applyToTask } from '../store/apply-to-task';
import type { TaskStore } from '../store/task-store';
import { errorName } from '../store/transient-errors';

/**
 * The sweeper's use case, run every minute: for each task due on the sparse due index (never a table scan), end
 * what its deadlines say has ended, carry out a cancel, end an initialization that never finished, and recount
 * a task that has been idle. Subtasks are ended through the applier's own conditional writes, so the fold counts
 * them like any status and a late real status is a duplicate. Each run ends a bounded number of subtasks per
 * task; a task with more left stays due and the next run resumes.
 */

export interface SweepDependencies {
  readonly store: TaskStore;
  readonly log: Log;
  readonly now: () => number;
  /** Subtasks one run ends per task at most. @default SWEEPER.subtasksPerTaskRun */
  readonly subtasksPerTaskRun?: number;
}

export interface SweepSummary {
  readonly tasksDue: number;
  readonly subtasksEnded: number;
  readonly tasksReconciled: number;
  readonly tasksEndedIncomplete: number;
  /** Tasks whose sweep failed: logged, and left due for the next run. */
  readonly errors: number;
}

const MINUTE_MS = 60_000;

interface Ending {
  readonly state: 'FAILURE' | 'REVOKED';
  readonly reason: EndReason;
  /** Which running subtasks end. */
  readonly applies: (subtask: SubtaskRecord) => boolean;
}

/** What, if anything, ends this task's running subtasks now: a cancel, the deadline, or the subtask timeout. */
export function endingFor(task: TaskRecord, nowMs: number): Ending | undefined {
  if (task.cancel_requested === true) return { state: 'REVOKED', reason: 'CANCELED', applies: () => true };
  const deadline = task.options.deadline_ms;
  if (deadline !== undefined && deadline <= nowMs) {
    return { state: 'FAILURE', reason: 'TIMED_OUT', applies: () => true };
  }
  const timeout = task.options.subtask_timeout_seconds;
  if (timeout === undefined) return undefined;
  return {
    state: 'FAILURE',
    reason: 'TIMED_OUT',
    applies: (subtask) => Date.parse(subtask.updated_at) + timeout * 1000 <= nowMs,
  };
}

/** Ends up to `budget` running subtasks the ending applies to; returns how many ended and whether any are left. */
async function endSubtasks(
  deps: SweepDependencies,
  task: TaskRecord,
  ending: Ending,
  nowMs: number,
): Promise<{ ended: number; more: boolean }> {
  const { store } = deps;
  let budget = deps.subtasksPerTaskRun ?? SWEEPER.subtasksPerTaskRun;
  let ended = 0;
  let more = false;
  for (let shard = 0; shard < task.write_shards && budget > 0; shard++) {
    const running = await store.runningSubtasks(task, shard, budget);
    const due = running.filter(ending.applies);
    if (running.length === budget) more = true;
    if (due.length === 0) continue;
    const updates = due.map(
      (subtask): StatusUpdate => ({
        subtaskId: subtask.subtask_id,
        status: { ...subtask.status, state: ending.state },
        reason: ending.reason,
      }),
    );
    const report = await applyToTask(store, task.task_id, updates, { now: () => nowMs });
    ended += report.writes;
    budget -= due.length;
    // A subtask heard from since it was read made its ending stale: look at it again next run.
    if (report.writes < due.length) more = true;
  }
  return { ended, more: more || budget <= 0 };
}

async function sweepTask(
  deps: SweepDependencies,
  task: TaskRecord,
  nowMs: number,
  counts: { subtasksEnded: number; tasksReconciled: number; tasksEndedIncomplete: number },
): Promise<void> {
  const { store } = deps;
  if (!task.ready) {
    // The grace runs from the initialization's last saved page (`updated_at`), not from its start.
    const giveUpAt = Date.parse(task.updated_at) + SWEEPER.initializeGraceMinutes * MINUTE_MS;
    if (giveUpAt > nowMs) {
      await store.setDueAt(task, Math.ceil(giveUpAt / 1000));
    } else if (await store.endIncomplete(task, 'FAILURE', 'INITIALIZE_INCOMPLETE', nowMs)) {
      counts.tasksEndedIncomplete++;
    }
    return;
  }
  const ending = endingFor(task, nowMs);
  const { ended, more } =
    ending === undefined ? { ended: 0, more: false } : await endSubtasks(deps, task, ending, nowMs);
  counts.subtasksEnded += ended;
  if (Date.parse(task.updated_at) + SWEEPER.idleRecountMinutes * MINUTE_MS <= nowMs) {
    // Idle: a stream record may have been lost. A recount repairs the totals, and ends the task if it is done.
    const outcome = await reconcileTask(store, task.task_id, () => nowMs);
    if (outcome.kind === 'folded') counts.tasksReconciled++;
  }
  if (more) {
    await store.setDueAt(task, Math.floor(nowMs / 1000));
    return;
  }
  const counters = await store.getCounters(task);
  const oldest = counters.reduce<number | undefined>(
    (min, counter) =>
      counter.oldest_running_ms === undefined
        ? min
        : Math.min(min ?? counter.oldest_running_ms, counter.oldest_running_ms),
    undefined,
  );
  const latest = Math.max(nowMs, ...counters.map((counter) => counter.latest_change_ms));
  await store.setDueAt(task, nextDueAt({ ...task, cancel_requested: false }, oldest, latest));
}

export async function sweep(deps: SweepDependencies): Promise<SweepSummary> {
  const nowMs = deps.now();
  const ids = await deps.store.dueTaskIds(Math.floor(nowMs / 1000), SWEEPER.tasksPerRun);
  const counts = { subtasksEnded: 0, tasksReconciled: 0, tasksEndedIncomplete: 0 };
  let errors = 0;
  for (const taskId of ids) {
    try {
      const task = await deps.store.getTask(taskId);
      if (task === undefined || task.task_state !== 'PROGRESS') continue;
      await sweepTask(deps, task, nowMs, counts);
    } catch (error) {
      errors++;
      deps.log.error('Sweep of a task failed; it stays due', { taskId, errorCode: errorName(error), error });
    }
  }
  return { tasksDue: ids.length, ...counts, errors };
}
