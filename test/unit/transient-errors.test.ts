import { describe, expect, it } from 'vitest';
import {
  InvalidMessageError,
  RetriesExhaustedError,
  StoreUnavailableError,
  TaskNotReadyError,
  UnknownSubtaskError,
} from '../../lambdas/core/errors';
import { errorName, isTransient } from '../../lambdas/store/transient-errors';

/** An error shaped as the AWS SDK v3 throws them. */
function sdkError(name: string, httpStatusCode: number, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode }, ...extra });
}

function networkError(code: string) {
  return Object.assign(new Error(`connect ${code}`), { code });
}

describe('isTransient', () => {
  it.each([
    ['a transient ProgressError', new TaskNotReadyError('task-1')],
    ['retries exhausted', new RetriesExhaustedError('busy')],
    ['the store asking to slow down', new StoreUnavailableError('throttled')],
    ['throttling', sdkError('ThrottlingException', 400)],
    ['exceeded throughput', sdkError('ProvisionedThroughputExceededException', 400)],
    ['the request limit', sdkError('RequestLimitExceeded', 400)],
    ['a DynamoDB internal error', sdkError('InternalServerError', 500)],
    ['a 503 of any name', sdkError('SomethingNew', 503)],
    ['a transaction conflict', sdkError('TransactionConflictException', 400)],
    ['an SDK error marked retryable', sdkError('Whatever', 400, { $retryable: {} })],
    ['a connection reset', networkError('ECONNRESET')],
    ['a DNS hiccup', networkError('EAI_AGAIN')],
    ['a timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' })],
  ])('is true for %s', (_, error) => {
    expect(isTransient(error)).toBe(true);
  });

  it.each([
    ['a permanent ProgressError', new UnknownSubtaskError('task-1', 'sub-1')],
    ['an invalid message', new InvalidMessageError('INVALID_JSON', 'not JSON')],
    ['a failed condition', sdkError('ConditionalCheckFailedException', 400)],
    ['a validation error', sdkError('ValidationException', 400)],
    ['access denied', sdkError('AccessDeniedException', 403)],
    ['a missing table', sdkError('ResourceNotFoundException', 400)],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a string', 'ThrottlingException'],
    ['null', null],
    ['undefined', undefined],
  ])('is false for %s', (_, error) => {
    expect(isTransient(error)).toBe(false);
  });
});

describe('errorName', () => {
  it.each([
    ["our error's code", new UnknownSubtaskError('task-1', 'sub-1'), 'UNKNOWN_SUBTASK'],
    ["the SDK error's name", sdkError('ThrottlingException', 400), 'ThrottlingException'],
    ['the network error code', networkError('ECONNRESET'), 'ECONNRESET'],
    ['the name of a plain error', new TypeError('x'), 'TypeError'],
    ['INTERNAL_ERROR for a thrown string', 'boom', 'INTERNAL_ERROR'],
    ['INTERNAL_ERROR for an object with neither', {}, 'INTERNAL_ERROR'],
  ])('gives %s', (_, error, name) => {
    expect(errorName(error)).toBe(name);
  });
});
