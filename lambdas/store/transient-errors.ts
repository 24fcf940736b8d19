/**
 * Which failures are worth retrying: throttling, service-side faults, the network and time. Everything else
 * (a bug, a malformed item) fails the same way however often it is retried.
 */

import { ProgressError } from '../core/errors';

const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TransactionConflictException',
]);

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

function field(error: object, name: string): unknown {
  return (error as Record<string, unknown>)[name];
}

export function isTransient(error: unknown): boolean {
  if (error instanceof ProgressError) return !error.permanent;
  if (typeof error !== 'object' || error === null) return false;
  const name = field(error, 'name');
  if (typeof name === 'string' && TRANSIENT_NAMES.has(name)) return true;
  const code = field(error, 'code');
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const metadata = field(error, '$metadata');
  const status =
    typeof metadata === 'object' && metadata !== null ? field(metadata, 'httpStatusCode') : undefined;
  if (typeof status === 'number' && status >= 500) return true;
  return field(error, '$retryable') !== undefined;
}

/** A name for the failure that says what it is: our code, the SDK's error name, or the network error code. */
export function errorName(error: unknown): string {
  if (error instanceof ProgressError) return error.code;
  if (typeof error === 'object' && error !== null) {
    const code = field(error, 'code');
    if (typeof code === 'string' && code.length > 0) return code;
    const name = field(error, 'name');
    if (typeof name === 'string' && name.length > 0) return name;
  }
  return 'INTERNAL_ERROR';
}
