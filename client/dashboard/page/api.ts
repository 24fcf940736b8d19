/// <reference lib="dom" />
/**
 * The page's calls to the API, on the page's own origin: the local gateway, or `subtask-progress dashboard`,
 * which wants the run's token (from the page's URL) on every call and signs them on to the deployed API.
 */

const token = new URLSearchParams(location.search).get('token');

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Answer<T> =
  | { readonly status: 304 }
  | { readonly status: 200; readonly body: T; readonly etag?: string };

function url(path: string, query: Record<string, string | undefined>): string {
  const search = new URLSearchParams(
    Object.entries(query).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '',
    ),
  ).toString();
  return search === '' ? path : `${path}?${search}`;
}

async function call(
  method: 'GET' | 'POST',
  target: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
) {
  const response = await fetch(target, {
    method,
    // Conditional requests are ours to make: the browser's cache would answer a 304 with a stale 200.
    cache: 'no-store',
    headers: {
      accept: 'application/json',
      ...(token === null ? {} : { 'x-dashboard-token': token }),
      ...headers,
    },
    ...(signal === undefined ? {} : { signal }),
  });
  if (response.status === 304 || response.ok) return response;
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // Not JSON (a proxy's plain refusal): the status says enough.
  }
  throw new ApiError(response.status, message);
}

/** A GET; with `etag`, an unchanged answer is a bodiless 304. */
export async function getJson<T>(
  path: string,
  query: Record<string, string | undefined> = {},
  etag?: string,
  signal?: AbortSignal,
): Promise<Answer<T>> {
  const response = await call(
    'GET',
    url(path, query),
    etag === undefined ? {} : { 'if-none-match': etag },
    signal,
  );
  if (response.status === 304) return { status: 304 };
  const tag = response.headers.get('etag');
  return { status: 200, body: (await response.json()) as T, ...(tag === null ? {} : { etag: tag }) };
}

export async function post(path: string): Promise<void> {
  await call('POST', path, {});
}

export function taskPath(taskId: string, suffix = ''): string {
  return `/tasks/${encodeURIComponent(taskId)}${suffix}`;
}
