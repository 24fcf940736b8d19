/**
 * The API: task progress and subtask listings (reads), initialize and cancel (writes), from API Gateway HTTP
 * API (v2) events. Every request does bounded work: one listing request reads at most `LISTING_READ_BUDGET`
 * items, and an initialization too large for one request answers 202 and resumes on the next.
 */

import { createHash } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { z } from 'zod';
import { CancelConflictError, InitializeConflictError, InvalidInitializeRequestError } from '../core/errors';
import { groupSchema, idSchema } from '../core/identifiers';
import { progressReport } from '../core/progress-report';
import { ROUTES } from '../core/routes';
import { SUBTASK_STATES } from '../core/subtask-status';
import type { TaskRecord } from '../core/task';
import { LIST_STATES, listRow } from '../core/task-listing';
import { API } from '../service-settings';
import type { ApiStore } from '../store/task-store';
import { decodeCursor, encodeCursor, InvalidCursorError } from './cursor';
import { type HttpResult, httpError, json, notModified } from './http-responses';
import { InvalidBodyError, parseInitializeBody } from './initialize-body';
import { decodeListCursor, encodeListCursor } from './task-list-cursor';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;
/** Items one listing request may read, matching or not. */
export const LISTING_READ_BUDGET = 1_000;
/** An initialization stops writing subtask items with this much of the request's time left, and answers 202. */
const INITIALIZE_RESERVE_MS = 8_000;
/** Without a Lambda context, assume the function's whole timeout (API Gateway gives a request 30 s). */
const REQUEST_TIME_MS = API.timeoutSeconds * 1000;

// Known query parameters are validated; anything else (a cache buster such as `_=1700000000`) is ignored.
const taskQuerySchema = z.object({});

