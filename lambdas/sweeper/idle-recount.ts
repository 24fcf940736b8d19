/**
 * The sweeper's recount of a task that has been idle (a stream record may have been lost): every write shard
 * recounted under the fold's own `vsum` guard, then the task's totals, which ends the task if it is done. A
 * large task is recounted over several runs from the cursor left on the task. A recount that finds changes the
 * counter has not shown for minutes means the stream or the aggregator stopped: that is counted, and alarmed.
 */
import { refreshTask } from '../aggregator/fold-shard';
import { recountShard } from '../core/fold';
import type { ShardCounter, SubtaskRecord, TaskRecord } from '../core/task';
import { SWEEPER } from '../service-settings';
import type { TaskStore } from '../store/task-store';
import type { RunBudget } from './run-budget';

const MINUTE_MS = 60_000;

export interface RecountResult {
  /** Shards whose items held changes older than `SWEEPER.unfoldedAfterMinutes` their counter never showed. */
  readonly unfoldedShards: number;
  /** The first shard still to recount; absent when the recount went through and the totals were refreshed. */
  readonly cursor?: number;
}

/**
 * True when an item of the task changed at least `unfoldedAfterMinutes` before `nowMs` and after every change
 * the stored counter counted: the fold never saw that change, though it had ample time to.
 */
export function hasUnfoldedChanges(
  task: TaskRecord,
  items: readonly SubtaskRecord[],
  stored: ShardCounter | undefined,
  nowMs: number,
): boolean {
  const foldedUpTo = stored?.latest_change_ms ?? Date.parse(task.created_at);
  const settledBy = nowMs - SWEEPER.unfoldedAfterMinutes * MINUTE_MS;
  return items.some((item) => {
    if (item.generation !== task.generation) return false;
    const changed = Date.parse(item.updated_at);
    return changed > foldedUpTo && changed <= settledBy;
  });
}

export async function recountIdleTask(
  store: TaskStore,
  task: TaskRecord,
  counters: readonly ShardCounter[],
  budget: RunBudget,
  nowMs: number,
): Promise<RecountResult> {
  const stored = new Map(counters.map((counter) => [counter.shard, counter]));
  let unfoldedShards = 0;
  for (let shard = task.recount_cursor ?? 0; shard < task.write_shards; shard++) {
    if (!budget.hasTime) return { unfoldedShards, cursor: shard };
    const items = await store.readShard(task, shard);
    if (hasUnfoldedChanges(task, items, stored.get(shard), nowMs)) unfoldedShards++;
    await store.writeCounter(recountShard(task, shard, items));
  }
  await refreshTask(store, task, () => nowMs);
  return { unfoldedShards };
}
