/**
 * The API's writes, as a job's coordinator makes them: `PUT /tasks/{task_id}` creates a task and its subtasks,
 * `POST /tasks/{task_id}/cancel` cancels it. Producers need no table rights: the deployed API takes a SigV4-signed
 * request from any identity granted `execute-api:Invoke` on these routes.
 */

import { setTimeout as delay } from 'node:timers/promises';
import {
  CancelConflictError,
  InitializeConflictError,
  InvalidInitializeRequestError,
  ProgressApiUnreachableError,
  SubtaskProgressClientError,
} from './errors';
import { type ApiOptions, apiError, errorBody, parseBody, type RawResponse, send, taskPath } from './http';
import { type Progress, progressSchema } from './progress-api';

/** A task and its subtasks: either `subtaskIds`, or `subtaskCount` numbered ids `<prefix>-0…` (a few bytes). */
export interface InitializeTaskRequest {
  readonly taskId: string;
  /** What happens to an item, as the messages say it ("emailed"). */
  readonly actionName: string;
  /** Items the whole job covers. */
  readonly total: number;
  /** What the task belongs to (for Open edX, the course id): listed, and `listTasks` filters on it. */
  readonly group?: string;
  readonly subtaskIds?: readonly string[];
  /** `subtaskCount` ids `<prefix>-<n>`, zero-padded to one width; instead of `subtaskIds`. */
  readonly subtaskCount?: number;
  /** @default 'sub' (only with `subtaskCount`) */
  readonly prefix?: string;
  /** 0–100, at most two decimals: failures tolerated before a finished task ends `FAILURE`. */
  readonly toleratedFailurePercentage?: number;
  /** A subtask not ended and not heard from for this long ends `FAILURE` (`TIMED_OUT`). */
  readonly subtaskTimeoutSeconds?: number;
  /** When every subtask not ended by then ends `FAILURE` (`TIMED_OUT`). */
  readonly deadline?: Date | string;
  /** Keep the task's records this long, then let DynamoDB's TTL remove them. */
  readonly ttlDays?: number;
}

export interface InitializeTaskOptions extends ApiOptions {
  /**
   * Requests to make at most. A large fan-out is written over several requests: each answers 202 until the last
   * one, and the same PUT again carries on. @default 1,000
   */
  readonly maxRequests?: number;
  /** Attempts per request when the API cannot be reached or answers 429/5xx; the PUT is idempotent. @default 4 */
  readonly attempts?: number;
  /** @default waits with node's timers */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface InitializedTask {
  /**
   * True when this call created the task (its first answer was 201, or 202: the task record was new, or an
   * unfinished initialization of the same request was carried on); false when it already existed, the same.
   */
  readonly created: boolean;
  /** PUT requests made, 202s included (retries of a failed request not counted). */
  readonly requests: number;
  /** The task as the last answer showed it: ready and `PROGRESS` (an ended one throws `TaskEndedError`). */
  readonly progress: Progress;
}

/**
 * The PUT found the task already ended (e.g. `FAILURE` with `INITIALIZE_INCOMPLETE`, or `CANCELED`): its subtasks
 * will not be counted, so workers must not be started for it. `progress` is the task as the API showed it.
 */
export class TaskEndedError extends SubtaskProgressClientError {
  readonly state: Progress['task_state'];
  readonly reason: string | undefined;

