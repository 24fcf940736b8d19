/**
 * The sweeper's pass that ends running subtasks (DESIGN §4 deadlines; cancel): one write shard after the other,
 * one bounded page at a time, through the applier's own conditional writes, so the fold counts them like any
 * status and a late real status is a duplicate. A pass that runs out of time or budget leaves its cursor on the
 * task and the next run resumes there. Timeouts read only the subtasks not heard from since the cutoff.
 */
import type { StatusUpdate } from '../core/apply-statuses';
import { oldestRunningMs } from '../core/fold';
import type { EndCursor, EndReason, ShardCounter, TaskRecord } from '../core/task';
import { SWEEPER } from '../service-settings';
import { applyToTask } from '../store/apply-to-task';
import type { TaskStore } from '../store/task-store';
import type { RunBudget } from './run-budget';

export interface Ending {
  readonly state: 'FAILURE' | 'REVOKED';
  readonly reason: EndReason;
  readonly pass: EndCursor['reason'];
  /** Only subtasks last heard from at or before this time (epoch ms) end; all running ones when absent. */
  readonly heardBefore?: number;
}

/**
 * What ends this task's running subtasks now, if anything: a cancel, the deadline, or subtask timeouts that the
 * counters (every shard's) say are due, or a timeout pass still under way.
 */
export function endingFor(
  task: TaskRecord,
  counters: readonly ShardCounter[],
  nowMs: number,
): Ending | undefined {
  if (task.cancel_requested === true) return { state: 'REVOKED', reason: 'CANCELED', pass: 'CANCELED' };
  const deadline = task.options.deadline_ms;
  if (deadline !== undefined && deadline <= nowMs) {
    return { state: 'FAILURE', reason: 'TIMED_OUT', pass: 'DEADLINE' };
  }
  const timeout = task.options.subtask_timeout_seconds;
  if (timeout === undefined) return undefined;
  const heardBefore = nowMs - timeout * 1000;
  const oldest = oldestRunningMs(task, counters);
  const due = oldest !== undefined && oldest <= heardBefore;
  return due || task.end_cursor?.reason === 'TIMEOUT'
    ? { state: 'FAILURE', reason: 'TIMED_OUT', pass: 'TIMEOUT', heardBefore }
    : undefined;
}

export interface PassResult {
  readonly ended: number;
  /** Where the pass resumes; absent when it went through every shard. */
  readonly cursor?: EndCursor;
}

/** Ends what `ending` applies to, from the task's cursor on, while the run's budget lasts. */
export async function endSubtasks(
  store: TaskStore,
  task: TaskRecord,
  ending: Ending,
  budget: RunBudget,
  nowMs: number,
): Promise<PassResult> {
  let cursor: EndCursor =
    task.end_cursor?.reason === ending.pass ? task.end_cursor : { reason: ending.pass, shard: 0 };
  let ended = 0;
  while (cursor.shard < task.write_shards) {
    if (!budget.hasTime || budget.subtasksLeft <= 0) return { ended, cursor };
    const page = await store.runningSubtasks(task, cursor.shard, {
      readItems: Math.min(SWEEPER.readPageItems, budget.subtasksLeft),
      ...(cursor.after === undefined ? {} : { after: cursor.after }),
      ...(ending.heardBefore === undefined ? {} : { heardBefore: ending.heardBefore }),
    });
    if (page.subtasks.length > 0) {
      const updates = page.subtasks.map(
        (subtask): StatusUpdate => ({
          subtaskId: subtask.subtask_id,
          status: { ...subtask.status, state: ending.state },
          reason: ending.reason,
        }),
      );
      const report = await applyToTask(store, task.task_id, updates, {
        now: () => nowMs,
        remainingTimeMs: () => budget.timeLeftMs(),
        minRemainingMs: 0,
      });
      ended += report.writes;
      budget.spend(page.subtasks.length);
      // A subtask heard from since it was read made its ending stale: read the page again, fresh.
      if (report.writes < page.subtasks.length && ending.heardBefore === undefined) continue;
    }
    cursor =
      page.next === undefined
        ? { reason: ending.pass, shard: cursor.shard + 1 }
        : { reason: ending.pass, shard: cursor.shard, after: page.next };
  }
  return { ended };
}
