/**
 * `GET /tasks`: the task listing, newest first, one row per task with what a list shows. Answers are checked
 * against the shape the API promises; an `etag` from an earlier page makes an unchanged one a bodiless 304.
 */
import { z } from 'zod';
import { LIST_STATES, type ListState } from '../lambdas/core/task-listing';
import { type ApiOptions, conditionalGet } from './http';
import { TASK_STATES } from './progress-api';

const count = z.int().nonnegative();

const taskRowSchema = z.looseObject({
  task_id: z.string(),
  group: z.string().nullable(),
  action_name: z.string(),
  task_state: z.enum(TASK_STATES),
  ready: z.boolean(),
  task_progress: z.looseObject({
    attempted: count,
    succeeded: count,
    failed: count,
    skipped: count,
    total: count,
    duration_ms: z.number().nonnegative(),
    start_time: z.number(),
  }),
  in_flight: z.looseObject({ attempted: count, succeeded: count, failed: count, skipped: count }),
  subtasks: z.looseObject({ total: count, succeeded: count, failed: count, remaining: count }),
  cancel_requested: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
});

const taskListPageSchema = z.looseObject({
  tasks: z.array(taskRowSchema),
  next_cursor: z.string().nullable(),
});

export type TaskRow = z.infer<typeof taskRowSchema>;
export type TaskListPage = z.infer<typeof taskListPageSchema>;
export { LIST_STATES, type ListState };

export interface TaskListQuery {
  /** A state, `running` or `ended`. */
  readonly state?: ListState;
  readonly group?: string;
  /** Page size, 1–100. @default the API's (50) */
  readonly limit?: number;
  /** `next_cursor` of the previous page, issued for the same state and group. */
  readonly cursor?: string;
}

export type TaskListResult =
  | { readonly status: 200; readonly page: TaskListPage; readonly etag: string | undefined }
  | { readonly status: 304 };

/**
 * One page of tasks. A request reads a bounded number of index entries, so a page filtered by a state that
 * few tasks are in may come back short, even empty, with a cursor: follow it.
 */
export async function listTasks(
  options: ApiOptions & TaskListQuery & { readonly etag?: string } = {},
): Promise<TaskListResult> {
  const query = {
    state: options.state,
    group: options.group,
    limit: options.limit === undefined ? undefined : String(options.limit),
    cursor: options.cursor,
  };
  const result = await conditionalGet(
    { path: '/tasks', query },
    options,
    taskListPageSchema,
    'a task list page',
  );
  return result.status === 304 ? result : { status: 200, page: result.body, etag: result.etag };
}