  constructor(readonly progress: Progress) {
    const reason = progress.end_reason === undefined ? '' : ` (${progress.end_reason})`;
    super(
      `Task '${progress.task_id}' has already ended ${progress.task_state}${reason}: its subtasks will not be ` +
        'counted; initialize the job under a new task id',
    );
    this.state = progress.task_state;
    this.reason = progress.end_reason;
  }
}

const DEFAULT_MAX_REQUESTS = 1_000;
const DEFAULT_ATTEMPTS = 4;
const RETRY_BASE_MS = 250;
/** `Retry-After` past this is not worth waiting out inside one call: the caller can run it again. */
const MAX_RETRY_AFTER_MS = 30_000;

/** The PUT body, in the API's names (DESIGN §4). */
export function initializeBody(request: InitializeTaskRequest): Record<string, unknown> {
  const deadline = request.deadline instanceof Date ? request.deadline.toISOString() : request.deadline;
  return {
    action_name: request.actionName,
    ...(request.group === undefined ? {} : { group: request.group }),
    total: request.total,
    ...(request.subtaskIds === undefined ? {} : { subtask_ids: request.subtaskIds }),
    ...(request.subtaskCount === undefined ? {} : { subtask_count: request.subtaskCount }),
    ...(request.prefix === undefined ? {} : { prefix: request.prefix }),
    ...(request.toleratedFailurePercentage === undefined
      ? {}
      : { tolerated_failure_percentage: request.toleratedFailurePercentage }),
    ...(request.subtaskTimeoutSeconds === undefined
      ? {}
      : { subtask_timeout_seconds: request.subtaskTimeoutSeconds }),
    ...(deadline === undefined ? {} : { deadline }),
    ...(request.ttlDays === undefined ? {} : { ttl_days: request.ttlDays }),
  };
}

function retryAfterMs(response: RawResponse, fallback: number): number {
  const seconds = Number(response.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : fallback;
}

/**
 * Sends one request, again (with backoff) while the API is unreachable or answers 429 or 5xx: for an idempotent
 * request only. Any other answer is returned.
 */
async function sendIdempotent(
  request: Parameters<typeof send>[0],
  options: InitializeTaskOptions,
): Promise<RawResponse> {
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  for (let attempt = 1; ; attempt++) {
    const backoff = RETRY_BASE_MS * 2 ** (attempt - 1);
    let response: RawResponse;
    try {
      response = await send(request, options);
    } catch (error) {
      if (!(error instanceof ProgressApiUnreachableError) || attempt >= attempts) throw error;
      await sleep(backoff);
      continue;
    }
    const retryable = response.status === 429 || response.status >= 500;
    if (!retryable || attempt >= attempts) return response;
    await sleep(retryAfterMs(response, backoff));
  }
}

/**
 * Creates task `request.taskId` with every subtask `QUEUING` (DESIGN §2) through `PUT /tasks/{task_id}`, repeating
 * the PUT while the API answers 202 (a fan-out too large for one request) until the task is ready. Running it
 * again with the same request changes nothing; another request under the same id throws `InitializeConflictError`
 * naming the fields that differ, a malformed one `InvalidInitializeRequestError` (both with the API's message);
 * a task that has already ended (say, given up before its initialization finished) `TaskEndedError`; any other
 * error answer `ProgressApiError`.
 */
export async function initializeTask(
  request: InitializeTaskRequest,
  options: InitializeTaskOptions = {},
): Promise<InitializedTask> {
  const body = initializeBody(request);
  const maxRequests = options.maxRequests ?? DEFAULT_MAX_REQUESTS;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  let created: boolean | undefined;
  for (let requests = 1; requests <= maxRequests; requests++) {
    const response = await sendIdempotent({ method: 'PUT', path: taskPath(request.taskId), body }, options);
    switch (response.status) {
      case 200:
      case 201: {
        const progress = parseBody(progressSchema, response, 'a task progress');
        // A repeat of an old request answers 200 with the task as it is: an ended one is no initialization.
        if (progress.task_state !== 'PROGRESS') throw new TaskEndedError(progress);
        return { created: created ?? response.status === 201, requests, progress };
      }
      case 202:
        created ??= true;
        // The API asks for a pause between pages; it also lets a concurrent resumer finish its page.
        if (requests < maxRequests) await sleep(retryAfterMs(response, 0));
        continue;
      case 400: {
        const { error, message } = errorBody(response);
        throw new InvalidInitializeRequestError(400, error, message);
      }
      case 409: {
        const { error, message, fields = [] } = errorBody(response);
        throw new InitializeConflictError(request.taskId, fields, error, message);
      }
      default:
        throw apiError(response);
    }
  }
  throw new SubtaskProgressClientError(
    `Task '${request.taskId}' is still being initialized after ${maxRequests} requests; ` +
      'run the same initialization again to carry on',
  );
}

/**
 * Cancels task `taskId` through `POST /tasks/{task_id}/cancel`: the answer (202) already shows
 * `cancel_requested`, so workers polling the task may stop early; the sweeper then revokes every subtask not yet
 * ended (`REVOKED`, reason `CANCELED`) and the task ends `CANCELED`. Throws `CancelConflictError` with the API's
 * message when the task has already ended or is still being initialized, `ProgressApiError` (404) when it does
 * not exist.
 */
export async function cancelTask(taskId: string, options: ApiOptions = {}): Promise<Progress> {
  const response = await send({ method: 'POST', path: taskPath(taskId, '/cancel') }, options);
  if (response.status === 202) return parseBody(progressSchema, response, 'a task progress');
  if (response.status === 409) {
    const { error, message } = errorBody(response);
    throw new CancelConflictError(409, error, message);
  }
  throw apiError(response);
}
