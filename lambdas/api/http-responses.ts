import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** Response shapes of the progress API: JSON always, errors as `{error, message}` with no internals. */

export type HttpResult = APIGatewayProxyStructuredResultV2;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export function notModified(headers: Record<string, string>): HttpResult {
  return { statusCode: 304, headers };
}

export type ErrorName = 'BadRequest' | 'NotFound' | 'InternalError';

export function httpError(statusCode: 400 | 404 | 500, error: ErrorName, message: string): HttpResult {
  return json(statusCode, { error, message });
}
