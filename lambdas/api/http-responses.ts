/** Response shapes of the API: JSON always, errors as the contract's `{error, message}` (and a 409's `fields`) with no internals. */

import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ErrorBody, ErrorCode } from '../core/contract';

export type HttpResult = APIGatewayProxyStructuredResultV2;

// Every response: never sniffed as anything but JSON, and never cached unless it says otherwise.
const BASE_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
} as const;

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { ...BASE_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export function notModified(headers: Record<string, string>): HttpResult {
  const { 'content-type': _none, ...rest } = BASE_HEADERS;
  return { statusCode: 304, headers: { ...rest, ...headers } };
}

export function httpError(
  statusCode: 400 | 404 | 409 | 500,
  error: ErrorCode,
  message: string,
  fields?: readonly string[],
): HttpResult {
  const body: ErrorBody = fields === undefined ? { error, message } : { error, message, fields };
  return json(statusCode, body);
}
