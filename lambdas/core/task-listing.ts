/**
 * Which tasks a listing asks for, and which index answers it without a scan: a state alone is its own partition
 * of the state index; "ended" and a group's states are a filter on a projected attribute, under a read budget.
 */
import { remainingSubtasks, TASK_STATES, type TaskRecord, type TaskState } from './task';

/** A state, or `running` (= `PROGRESS`) or `ended` (any other). */
export const LIST_STATES = [...TASK_STATES, 'running', 'ended'] as const;
export type ListState = (typeof LIST_STATES)[number];

export interface TaskListQuery {
  readonly state?: ListState;
  readonly group?: string;
  readonly limit: number;
  /** Index entries one request may read, matching or not: a filtered page may come back short, with a cursor. */
  readonly readBudget: number;
  /** Continue after this task. */
  readonly after?: ListPosition;
}

/** Where a page stopped: a task, by its creation time (the indexes' sort key) and id (which breaks ties). */
export interface ListPosition {
  readonly createdAt: string;
  readonly taskId: string;
}

export type ListIndex = 'all' | 'byState' | 'byGroup';

export interface ListPlan {
  readonly index: ListIndex;
  /** The index partition to query: a constant, a state, or the group. */
  readonly partition?: string;
  /** Kept when the projected state is (`=`) or is not (`<>`) this one. */
  readonly filter?: { readonly op: '=' | '<>'; readonly state: TaskState };
}

function stateFilter(state: ListState): NonNullable<ListPlan['filter']> {
  if (state === 'running') return { op: '=', state: 'PROGRESS' };
  if (state === 'ended') return { op: '<>', state: 'PROGRESS' };
  return { op: '=', state };
}

/** The index and filter that answer `state` and `group`, newest first. */
export function listPlan(state: ListState | undefined, group: string | undefined): ListPlan {
  if (group !== undefined) {
    return state === undefined
      ? { index: 'byGroup', partition: group }
      : { index: 'byGroup', partition: group, filter: stateFilter(state) };
  }
  if (state === undefined) return { index: 'all' };
  const filter = stateFilter(state);
  // One state is one partition of the state index; "ended" spans three, so it filters the index of all tasks.
  return filter.op === '=' ? { index: 'byState', partition: filter.state } : { index: 'all', filter };
}

/** The task item's attributes a listing row shows: read with a projection, never the whole item. */
export const LIST_ROW_ATTRIBUTES = [
  'task_id',
  'group',
  'task_state',
  'ready',
  'task_output',
  'in_flight',
  'subtasks',
  'cancel_requested',
  'end_reason',
  'created_at',
  'updated_at',
  'ended_at',
] as const satisfies readonly (keyof TaskRecord)[];

export type ListedTask = Pick<TaskRecord, (typeof LIST_ROW_ATTRIBUTES)[number]>;

export interface TaskListPage {
  readonly tasks: readonly ListedTask[];
  /** Where the next page starts, when more may follow. */
  readonly next?: ListPosition;
}

/** One row of `GET /tasks`: what a list shows, so a page of rows is one request. */
export function listRow(task: ListedTask) {
  const { action_name, ...counts } = task.task_output;
  return {
    task_id: task.task_id,
    group: task.group ?? null,
    action_name,
    task_state: task.task_state,
    ready: task.ready,
    task_progress: counts,
    in_flight: task.in_flight,
    subtasks: { ...task.subtasks, remaining: remainingSubtasks(task) },
    cancel_requested: task.cancel_requested === true,
    created_at: task.created_at,
    updated_at: task.updated_at,
    ended_at: task.ended_at ?? null,
    end_reason: task.end_reason ?? null,
  };
}
