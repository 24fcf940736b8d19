import { z } from 'zod';
import { subtaskStatusSchema } from '../lambdas/core/status-message';
import type { SubtaskState } from '../lambdas/core/subtask-status';
import { ProgressApiError, ProgressApiUnreachableError, UnexpectedResponseError } from './errors';
import { type Credentials, isLoopback, signatureHeaders } from './request-signing';
import { setting } from './settings';

/**
 * Reads of the progress API (`GET /tasks/{task_id}` and its subtask listing). Every answer is checked against
 * the shape the API promises before anyone relies on it; requests to anything but loopback are SigV4-signed.
 */

const count = z.int().nonnegative();

/** Loose objects: a field the API adds later passes through instead of failing old clients. */
const taskProgressSchema = z.looseObject({
  action_name: z.string(),
  attempted: count,
  succeeded: count,
  failed: count,
  skipped: count,
  total: count,
  duration_ms: z.number().nonnegative(),
  start_time: z.number(),
});

const progressSchema = z.looseObject({
  task_id: z.string(),
  task_state: z.enum(['PROGRESS', 'SUCCESS', 'FAILURE']),
  in_progress: z.boolean(),
  task_progress: taskProgressSchema,
  message: z.string(),
  succeeded: z.boolean(),
  subtasks: z.looseObject({ total: count, succeeded: count, failed: count, remaining: count }),
  version: z.int().positive(),
  updated_at: z.string().optional(),
});

const subtaskSchema = z.looseObject({
  ...subtaskStatusSchema.shape,
  subtask_id: z.string(),
  updated_at: z.string().optional(),
});

const subtaskPageSchema = z.looseObject({
  task_id: z.string(),
  subtasks: z.array(subtaskSchema),
  next_cursor: z.string().nullable(),
});

/** Our API always says `{error, message}`; API Gateway's own refusals (403 from IAM, 429) only `{message}`. */
const errorBodySchema = z.object({ error: z.string().optional(), message: z.string() });

export type Progress = z.infer<typeof progressSchema>;
export type SubtaskListing = z.infer<typeof subtaskSchema>;
export type SubtaskPage = z.infer<typeof subtaskPageSchema>;

export interface ProgressApiOptions {
  /** Base URL of the API. @default the SUBTASK_PROGRESS_API_URL environment variable */
  readonly apiUrl?: string;
  /** Region to sign for. @default the AWS_REGION environment variable (read only when signing) */
  readonly region?: string;
  /** @default the AWS SDK's credential chain (read only when signing) */
  readonly credentials?: Credentials;
  readonly signal?: AbortSignal;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export type ProgressResult =
  | { readonly status: 200; readonly progress: Progress; readonly etag: string | undefined }
  | { readonly status: 304 };

interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly body: string;
}

function urlFor(apiUrl: string, path: string, query: Record<string, string | undefined>): URL {
  const url = new URL(apiUrl);
  // A stage or base path in the API URL (`…/prod`) stays in front of the route.
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  // Percent-encoded by hand (RFC 3986), so the signed query and the sent query are the same bytes.
  url.search = Object.entries(query)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join('&');
  return url;
}

async function send(
  url: URL,
  headers: Record<string, string>,
  options: ProgressApiOptions,
): Promise<RawResponse> {
  const signed = isLoopback(url)
    ? {}
    : await signatureHeaders('GET', url, setting('region', options.region), options.credentials);
  const fetchImpl = options.fetch ?? fetch;
  try {
    const response = await fetchImpl(url, {
      method: 'GET',
      headers: { accept: 'application/json', ...headers, ...signed },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body: await response.text(),
    };
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') throw error;
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const reason =
      cause instanceof Error ? ('code' in cause ? String(cause.code) : cause.message) : String(cause);
    throw new ProgressApiUnreachableError(`Cannot reach the progress API at ${url.origin}: ${reason}`, {
      cause: error,
    });
  }
}

function parseJson(response: RawResponse): unknown {
  try {
    return JSON.parse(response.body);
  } catch {
    return undefined;
  }
}

function apiError(response: RawResponse): ProgressApiError {
  const parsed = errorBodySchema.safeParse(parseJson(response));
  const error = parsed.success ? (parsed.data.error ?? response.statusText) : response.statusText;
  const message = parsed.success ? parsed.data.message : `HTTP ${response.status} ${response.statusText}`;
  return new ProgressApiError(response.status, error || `HTTP${response.status}`, message);
}

function parseBody<T extends z.ZodType>(schema: T, response: RawResponse, what: string): z.output<T> {
  const parsed = schema.safeParse(parseJson(response));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined ? '' : ` (${issue.path.join('.') || 'body'}: ${issue.message})`;
  throw new UnexpectedResponseError(`The progress API's answer is not ${what}${where}`);
}

/**
 * The progress of task `taskId`. With `etag` (from an earlier answer) an unchanged task costs a `304` and no
 * body: the cheap way to poll. Throws `ProgressApiError` for a 4xx/5xx answer (404: no such task).
 */
export async function getProgress(
  taskId: string,
  options: ProgressApiOptions & { readonly etag?: string } = {},
): Promise<ProgressResult> {
  const url = urlFor(setting('apiUrl', options.apiUrl), `/tasks/${encodeURIComponent(taskId)}`, {});
  const response = await send(
    url,
    options.etag === undefined ? {} : { 'if-none-match': options.etag },
    options,
  );
  if (response.status === 304) return { status: 304 };
  if (response.status !== 200) throw apiError(response);
  return {
    status: 200,
    progress: parseBody(progressSchema, response, 'a task progress'),
    etag: response.headers.get('etag') ?? undefined,
  };
}

export interface SubtaskQuery {
  /** Only subtasks in this state. */
  readonly state?: SubtaskState;
  /** Page size, 1–100. @default the API's (50) */
  readonly limit?: number;
  /** `next_cursor` of the previous page. */
  readonly cursor?: string;
}

/** One page of the subtasks of `taskId`, in id order; `next_cursor` is null on the last page. */
export async function listSubtasks(
  taskId: string,
  options: ProgressApiOptions & SubtaskQuery = {},
): Promise<SubtaskPage> {
  const url = urlFor(setting('apiUrl', options.apiUrl), `/tasks/${encodeURIComponent(taskId)}/subtasks`, {
    state: options.state,
    limit: options.limit === undefined ? undefined : String(options.limit),
    cursor: options.cursor,
  });
  const response = await send(url, {}, options);
  if (response.status !== 200) throw apiError(response);
  return parseBody(subtaskPageSchema, response, 'a subtask page');
}
