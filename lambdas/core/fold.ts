/**
 * The fold: a write shard's counter recounted from its items, and the task's totals summed from its counters.
 * Pure; the aggregator reads the items and writes the results under the monotonic `vsum` guards.
 */

import { SWEEPER } from '../service-settings';
import { isTerminalState } from './subtask-status';
import {
  type ItemCounts,
  type ShardCounter,
  type SubtaskCounters,
  type SubtaskRecord,
  type TaskRecord,
  type TaskState,
  ZERO_COUNTS,
} from './task';

const MINUTE_MS = 60_000;

/**
 * What a lost subtask adds to its shard's `vsum`. Removing an item takes its version out of the sum; counting
 * the loss with more than any version can reach keeps the sum growing, so the recount that sees the loss wins.
 * 1,000 subtasks a shard × 2^32 stays far below 2^53.
 */
export const LOST_WEIGHT = 2 ** 32;

function add(a: ItemCounts, b: ItemCounts): ItemCounts {
  return {
    attempted: a.attempted + b.attempted,
    succeeded: a.succeeded + b.succeeded,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
  };
}

function countsOf({ attempted, succeeded, failed, skipped }: ItemCounts): ItemCounts {
  return { attempted, succeeded, failed, skipped };
}

/**
 * Recounts write shard `shard` of `task` from scratch. Items of another generation are not the task's and are
 * ignored; a subtask with no item at all (removed while running) counts as a failed subtask, `lost`.
 */
export function recountShard(task: TaskRecord, shard: number, items: readonly SubtaskRecord[]): ShardCounter {
  const own = items.filter((item) => item.generation === task.generation);
  let counts = ZERO_COUNTS;
  let inFlight = ZERO_COUNTS;
  let succeeded = 0;
  let failed = 0;
  let vsum = 0;
  let latest = Date.parse(task.created_at);
  let oldestRunning: number | undefined;
  for (const item of own) {
    const changed = Date.parse(item.updated_at);
    vsum += item.version;
    latest = Math.max(latest, changed);
    if (isTerminalState(item.status.state)) {
      counts = add(counts, countsOf(item.status));
      if (item.status.state === 'SUCCESS') succeeded++;
      else failed++;
    } else {
      inFlight = add(inFlight, countsOf(item.status));
      oldestRunning = Math.min(oldestRunning ?? changed, changed);
    }
  }
  const lost = Math.max(0, (task.shard_sizes[shard] ?? 0) - own.length);
  vsum += lost * LOST_WEIGHT;
  return {
    task_id: task.task_id,
    shard,
    generation: task.generation,
    counts,
    subtasks_succeeded: succeeded,
    subtasks_failed: failed + lost,
    done: succeeded + failed + lost,
    lost,
    in_flight: inFlight,
    latest_change_ms: latest,
    ...(oldestRunning === undefined ? {} : { oldest_running_ms: oldestRunning }),
    vsum,
    ...(task.expires_at === undefined ? {} : { expires_at: task.expires_at }),
  };
}

/**
 * The design's ending rule, in integers (basis points) so that 32.3% of 1,000 is exactly 323. With a tolerance,
 * failed items and failed subtasks are each held to it; without one, a task fails only when every subtask
 * failed or every attempted item did.
 */
export function endingState(
  items: ItemCounts,
  subtasks: SubtaskCounters,
  toleratedBp: number | undefined,
): 'SUCCESS' | 'FAILURE' {
  // BigInt: sums of up to 2^53 items times 10,000 basis points would lose precision as numbers.
  const exceeds = (failed: number, of: number, bp: number) =>
    BigInt(failed) * 10_000n > BigInt(bp) * BigInt(of);
  if (toleratedBp !== undefined) {
    return exceeds(items.failed, items.attempted, toleratedBp) ||
      exceeds(subtasks.failed, subtasks.total, toleratedBp)
      ? 'FAILURE'
      : 'SUCCESS';
  }
  const everySubtaskFailed = subtasks.failed === subtasks.total;
  const everyItemFailed = items.attempted > 0 && items.failed === items.attempted;
  return everySubtaskFailed || everyItemFailed ? 'FAILURE' : 'SUCCESS';
}

/**
 * True only when the task ended by its subtasks (not canceled), every subtask ended `SUCCESS`, items were
 * attempted and none failed: the reference reports no success for a task that found nothing to do.
 */
