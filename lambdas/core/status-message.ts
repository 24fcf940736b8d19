/**
 * Rule 1 of the design: what a valid status message is. The wire format is the reference's
 * `update_subtask_status(entry_id, current_task_id, new_subtask_status)` arguments, so a Python worker can send
 * them as they are.
 */

import { type core, z } from 'zod';
import { InvalidMessageError } from './errors';
import { idSchema } from './identifiers';
import { SUBTASK_STATES, type SubtaskStatus } from './subtask-status';

/** A status message is a few hundred bytes; anything near SQS's limit is not one of ours. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * Per-status counts stay below 2^31, so that sums over any realistic fan-out (up to 2^22 subtasks) remain exact
 * integers; one absurd status must not push a task's totals past what a number can hold and stall the task.
 */
export const MAX_COUNT = 2 ** 31 - 1;
const count = z.int().nonnegative().max(MAX_COUNT);

/**
 * A subtask status as the wire and the API carry it; other schemas build on its shape. Unknown fields are
 * ignored and stripped (rule 1): a worker that adds one (the reference foresees error details) must not have
 * every status dead-lettered and its task hang, and the parsed value, which is stored, holds only these fields.
 */
export const subtaskStatusSchema = z.object({
  task_id: idSchema,
  attempted: count,
  succeeded: count,
  failed: count,
  skipped: count,
  retried_nomax: count,
  retried_withmax: count,
  state: z.enum(SUBTASK_STATES),
});

const entryIdSchema = z.union([idSchema, z.int().nonnegative().transform(String)]);

/** Unknown top-level fields are ignored and stripped too, for the same reason. */
const statusMessageSchema = z.object({
  entry_id: entryIdSchema,
  current_task_id: idSchema,
  new_subtask_status: subtaskStatusSchema,
  // Optional: a sender that knows which initialization it works for says so, and a status for a replaced
  // generation is then refused instead of applied to the new one.
  generation: z.string().min(1).max(64).optional(),
});

export interface StatusMessage {
  /** The parent task (`entry_id`, as a string). */
  readonly taskId: string;
  /** The subtask the status belongs to (`current_task_id`). */
  readonly subtaskId: string;
  readonly status: SubtaskStatus;
  /** The task generation the sender meant, when it said. */
  readonly generation?: string;
}

/** The wire form of a status message, as a producer builds it. */
export interface StatusMessageBody {
  readonly entry_id: string | number;
  readonly current_task_id: string;
  readonly new_subtask_status: SubtaskStatus;
}

const COUNT_FIELDS = new Set([
  'attempted',
  'succeeded',
  'failed',
  'skipped',
  'retried_nomax',
  'retried_withmax',
]);
const ID_FIELDS = new Set(['entry_id', 'current_task_id', 'task_id']);

function errorCodeOf(issue: core.$ZodIssue): string {
  const field = issue.path.at(-1);
  // With `reportInput`, only an absent key has no input, whichever check (type, union, enum) reported it.
  if (issue.input === undefined) return 'MISSING_FIELD';
  if (typeof field === 'string' && COUNT_FIELDS.has(field)) return 'INVALID_COUNT';
  if (field === 'state') return 'UNKNOWN_STATE';
  if (typeof field === 'string' && ID_FIELDS.has(field)) return 'INVALID_ID';
  return 'INVALID_TYPE';
}

function describe(issue: core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
  return `${where}: ${issue.message}`;
}

/** Turns a raw SQS body into a typed status message, or throws an `InvalidMessageError` naming the reason. */
export function parseStatusMessage(body: string): StatusMessage {
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_BODY_BYTES) {
    throw new InvalidMessageError(
      'BODY_TOO_LARGE',
      `Body is ${bytes} bytes; a status message is at most ${MAX_BODY_BYTES}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new InvalidMessageError('INVALID_JSON', 'Body is not JSON', { cause });
  }
  const parsed = statusMessageSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue === undefined) throw new InvalidMessageError('INVALID_TYPE', 'Body is not a status message');
    throw new InvalidMessageError(errorCodeOf(issue), describe(issue));
  }
  const { entry_id, current_task_id, new_subtask_status: status, generation } = parsed.data;
  if (status.task_id !== current_task_id) {
    throw new InvalidMessageError(
      'SUBTASK_ID_MISMATCH',
      `new_subtask_status.task_id '${status.task_id}' is not current_task_id '${current_task_id}'`,
    );
  }
  if (status.attempted !== status.succeeded + status.failed) {
    throw new InvalidMessageError(
      'COUNTS_MISMATCH',
      `attempted (${status.attempted}) must equal succeeded (${status.succeeded}) + failed (${status.failed})`,
    );
  }
  return {
    taskId: entry_id,
    subtaskId: current_task_id,
    status,
    ...(generation === undefined ? {} : { generation }),
  };
}

/** The message a worker sends for `status` of `subtaskId` in task `taskId`. */
export function statusMessageBody(taskId: string, status: SubtaskStatus): StatusMessageBody {
  return { entry_id: taskId, current_task_id: status.task_id, new_subtask_status: status };
}
