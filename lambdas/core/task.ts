import { createHash } from 'node:crypto';
import { InvalidInitializeRequestError } from './errors';
import { isValidId } from './identifiers';
import { createSubtaskStatus, type SubtaskStatus } from './subtask-status';

/** `PROGRESS` while subtasks run; `SUCCESS` or `FAILURE` once every subtask has reached a terminal state. */
export type TaskState = 'PROGRESS' | 'SUCCESS' | 'FAILURE';

/** The reference's `task_output`: item counts summed over terminal subtask statuses. */
export interface TaskOutput {
  readonly action_name: string;
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  /** Items the whole job covers, as the caller said at initialization. */
  readonly total: number;
  readonly duration_ms: number;
  /** Epoch seconds (float), as in the reference. */
  readonly start_time: number;
}

/** How many subtasks there are and how many have ended each way. */
export interface SubtaskCounters {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
}

export interface TaskOptions {
  /** When set, a finished task whose failed items exceed this share of attempted items ends as `FAILURE`. */
  readonly tolerated_failure_percentage?: number;
}

export interface TaskRecord {
  readonly task_id: string;
  /** Bumped by exactly 1 on every write; the optimistic lock. */
  readonly version: number;
  readonly task_state: TaskState;
  readonly task_output: TaskOutput;
  readonly subtasks: SubtaskCounters;
  readonly options: TaskOptions;
  /** Fingerprint of what the task was initialized with, so a re-run can tell "same job" from "another job". */
  readonly init_digest: string;
  readonly created_at: string;
  readonly updated_at: string;
  /** Epoch seconds after which DynamoDB's TTL may delete the task; absent means kept. */
  readonly expires_at?: number;
}

export interface SubtaskRecord {
  readonly task_id: string;
  readonly subtask_id: string;
  readonly status: SubtaskStatus;
  /** The task version this status was committed with (0 before any status); guards the subtask's own write. */
  readonly updated_version: number;
  readonly updated_at: string;
  /** The task's TTL, so that DynamoDB removes a task's subtasks with it. */
  readonly expires_at?: number;
}

export interface InitializeRequest {
  readonly taskId: string;
  readonly actionName: string;
  /** Items the whole job covers (for "… (out of N)"). */
  readonly total: number;
  readonly subtaskIds: readonly string[];
  readonly toleratedFailurePercentage?: number;
  /** Keep the records this long after initialization, then let TTL remove them. */
  readonly ttlSeconds?: number;
}

export interface InitializedTask {
  readonly task: TaskRecord;
  readonly subtasks: readonly SubtaskRecord[];
}

function validate(request: InitializeRequest): void {
  const reject = (message: string) => {
    throw new InvalidInitializeRequestError(message);
  };
  if (!isValidId(request.taskId)) reject(`Bad task id '${request.taskId}'`);
  if (request.actionName.length === 0 || request.actionName.length > 256)
    reject('actionName must be 1-256 characters');
  if (!Number.isSafeInteger(request.total) || request.total < 0)
    reject('total must be a non-negative integer');
  if (request.subtaskIds.length === 0) reject('A task needs at least one subtask');
  const bad = request.subtaskIds.find((id) => !isValidId(id));
  if (bad !== undefined) reject(`Bad subtask id '${bad}'`);
  if (new Set(request.subtaskIds).size !== request.subtaskIds.length) reject('Subtask ids must be unique');
  const tolerated = request.toleratedFailurePercentage;
  if (tolerated !== undefined && !(tolerated >= 0 && tolerated <= 100)) {
    reject('toleratedFailurePercentage must be between 0 and 100');
  }
  if (
    request.ttlSeconds !== undefined &&
    !(Number.isSafeInteger(request.ttlSeconds) && request.ttlSeconds > 0)
  ) {
    reject('ttlSeconds must be a positive integer');
  }
}

/** Same digest = same job: subtask set (order-free), action, item total and options. */
export function initializationDigest(request: InitializeRequest): string {
  const canonical = JSON.stringify([
    [...request.subtaskIds].sort(),
    request.actionName,
    request.total,
    request.toleratedFailurePercentage ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * The records a new task starts with (`initialize_subtask_info`): task `PROGRESS` at version 1 with zero counts,
 * every subtask `QUEUING`. Throws `InvalidInitializeRequestError` for a request that can never succeed.
 */
export function initializeTask(request: InitializeRequest, nowMs: number): InitializedTask {
  validate(request);
  const now = new Date(nowMs).toISOString();
  const tolerated = request.toleratedFailurePercentage;
  const task: TaskRecord = {
    task_id: request.taskId,
    version: 1,
    task_state: 'PROGRESS',
    task_output: {
      action_name: request.actionName,
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      total: request.total,
      duration_ms: 0,
      start_time: nowMs / 1000,
    },
    subtasks: { total: request.subtaskIds.length, succeeded: 0, failed: 0 },
    options: tolerated === undefined ? {} : { tolerated_failure_percentage: tolerated },
    init_digest: initializationDigest(request),
    created_at: now,
    updated_at: now,
    ...(request.ttlSeconds === undefined
      ? {}
      : { expires_at: Math.floor(nowMs / 1000) + request.ttlSeconds }),
  };
  const subtasks = request.subtaskIds.map(
    (subtaskId): SubtaskRecord => ({
      task_id: request.taskId,
      subtask_id: subtaskId,
      status: createSubtaskStatus(subtaskId),
      updated_version: 0,
      updated_at: now,
      ...(task.expires_at === undefined ? {} : { expires_at: task.expires_at }),
    }),
  );
  return { task, subtasks };
}

export function remainingSubtasks(task: TaskRecord): number {
  return task.subtasks.total - task.subtasks.succeeded - task.subtasks.failed;
}

export function isTaskFinished(task: TaskRecord): boolean {
  return task.task_state !== 'PROGRESS';
}