export function taskSucceeded(task: TaskRecord): boolean {
  return (
    (task.task_state === 'SUCCESS' || task.task_state === 'FAILURE') &&
    task.subtasks.succeeded === task.subtasks.total &&
    task.task_output.attempted > 0 &&
    task.task_output.failed === 0
  );
}

/**
 * When the least recently heard-from running subtask of the task was last heard from, over every shard: a
 * shard whose counter was never recounted since initialize has no oldest-running time, and its running
 * subtasks have waited since that counter was written.
 */
export function oldestRunningMs(task: TaskRecord, counters: readonly ShardCounter[]): number | undefined {
  let oldest: number | undefined;
  for (const counter of counters) {
    const running = (task.shard_sizes[counter.shard] ?? 0) > counter.done;
    const since = counter.oldest_running_ms ?? (running ? counter.latest_change_ms : undefined);
    if (since !== undefined) oldest = Math.min(oldest ?? since, since);
  }
  return oldest;
}

function ceilToMinute(ms: number): number {
  return Math.ceil(ms / MINUTE_MS) * MINUTE_MS;
}

/**
 * When the sweeper should next look at a task in progress (epoch seconds): its deadline, the earliest subtask
 * timeout, a cancel to carry out, or a recount after idling. Rounded up to the minute the sweeper runs at, so
 * that most task writes leave the sparse index untouched.
 */
export function nextDueAt(
  task: TaskRecord,
  oldestRunningMs: number | undefined,
  latestChangeMs: number,
): number {
  const candidates = [ceilToMinute(latestChangeMs + SWEEPER.idleRecountMinutes * MINUTE_MS)];
  if (task.options.deadline_ms !== undefined) candidates.push(ceilToMinute(task.options.deadline_ms));
  const timeout = task.options.subtask_timeout_seconds;
  if (timeout !== undefined && oldestRunningMs !== undefined) {
    candidates.push(ceilToMinute(oldestRunningMs + timeout * 1000));
  }
  if (task.cancel_requested === true) candidates.push(latestChangeMs);
  return Math.floor(Math.min(...candidates) / 1000);
}

export interface FoldResult {
  /** The task as the counters make it; `version` and `updated_at` moved on. */
  readonly task: TaskRecord;
  /** When the sweeper should next look at it; absent once it ended. */
  readonly dueAt?: number;
}

/**
 * The task's totals from its shard counters (every shard's, of its generation). Returns undefined when the
 * counters carry nothing newer than what the task already shows, or the task has ended: an ended task never
 * changes again.
 */
export function foldTask(
  task: TaskRecord,
  counters: readonly ShardCounter[],
  nowMs: number,
): FoldResult | undefined {
  if (task.task_state !== 'PROGRESS') return undefined;
  const own = counters.filter((counter) => counter.generation === task.generation);
  const vsum = own.reduce((sum, counter) => sum + counter.vsum, 0);
  if (vsum <= task.counters_vsum) return undefined;

  const { counts, inFlight, succeeded, failed, done, latest } = own.reduce(
    (sum, counter) => ({
      counts: add(sum.counts, counter.counts),
      inFlight: add(sum.inFlight, counter.in_flight),
      succeeded: sum.succeeded + counter.subtasks_succeeded,
      failed: sum.failed + counter.subtasks_failed,
      done: sum.done + counter.done,
      latest: Math.max(sum.latest, counter.latest_change_ms),
    }),
    {
      counts: ZERO_COUNTS,
      inFlight: ZERO_COUNTS,
      succeeded: 0,
      failed: 0,
      done: 0,
      latest: Date.parse(task.created_at),
    },
  );
  const subtasks = { total: task.subtasks.total, succeeded, failed };
  const ended = done >= task.subtasks.total;
  const state: TaskState = !ended
    ? 'PROGRESS'
    : task.cancel_requested === true
      ? 'CANCELED'
      : endingState(counts, subtasks, task.options.tolerated_failure_bp);
  const now = new Date(nowMs).toISOString();
  const next: TaskRecord = {
    ...task,
    version: task.version + 1,
    task_state: state,
    task_output: {
      ...task.task_output,
      ...counts,
      duration_ms: Math.max(
        task.task_output.duration_ms,
        Math.round(latest - task.task_output.start_time * 1000),
      ),
    },
    in_flight: inFlight,
    subtasks,
    counters_vsum: vsum,
    updated_at: now,
    ...(ended ? { ended_at: now } : {}),
  };
  return ended ? { task: next } : { task: next, dueAt: nextDueAt(next, oldestRunningMs(task, own), latest) };
}
