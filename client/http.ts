/**
 * One request to the service's HTTP API, as every client call makes it: JSON in and out, signed with SigV4
 * unless the API is the local stack on loopback (a signature never travels over plain http), and every answer
 * read whole before anyone looks at it.
 */

import type { z } from 'zod';
import { errorBodySchema } from '../lambdas/core/contract';
import { ProgressApiError, ProgressApiUnreachableError, UnexpectedResponseError } from './errors';
import { type Credentials, isLoopback, signatureHeaders } from './request-signing';
import { setting } from './settings';

export interface ApiOptions {
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

export interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly body: string;
}

export interface ApiRequest {
  readonly method: 'GET' | 'PUT' | 'POST';
  /** The route's path, its parameters already percent-encoded. */
  readonly path: string;
  readonly query?: Record<string, string | undefined>;
  readonly headers?: Record<string, string>;
  /** Sent as JSON. */
  readonly body?: unknown;
}

export function urlFor(apiUrl: string, path: string, query: Record<string, string | undefined> = {}): URL {
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

/** `/tasks/<id>` with the id percent-encoded, and `suffix` after it. */
export function taskPath(taskId: string, suffix = ''): string {
  return `/tasks/${encodeURIComponent(taskId)}${suffix}`;
}

/** Sends `request` and reads the answer; throws `ProgressApiUnreachableError` when no answer came at all. */
export async function send(request: ApiRequest, options: ApiOptions): Promise<RawResponse> {
  const url = urlFor(setting('apiUrl', options.apiUrl), request.path, request.query);
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...request.headers,
  };
  const signed = isLoopback(url)
    ? {}
    : await signatureHeaders(
        request.method,
        url,
        setting('region', options.region),
        options.credentials,
        body,
        // The content type is signed too, so that nobody on the way can change how the body is read.
        body === undefined ? {} : { 'content-type': 'application/json' },
      );
  const fetchImpl = options.fetch ?? fetch;
  try {
    const response = await fetchImpl(url, {
      method: request.method,
      headers: { ...headers, ...signed },
      ...(body === undefined ? {} : { body }),
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

export function parseJson(response: RawResponse): unknown {
  try {
    return JSON.parse(response.body);
  } catch {
    return undefined;
  }
}

/** The `{error, message, fields}` of an error answer, or what the status line says when the body has none. */
export function errorBody(response: RawResponse): { error: string; message: string; fields?: string[] } {
  const parsed = errorBodySchema.safeParse(parseJson(response));
  const error = parsed.success ? (parsed.data.error ?? response.statusText) : response.statusText;
  const message = parsed.success ? parsed.data.message : `HTTP ${response.status} ${response.statusText}`;
  const fields = parsed.success ? parsed.data.fields : undefined;
  return { error: error || `HTTP${response.status}`, message, ...(fields === undefined ? {} : { fields }) };
}

export function apiError(response: RawResponse): ProgressApiError {
  const { error, message } = errorBody(response);
  return new ProgressApiError(response.status, error, message);
}

export function parseBody<T extends z.ZodType>(schema: T, response: RawResponse, what: string): z.output<T> {
  const parsed = schema.safeParse(parseJson(response));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined ? '' : ` (${issue.path.join('.') || 'body'}: ${issue.message})`;
  throw new UnexpectedResponseError(`The progress API's answer is not ${what}${where}`);
}

/** A conditional GET's answer: the body read by its schema with the new ETag, or a bodiless 304. */
export type ConditionalResult<T> =
  | { readonly status: 200; readonly body: T; readonly etag: string | undefined }
  | { readonly status: 304 };

/** `GET` with `If-None-Match: etag` when one is given; anything but 200 or 304 throws the API's error. */
export async function conditionalGet<T extends z.ZodType>(
  request: Omit<ApiRequest, 'method'>,
  options: ApiOptions & { readonly etag?: string | undefined },
  schema: T,
  what: string,
): Promise<ConditionalResult<z.output<T>>> {
  const headers: Record<string, string> = options.etag === undefined ? {} : { 'if-none-match': options.etag };
  const response = await send(
    { ...request, method: 'GET', headers: { ...request.headers, ...headers } },
    options,
  );
  if (response.status === 304) return { status: 304 };
  if (response.status !== 200) throw apiError(response);
  return {
    status: 200,
    body: parseBody(schema, response, what),
    etag: response.headers.get('etag') ?? undefined,
  };
}
