import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { z } from 'zod';
import { idSchema } from '../core/identifiers';
import { progressReport } from '../core/progress-report';
import { SUBTASK_STATES } from '../core/subtask-status';
import type { TaskStore } from '../store/task-store';
import { type CursorCodec, InvalidCursorError } from './cursor';
import { type HttpResult, httpError, json, notModified } from './http-responses';
import { ROUTES } from './routes';

/** The read side: task progress and subtask listings, from API Gateway HTTP API (v2) events. */

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

const taskQuerySchema = z.strictObject({});

const subtaskQuerySchema = z.strictObject({
  state: z.enum(SUBTASK_STATES).optional(),
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

function etagOf(version: number): string {
  return `"v${version}"`;
}

/** True when `If-None-Match` names the current ETag (weak or strong, in a list, or `*`). */
function matchesCurrent(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === etag || tag === '*');
}

export interface ProgressApiDependencies {
  readonly store: TaskStore;
  readonly cursors: CursorCodec;
  readonly logger: Logger;
}

export function createProgressApi({ store, cursors, logger }: ProgressApiDependencies) {
  const notFound = (taskId: string) => httpError(404, 'NotFound', `Task '${taskId}' does not exist`);

  async function getTask(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    parse(taskQuerySchema, event.queryStringParameters ?? {}, 'query');
    const task = await store.getTask(taskId);
    if (task === undefined) return notFound(taskId);
    const headers = { etag: etagOf(task.version), 'cache-control': 'no-cache' };
    if (matchesCurrent(event.headers?.['if-none-match'], headers.etag)) return notModified(headers);
    return json(200, progressReport(task), headers);
  }

  async function listSubtasks(event: APIGatewayProxyEventV2): Promise<HttpResult> {
    const taskId = taskIdOf(event);
    const query = parse(subtaskQuerySchema, event.queryStringParameters ?? {}, 'query');
    const after = query.cursor === undefined ? undefined : cursors.decode(query.cursor, taskId, query.state);
    if ((await store.getTask(taskId)) === undefined) return notFound(taskId);
    const page = await store.listSubtasks(taskId, {
      limit: query.limit,
      ...(query.state === undefined ? {} : { state: query.state }),
      ...(after === undefined ? {} : { after }),
    });
    return json(200, {
      task_id: taskId,
      subtasks: page.subtasks.map((subtask) => ({
        subtask_id: subtask.subtask_id,
        ...subtask.status,
        updated_at: subtask.updated_at,
      })),
      next_cursor:
        page.lastSubtaskId === undefined ? null : cursors.encode(taskId, query.state, page.lastSubtaskId),
    });
  }

  return async (event: APIGatewayProxyEventV2): Promise<HttpResult> => {
    try {
      switch (event.routeKey) {
        case ROUTES.task:
          return await getTask(event);
        case ROUTES.subtasks:
          return await listSubtasks(event);
        default:
          return httpError(404, 'NotFound', 'No such route');
      }
    } catch (error) {
      if (error instanceof BadRequestError || error instanceof InvalidCursorError) {
        return httpError(400, 'BadRequest', error.message);
      }
      logger.error('Progress request failed', { error, routeKey: event.routeKey, path: event.rawPath });
      return httpError(500, 'InternalError', 'The request could not be served; try again later');
    }
  };
}
