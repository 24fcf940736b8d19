/**
 * The fold's I/O (DESIGN §2 fold): recount write shards from their items under the `vsum` guard, then refresh
 * the task's totals once from all its counters under the guard on their sum, ending the task when every
 * subtask is done. Safe to run any number of times, concurrently, in any order.
 */

import { RetriesExhaustedError } from '../core/errors';
import { foldTask, recountShard } from '../core/fold';
import type { TaskRecord } from '../core/task';
import type { FoldStore } from '../store/task-store';

export type FoldOutcome =
  /** The task is absent, not ready, ended, or has no such shard: nothing to fold. */
  | { readonly kind: 'nothing' }
  | {
      readonly kind: 'folded';
      /** False when a newer or equal recount was already stored. */
      readonly counterWritten: boolean;
      /** False when newer or equal totals were already stored. */
      readonly taskWritten: boolean;
    };

const NOTHING: FoldOutcome = { kind: 'nothing' };

/** A concurrent cancel makes an ending write fail once, then end `CANCELED`; more than this is not a race. */
const TASK_WRITE_ATTEMPTS = 4;

function foldable(task: TaskRecord | undefined): task is TaskRecord {
  return task?.ready === true && task.task_state === 'PROGRESS';
}

/** The task as read consistently, when a fold may write into it: ready and in progress. */
export async function foldableTask(store: FoldStore, taskId: string): Promise<TaskRecord | undefined> {
  const task = await store.getTask(taskId);
  return foldable(task) ? task : undefined;
}

/** Recounts one write shard of `task` into its counter; true when the recount was newer than the stored one. */
export async function recountInto(store: FoldStore, task: TaskRecord, shard: number): Promise<boolean> {
  return store.writeCounter(recountShard(task, shard, await store.readShard(task, shard)));
}

/**
 * Sums the task's counters into the task item, unless newer totals are there; true when it wrote. The counters
 * are read once: a failed write is settled by re-reading the task alone, since only a cancel (the ending is
 * conditioned on the flag as read) makes the same counters worth writing again.
 */
export async function refreshTask(store: FoldStore, read: TaskRecord, now: () => number): Promise<boolean> {
  const counters = await store.getCounters(read);
  let task = read;
  for (let attempt = 1; attempt <= TASK_WRITE_ATTEMPTS; attempt++) {
    const result = foldTask(task, counters, now());
    if (result === undefined) return false;
    if (await store.writeFold(task, result)) return true;
    const again = await store.getTask(task.task_id);
    // Ended, replaced, or newer totals already stored (another fold read the counters later): nothing left.
    if (!foldable(again) || again.generation !== task.generation) return false;
    if (again.counters_vsum >= result.task.counters_vsum) return false;
    task = again;
  }
  throw new RetriesExhaustedError(`Task '${read.task_id}' kept changing under its fold`);
}

export async function foldShard(
  store: FoldStore,
  taskId: string,
  shard: number,
  now: () => number,
): Promise<FoldOutcome> {
  const task = await foldableTask(store, taskId);
  if (task === undefined || shard >= task.write_shards) return NOTHING;
  const counterWritten = await recountInto(store, task, shard);
  // Even when the recount was dropped as equal, the task may not show it yet (a fold that crashed between
  // its two writes): the refresh is guarded, so trying again costs one conditional write at most.
  const taskWritten = await refreshTask(store, task, now);
  return { kind: 'folded', counterWritten, taskWritten };
}

/** Recounts every shard of a task, then its totals: repairs whatever a lost stream record left behind. */
export async function reconcileTask(
  store: FoldStore,
  taskId: string,
  now: () => number,
): Promise<FoldOutcome> {
  const task = await foldableTask(store, taskId);
  if (task === undefined) return NOTHING;
  let counterWritten = false;
  for (let shard = 0; shard < task.write_shards; shard++) {
    counterWritten = (await recountInto(store, task, shard)) || counterWritten;
  }
  const taskWritten = await refreshTask(store, task, now);
  return { kind: 'folded', counterWritten, taskWritten };
}
