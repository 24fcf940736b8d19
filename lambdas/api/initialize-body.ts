/**
 * The body of `PUT /tasks/{task_id}`: the job, and its subtasks either listed (`subtask_ids`) or numbered
 * (`subtask_count` + `prefix`, so a fan-out of 100,000 is a few bytes). Every field is checked here; the rules
 * that need the clock (deadline in the future, TTL long enough) are the core's.
 */

import { z } from 'zod';
import { MAX_SUBTASKS } from '../core/contract';
import { groupSchema, idSchema } from '../core/identifiers';
import { numberedSubtaskIds } from '../core/subtask-ids';
import type { InitializeRequest } from '../core/task';

/** Lambda takes at most 6 MB of request; 100,000 ids of 40 characters fit well below this. */
export const MAX_INITIALIZE_BODY_BYTES = 5 * 1024 * 1024;

/** A prefix leaves room for `-` and the number within the 128 characters of an id. */
const prefixSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1-100 characters of A-Z a-z 0-9 . _ : -');

const bodySchema = z
  .strictObject({
    action_name: z.string().min(1).max(256),
    group: groupSchema.optional(),
    total: z.int().nonnegative(),
    subtask_ids: z.array(idSchema).min(1).max(MAX_SUBTASKS).optional(),
    subtask_count: z.int().min(1).max(MAX_SUBTASKS).optional(),
    prefix: prefixSchema.optional(),
    tolerated_failure_percentage: z.number().min(0).max(100).optional(),
    subtask_timeout_seconds: z.int().positive().optional(),
    deadline: z.iso.datetime({ offset: true }).optional(),
    ttl_days: z.int().positive().optional(),
  })
  .refine((body) => (body.subtask_ids === undefined) !== (body.subtask_count === undefined), {
    message: 'give either subtask_ids or subtask_count (with an optional prefix), not both',
    path: ['subtask_ids'],
  })
  .refine((body) => body.prefix === undefined || body.subtask_count !== undefined, {
    message: 'prefix goes with subtask_count',
    path: ['prefix'],
  });

/**
 * The numbered ids a warm function made last. A large fan-out's resumes repeat the same count and prefix, and
 * each made a million fresh strings (~40 MB) while the last request's still waited for a full collection: at
 * 256 MB, that garbage was what pushed the process towards its limit.
 */
let lastNumbered: {
  readonly count: number;
  readonly prefix: string | undefined;
  readonly ids: readonly string[];
} = { count: 0, prefix: undefined, ids: [] };

function numberedIds(count: number, prefix: string | undefined): readonly string[] {
  if (lastNumbered.count !== count || lastNumbered.prefix !== prefix) {
    lastNumbered = { count, prefix, ids: numberedSubtaskIds(count, prefix) };
  }
  return lastNumbered.ids;
}

export class InvalidBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBodyError';
  }
}

/** Turns the raw body into an initialize request, or throws `InvalidBodyError` naming the first problem. */
export function parseInitializeBody(taskId: string, body: string | undefined): InitializeRequest {
  if (body === undefined || body.length === 0) throw new InvalidBodyError('body: a JSON object is required');
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_INITIALIZE_BODY_BYTES) {
    throw new InvalidBodyError(`body is ${bytes} bytes; at most ${MAX_INITIALIZE_BODY_BYTES}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidBodyError('body is not JSON');
  }
  const parsed = bodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `body.${issue.path.join('.')}` : 'body';
    throw new InvalidBodyError(`${where}: ${issue?.message ?? 'invalid'}`);
  }
  const value = parsed.data;
  return {
    taskId,
    ...(value.group === undefined ? {} : { group: value.group }),
    actionName: value.action_name,
    total: value.total,
    subtaskIds: value.subtask_ids ?? numberedIds(value.subtask_count ?? 0, value.prefix),
    ...(value.tolerated_failure_percentage === undefined
      ? {}
      : { toleratedFailurePercentage: value.tolerated_failure_percentage }),
    ...(value.subtask_timeout_seconds === undefined
      ? {}
      : { subtaskTimeoutSeconds: value.subtask_timeout_seconds }),
    ...(value.deadline === undefined ? {} : { deadline: value.deadline }),
    ...(value.ttl_days === undefined ? {} : { ttlDays: value.ttl_days }),
  };
}
