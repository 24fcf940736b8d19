import type { SubtaskRecord, TaskRecord } from '../core/task';
import { TABLE_KEYS } from '../service-settings';

/**
 * How task and subtask records sit in the one table: the task item and its subtask items share a partition
 * (`TASK#<task_id>`), so a task's subtasks are one Query away and no item grows with the fan-out.
 */

const TASK_SORT_KEY = 'TASK';
const SUBTASK_PREFIX = 'SUB#';

export type ItemKey = { readonly [K in typeof TABLE_KEYS.partitionKey | typeof TABLE_KEYS.sortKey]: string };
export type TaskItem = TaskRecord & ItemKey;
export type SubtaskItem = SubtaskRecord & ItemKey;

export function taskPartition(taskId: string): string {
  return `TASK#${taskId}`;
}

export function taskKey(taskId: string): ItemKey {
  return { [TABLE_KEYS.partitionKey]: taskPartition(taskId), [TABLE_KEYS.sortKey]: TASK_SORT_KEY };
}

export function subtaskSortKey(subtaskId: string): string {
  return `${SUBTASK_PREFIX}${subtaskId}`;
}

export function subtaskKey(taskId: string, subtaskId: string): ItemKey {
  return {
    [TABLE_KEYS.partitionKey]: taskPartition(taskId),
    [TABLE_KEYS.sortKey]: subtaskSortKey(subtaskId),
  };
}

export const SUBTASK_SORT_KEY_PREFIX = SUBTASK_PREFIX;

export function taskItem(task: TaskRecord): TaskItem {
  return { ...task, ...taskKey(task.task_id) };
}

export function subtaskItem(subtask: SubtaskRecord): SubtaskItem {
  return { ...subtask, ...subtaskKey(subtask.task_id, subtask.subtask_id) };
}

function withoutKeys<T>(item: Record<string, unknown>): T {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, ...record } = item;
  return record as T;
}

/** Items come from our own writes; the table is not an external input, so they are trusted as records. */
export function taskFromItem(item: Record<string, unknown>): TaskRecord {
  return withoutKeys<TaskRecord>(item);
}

export function subtaskFromItem(item: Record<string, unknown>): SubtaskRecord {
  return withoutKeys<SubtaskRecord>(item);
}