const subtaskQuerySchema = z.object({
  state: z.enum(SUBTASK_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().optional(),
});

const taskListQuerySchema = z.object({
  state: z.enum(LIST_STATES).optional(),
  group: groupSchema.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().optional(),
});

class BadRequestError extends Error {}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${what}.${issue.path.join('.')}` : what;
    throw new BadRequestError(`${where}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

function taskIdOf(event: APIGatewayProxyEventV2): string {
  return parse(idSchema, event.pathParameters?.task_id, 'task_id');
}

/** Generation and version: a re-initialized task never answers 304 to a tag of its predecessor. */
function etagOf(task: TaskRecord): string {
  return `"${task.generation}.${task.version}"`;
}

/** A listing has no version of its own: its tag is its content's, so an unchanged page answers 304. */
function contentTag(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** True when `If-None-Match` names the current ETag (weak or strong, in a list, or `*`). */
function matchesCurrent(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === etag || tag === '*');
}

export interface TaskApiDependencies {
  readonly store: ApiStore;
  readonly logger: Logger;
  readonly now?: () => number;
}

export function createApiHandler({ store, logger, now = Date.now }: TaskApiDependencies) {
  const notFound = (taskId: string) => httpError(404, 'NotFound', `Task '${taskId}' does not exist`);
  const progress = (statusCode: number, task: TaskRecord, headers: Record<string, string> = {}) =>
    json(statusCode, progressReport(task), { etag: etagOf(task), 'cache-control': 'no-cache', ...headers });

  async function getTask(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    parse(taskQuerySchema, event.queryStringParameters ?? {}, 'query');
    const task = await store.getTask(taskId);
    if (task === undefined) return notFound(taskId);
    const etag = etagOf(task);
    if (matchesCurrent(event.headers?.['if-none-match'], etag)) {
      return notModified({ etag, 'cache-control': 'no-cache' });
    }
    return progress(200, task);
  }

  async function listTasks(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const query = parse(taskListQuerySchema, event.queryStringParameters ?? {}, 'query');
    const filter = { state: query.state, group: query.group };
    const after = query.cursor === undefined ? undefined : decodeListCursor(query.cursor, filter);
    const page = await store.listTasks({
      limit: query.limit,
      readBudget: LISTING_READ_BUDGET,
      ...(query.state === undefined ? {} : { state: query.state }),
      ...(query.group === undefined ? {} : { group: query.group }),
      ...(after === undefined ? {} : { after }),
    });
    const result = json(200, {
      tasks: page.tasks.map(listRow),
      next_cursor: page.next === undefined ? null : encodeListCursor(page.next, filter),
    });
    const etag = contentTag(result.body ?? '');
    const headers = { etag, 'cache-control': 'no-cache' };
    if (matchesCurrent(event.headers?.['if-none-match'], etag)) return notModified(headers);
    return { ...result, headers: { ...result.headers, ...headers } };
  }

  async function listSubtasks(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    const query = parse(subtaskQuerySchema, event.queryStringParameters ?? {}, 'query');
    const task = await store.getTask(taskId);
    if (task === undefined) return notFound(taskId);
    const from = query.cursor === undefined ? undefined : decodeCursor(query.cursor, task.write_shards);
    const page = await store.listSubtasks(task, {
      limit: query.limit,
      readBudget: LISTING_READ_BUDGET,
      ...(query.state === undefined ? {} : { state: query.state }),
      ...(from === undefined ? {} : { from }),
    });
    return json(200, {
      task_id: taskId,
      subtasks: page.subtasks.map((subtask) => ({
        subtask_id: subtask.subtask_id,
        ...subtask.status,
        ...(subtask.reason === undefined ? {} : { reason: subtask.reason }),
        updated_at: subtask.updated_at,
      })),
      next_cursor: page.next === undefined ? null : encodeCursor(page.next),
    });
  }

  async function initialize(
    event: APIGatewayProxyEventV2,
    context: Context | undefined,
  ): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    const body =
      event.isBase64Encoded && event.body !== undefined
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
    const request = parseInitializeBody(taskId, body);
    const started = Date.now();
    const remaining = () => context?.getRemainingTimeInMillis() ?? REQUEST_TIME_MS - (Date.now() - started);
    const { task, created } = await store.initialize(request, now(), {
      withinTime: () => remaining() > INITIALIZE_RESERVE_MS,
    });
    // Not ready yet: too many subtasks for one request. The same PUT again carries on where this one stopped.
    if (!task.ready && task.task_state === 'PROGRESS') return progress(202, task, { 'retry-after': '1' });
    return progress(created ? 201 : 200, task);
  }

  async function cancel(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    const task = await store.getTask(taskId);
    if (task === undefined) return notFound(taskId);
    if (task.task_state !== 'PROGRESS') {
      throw new CancelConflictError(`Task '${taskId}' already ended ${task.task_state}`);
    }
    if (!task.ready) throw new CancelConflictError(`Task '${taskId}' is still being initialized`);
    if (!(await store.requestCancel(task, now()))) {
      const again = await store.getTask(taskId);
      if (again === undefined) return notFound(taskId);
      throw new CancelConflictError(`Task '${taskId}' already ended ${again.task_state}`);
    }
    const canceled = await store.getTask(taskId);
    return canceled === undefined ? notFound(taskId) : progress(202, canceled);
  }

  return async (event: APIGatewayProxyEventV2, context?: Context): Promise<HttpResult> => {
    if (context !== undefined) logger.addContext(context);
    // API Gateway's own request id, the one its access log carries, in every line this request logs.
    logger.appendKeys({ apiRequestId: event.requestContext.requestId });
    try {
      switch (event.routeKey) {
        case ROUTES.list:
          return await listTasks(event);
        case ROUTES.task:
          return await getTask(event);
        case ROUTES.subtasks:
          return await listSubtasks(event);
        case ROUTES.initialize:
          return await initialize(event, context);
        case ROUTES.cancel:
          return await cancel(event);
        default:
          return httpError(404, 'NotFound', 'No such route');
      }
    } catch (error) {
      if (
        error instanceof BadRequestError ||
        error instanceof InvalidCursorError ||
        error instanceof InvalidBodyError ||
        error instanceof InvalidInitializeRequestError
      ) {
        return httpError(400, 'BadRequest', error.message);
      }
      if (error instanceof InitializeConflictError) {
        return httpError(409, 'Conflict', error.message, error.fields);
      }
      if (error instanceof CancelConflictError) return httpError(409, 'Conflict', error.message);
      logger.error('Request failed', { error, routeKey: event.routeKey, path: event.rawPath });
      return httpError(500, 'InternalError', 'The request could not be served; try again later');
    }
  };
}
