/**
 * How a task sits in the one table. The task item and its write shards' counters share the partition
 * `TASK#<task_id>`; each subtask item lives in its write shard's partition `TASK#<task_id>#<n>`, so a hot task's
 * status writes spread over `write_shards` partition keys and one shard's recount is one query.
 */

import type { ShardCounter, SubtaskRecord, TaskRecord } from '../core/task';
import { DUE_INDEX, LIST_INDEXES, TABLE_KEYS } from '../service-settings';

export const TASK_SORT_KEY = 'TASK';
export const COUNTER_SORT_KEY_PREFIX = 'SHARD#';
export const SUBTASK_SORT_KEY_PREFIX = 'SUB#';
/**
 * The urgent lane of the sparse due index: few items, tasks in progress or with events to publish. Routine
 * idle recounts wait in their own lane, so that they never stand before a cancel, a deadline or a timeout.
 */
export const DUE_PARTITION = 'DUE';
export const IDLE_PARTITION = 'IDLE';
export type DueLane = 'urgent' | 'routine';

export function duePartition(lane: DueLane): string {
  return lane === 'urgent' ? DUE_PARTITION : IDLE_PARTITION;
}
/** The one partition of the index of all tasks (short: every task item carries it). */
export const LIST_PARTITION = 'ALL';

export type ItemKey = { readonly [K in typeof TABLE_KEYS.partitionKey | typeof TABLE_KEYS.sortKey]: string };
type DueKey = { readonly [K in typeof DUE_INDEX.partitionKey]?: string } & {
  readonly [K in typeof DUE_INDEX.sortKey]?: number;
};
type ListKey = { readonly [K in typeof LIST_INDEXES.all.partitionKey]: string };
export type TaskItem = TaskRecord & ItemKey & DueKey & ListKey;
export type CounterItem = ShardCounter & ItemKey;
export type SubtaskItem = SubtaskRecord & ItemKey;

function key(pk: string, sk: string): ItemKey {
  return { [TABLE_KEYS.partitionKey]: pk, [TABLE_KEYS.sortKey]: sk };
}

export function taskPartition(taskId: string): string {
  return `TASK#${taskId}`;
}

export function shardPartition(taskId: string, shard: number): string {
  return `TASK#${taskId}#${shard}`;
}

export function taskKey(taskId: string): ItemKey {
  return key(taskPartition(taskId), TASK_SORT_KEY);
}

export function counterKey(taskId: string, shard: number): ItemKey {
  return key(taskPartition(taskId), `${COUNTER_SORT_KEY_PREFIX}${shard}`);
}

export function subtaskKey(taskId: string, shard: number, subtaskId: string): ItemKey {
  return key(shardPartition(taskId, shard), `${SUBTASK_SORT_KEY_PREFIX}${subtaskId}`);
}

export function taskItem(task: TaskRecord, dueAt?: number): TaskItem {
  return {
    ...task,
    ...taskKey(task.task_id),
    [LIST_INDEXES.all.partitionKey]: LIST_PARTITION,
    ...(dueAt === undefined ? {} : { [DUE_INDEX.partitionKey]: DUE_PARTITION, [DUE_INDEX.sortKey]: dueAt }),
  };
}

export function counterItem(counter: ShardCounter): CounterItem {
  return { ...counter, ...counterKey(counter.task_id, counter.shard) };
}

export function subtaskItem(subtask: SubtaskRecord, shard: number): SubtaskItem {
  return { ...subtask, ...subtaskKey(subtask.task_id, shard, subtask.subtask_id) };
}

/** What a table key is: the item kinds the stream and the fold tell apart. */
export type ParsedKey =
  | { readonly kind: 'task'; readonly taskId: string }
  | { readonly kind: 'counter'; readonly taskId: string; readonly shard: number }
  | { readonly kind: 'subtask'; readonly taskId: string; readonly shard: number; readonly subtaskId: string }
  | { readonly kind: 'other' };

const SUBTASK_PARTITION = /^TASK#([A-Za-z0-9._:-]{1,128})#(\d{1,6})$/;
const TASK_PARTITION = /^TASK#([A-Za-z0-9._:-]{1,128})$/;
const COUNTER_SORT_KEY = /^SHARD#(\d{1,6})$/;

/** Ids never contain `#` (see `identifiers.ts`), so a key splits one way only. */
export function parseKey(pk: string, sk: string): ParsedKey {
  const subtask = SUBTASK_PARTITION.exec(pk);
  if (subtask !== null && sk.startsWith(SUBTASK_SORT_KEY_PREFIX)) {
    return {
      kind: 'subtask',
      taskId: subtask[1] as string,
      shard: Number(subtask[2]),
      subtaskId: sk.slice(SUBTASK_SORT_KEY_PREFIX.length),
    };
  }
  const task = TASK_PARTITION.exec(pk);
  if (task === null) return { kind: 'other' };
  const taskId = task[1] as string;
  if (sk === TASK_SORT_KEY) return { kind: 'task', taskId };
  const counter = COUNTER_SORT_KEY.exec(sk);
  return counter === null ? { kind: 'other' } : { kind: 'counter', taskId, shard: Number(counter[1]) };
}

function withoutKeys<T>(item: Record<string, unknown>): T {
  const {
    [TABLE_KEYS.partitionKey]: _pk,
    [TABLE_KEYS.sortKey]: _sk,
    [DUE_INDEX.partitionKey]: _duePk,
    [DUE_INDEX.sortKey]: _dueAt,
    [LIST_INDEXES.all.partitionKey]: _listPk,
    ...record
  } = item;
  return record as T;
}

/** Items come from our own writes; the table is not an external input, so they are trusted as records. */
export function taskFromItem(item: Record<string, unknown>): TaskRecord {
  return withoutKeys<TaskRecord>(item);
}

export function counterFromItem(item: Record<string, unknown>): ShardCounter {
  return withoutKeys<ShardCounter>(item);
}

export function subtaskFromItem(item: Record<string, unknown>): SubtaskRecord {
  return withoutKeys<SubtaskRecord>(item);
}
