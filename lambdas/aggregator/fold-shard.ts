import { RetriesExhaustedError } from '../core/errors';
import { foldTask, recountShard } from '../core/fold';
import type { TaskRecord } from '../core/task';
import type { TaskStore } from '../store/task-store';

/**
 * The fold's I/O (DESIGN §2 fold): recount one write shard from its items under the `vsum` guard, then refresh
 * the task's totals from all its counters under the guard on their sum, ending the task when every subtask is
 * done. Safe to run any number of times, concurrently, in any order.
 */

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

/** Sums the task's counters into the task item, unless newer totals are there; true when it wrote. */
export async function refreshTask(store: TaskStore, read: TaskRecord, now: () => number): Promise<boolean> {
  let task = read;
  for (let attempt = 1; attempt <= TASK_WRITE_ATTEMPTS; attempt++) {
    const result = foldTask(task, await store.getCounters(task), now());
    if (result === undefined) return false;
    if (await store.writeFold(task, result)) return true;
    // Newer totals, a cancel, an ending or a new generation got there first: look again.
    const again = await store.getTask(task.task_id);
    if (!foldable(again) || again.generation !== task.generation) return false;
    task = again;
  }
  throw new RetriesExhaustedError(`Task '${read.task_id}' kept changing under its fold`);
}

export async function foldShard(
  store: TaskStore,
  taskId: string,
  shard: number,
  now: () => number,
): Promise<FoldOutcome> {
  const task = await store.getTask(taskId);
  if (!foldable(task) || shard >= task.write_shards) return NOTHING;
  const counter = recountShard(task, shard, await store.readShard(task, shard));
  const counterWritten = await store.writeCounter(counter);
  // Even when the recount was dropped as equal, the task may not show it yet (a fold that crashed between
  // its two writes): the refresh is guarded, so trying again costs one conditional write at most.
  const taskWritten = await refreshTask(store, task, now);
  return { kind: 'folded', counterWritten, taskWritten };
}

/** Recounts every shard of a task, then its totals: repairs whatever a lost stream record left behind. */
export async function reconcileTask(
  store: TaskStore,
  taskId: string,
  now: () => number,
): Promise<FoldOutcome> {
  const task = await store.getTask(taskId);
  if (!foldable(task)) return NOTHING;
  let counterWritten = false;
  for (let shard = 0; shard < task.write_shards; shard++) {
    const counter = recountShard(task, shard, await store.readShard(task, shard));
    counterWritten = (await store.writeCounter(counter)) || counterWritten;
  }
  const taskWritten = await refreshTask(store, task, now);
  return { kind: 'folded', counterWritten, taskWritten };
}
