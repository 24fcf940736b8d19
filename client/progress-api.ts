/**
 * Reads of the API (`GET /tasks/{task_id}` and its subtask listing). Every answer is checked against the shape
 * the API promises before anyone relies on it; requests to anything but loopback are SigV4-signed.
 */

import { z } from 'zod';
import { subtaskStatusSchema } from '../lambdas/core/status-message';
import type { SubtaskState } from '../lambdas/core/subtask-status';
import { type ApiOptions, apiError, conditionalGet, parseBody, send, taskPath } from './http';

const count = z.int().nonnegative();

const itemCountsSchema = z.looseObject({ attempted: count, succeeded: count, failed: count, skipped: count });

/** Loose objects: a field the API adds later passes through instead of failing old clients. */
const taskProgressSchema = z.looseObject({
  ...itemCountsSchema.shape,
  action_name: z.string(),
  total: count,
  duration_ms: z.number().nonnegative(),
  start_time: z.number(),
});

export const TASK_STATES = ['PROGRESS', 'SUCCESS', 'FAILURE', 'CANCELED'] as const;

export const progressSchema = z.looseObject({
  task_id: z.string(),
  task_state: z.enum(TASK_STATES),
  in_progress: z.boolean(),
  task_progress: taskProgressSchema,
  /** Latest counts of the subtasks still running, not yet in `task_progress`. */
  in_flight: itemCountsSchema,
  message: z.string(),
  succeeded: z.boolean(),
  subtasks: z.looseObject({ total: count, succeeded: count, failed: count, remaining: count }),
  /** Set at once by a cancel: workers may stop early. */
  cancel_requested: z.boolean(),
  generation: z.string(),
  version: z.int().positive(),
  updated_at: z.string(),
  ended_at: z.string().optional(),
  /** Why the task ended when its subtasks alone did not end it (e.g. `INITIALIZE_INCOMPLETE`). */
  end_reason: z.string().optional(),
});

const subtaskSchema = z.looseObject({
  ...subtaskStatusSchema.shape,
  subtask_id: z.string(),
  /** Why the service ended the subtask itself: `TIMED_OUT` (a deadline or timeout) or `CANCELED`. */
  reason: z.string().optional(),
  updated_at: z.string().optional(),
});

const subtaskPageSchema = z.looseObject({
  task_id: z.string(),
  subtasks: z.array(subtaskSchema),
  next_cursor: z.string().nullable(),
});

export type Progress = z.infer<typeof progressSchema>;
export type SubtaskListing = z.infer<typeof subtaskSchema>;
export type SubtaskPage = z.infer<typeof subtaskPageSchema>;
export type ProgressApiOptions = ApiOptions;

export type ProgressResult =
  | { readonly status: 200; readonly progress: Progress; readonly etag: string | undefined }
  | { readonly status: 304 };

/**
 * The progress of task `taskId`. With `etag` (from an earlier answer) an unchanged task costs a `304` and no
 * body: the cheap way to poll. Throws `ProgressApiError` for a 4xx/5xx answer (404: no such task).
 */
export async function getProgress(
  taskId: string,
  options: ProgressApiOptions & { readonly etag?: string } = {},
): Promise<ProgressResult> {
  const result = await conditionalGet({ path: taskPath(taskId) }, options, progressSchema, 'a task progress');
  return result.status === 304 ? result : { status: 200, progress: result.body, etag: result.etag };
}

export interface SubtaskQuery {
  /** Only subtasks in this state. */
  readonly state?: SubtaskState;
  /** Page size, 1–100. @default the API's (50) */
  readonly limit?: number;
  /** `next_cursor` of the previous page. */
  readonly cursor?: string;
}

/**
 * One page of the subtasks of `taskId`, write shard by write shard, in id order within each; `next_cursor` is
 * null on the last page. One request reads a bounded number of items, so a page filtered by `state` may come back
 * short, even empty, with a cursor: follow it.
 */
export async function listSubtasks(
  taskId: string,
  options: ProgressApiOptions & SubtaskQuery = {},
): Promise<SubtaskPage> {
  const response = await send(
    {
      method: 'GET',
      path: taskPath(taskId, '/subtasks'),
      query: {
        state: options.state,
        limit: options.limit === undefined ? undefined : String(options.limit),
        cursor: options.cursor,
      },
    },
    options,
  );
  if (response.status !== 200) throw apiError(response);
  return parseBody(subtaskPageSchema, response, 'a subtask page');
}
