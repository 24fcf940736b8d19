import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../../lambdas/core/errors';
import {
  MAX_BODY_BYTES,
  MAX_COUNT,
  parseStatusMessage,
  statusMessageBody,
} from '../../lambdas/core/status-message';
import { SUBTASK_STATES } from '../../lambdas/core/subtask-status';
import { messageBody, status, terminal } from '../support/factories';

const SUBTASK = '7f0c2a9e-4b1d-4c3a-9f2e-1d2c3b4a5f60';

/** The status of the design's §4 example message. */
const EXAMPLE_STATUS = {
  task_id: SUBTASK,
  attempted: 100,
  succeeded: 98,
  failed: 2,
  skipped: 3,
  retried_nomax: 0,
  retried_withmax: 1,
  state: 'SUCCESS',
};

function body(
  overrides: Record<string, unknown> = {},
  statusOverrides: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    entry_id: 'bulk-email-42',
    current_task_id: SUBTASK,
    new_subtask_status: { ...EXAMPLE_STATUS, ...statusOverrides },
    ...overrides,
  });
}

function without(key: string, source: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(source).filter(([name]) => name !== key));
}

function parseError(raw: string): unknown {
  try {
    parseStatusMessage(raw);
  } catch (error) {
    return error;
  }
  throw new Error(`expected ${raw.slice(0, 80)} to be rejected`);
}

describe('a valid status message', () => {
  it('parses the design example with a string entry_id', () => {
    const raw = body();

    const message = parseStatusMessage(raw);

    expect(message).toEqual({ taskId: 'bulk-email-42', subtaskId: SUBTASK, status: EXAMPLE_STATUS });
  });

  it('turns an integer entry_id into its decimal string', () => {
    const entryId = 4_200_017;
    const raw = body({ entry_id: entryId });

    const message = parseStatusMessage(raw);

    expect(message.taskId).toBe(String(entryId));
  });

  it('accepts every state name of the design', () => {
    for (const state of SUBTASK_STATES) {
      const raw = body({}, { state });

      const message = parseStatusMessage(raw);

      expect(message.status.state).toBe(state);
    }
  });

  it('accepts ids of exactly 128 characters from the whole alphabet', () => {
    const id = 'Az09._:-'.repeat(16);
    const raw = body({ entry_id: id, current_task_id: id }, { task_id: id });

    const message = parseStatusMessage(raw);

    expect(message).toMatchObject({ taskId: id, subtaskId: id });
  });

  it('does not reject a body of exactly the size limit for its size', () => {
    const raw = body();
    const padded = raw + ' '.repeat(MAX_BODY_BYTES - Buffer.byteLength(raw, 'utf8'));

    const message = parseStatusMessage(padded);

    expect(Buffer.byteLength(padded, 'utf8')).toBe(MAX_BODY_BYTES);
    expect(message.taskId).toBe('bulk-email-42');
  });

  it('round-trips any status built by a producer through statusMessageBody', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/);
    const count = fc.nat({ max: Math.floor(MAX_COUNT / 2) });
    fc.assert(
      fc.property(
        id,
        id,
        count,
        count,
        count,
        count,
        count,
        fc.constantFrom(...SUBTASK_STATES),
        (taskId, subtaskId, succeeded, failed, skipped, nomax, withmax, state) => {
          const sent = status(subtaskId, {
            succeeded,
            failed,
            skipped,
            retried_nomax: nomax,
            retried_withmax: withmax,
            state,
          });

          const received = parseStatusMessage(JSON.stringify(statusMessageBody(taskId, sent)));

          expect(received).toEqual({ taskId, subtaskId, status: sent });
        },
      ),
    );
  });

  it('ignores unknown fields in the status and at the top level and leaves them out of the result', () => {
    const raw = body(
      { priority: 'high' },
      { error_details: { code: 'SMTP_TIMEOUT', recipients: ['a@example.com'] } },
    );

    const message = parseStatusMessage(raw);

    expect(message).toStrictEqual({ taskId: 'bulk-email-42', subtaskId: SUBTASK, status: EXAMPLE_STATUS });
    expect(Object.keys(message.status).sort()).toEqual(Object.keys(EXAMPLE_STATUS).sort());
  });

  it('ignores a __proto__ key in the status without it reaching the prototype', () => {
    const raw = body().replace(
      '"new_subtask_status":{',
      '"new_subtask_status":{"__proto__":{"polluted":true},',
    );

    const message = parseStatusMessage(raw);

    expect(message.status).toStrictEqual(EXAMPLE_STATUS);
    expect(Object.hasOwn(message.status, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(message.status)).toBe(Object.prototype);
    expect('polluted' in message.status).toBe(false);
  });

  it('ignores a __proto__ key at the top level', () => {
    const raw = `{"__proto__":{"entry_id":"other-task"},${body().slice(1)}`;

    const message = parseStatusMessage(raw);

    expect(message).toStrictEqual({ taskId: 'bulk-email-42', subtaskId: SUBTASK, status: EXAMPLE_STATUS });
    expect(Object.hasOwn(message, '__proto__')).toBe(false);
  });

  it('is what the test factory messageBody sends', () => {
    const sent = terminal('sub-1', { failed: 5 });

    const received = parseStatusMessage(messageBody('task-1', sent));

    expect(received).toEqual({ taskId: 'task-1', subtaskId: 'sub-1', status: sent });
  });
});

describe('an invalid status message is rejected permanently with the reason', () => {
  const topLevel = JSON.parse(body()) as Record<string, unknown>;

  it.each<[string, string, string]>([
    ['not JSON', 'INVALID_JSON', '{"entry_id": '],
    ['an empty body', 'INVALID_JSON', ''],
    ['JSON null', 'INVALID_TYPE', 'null'],
    ['a JSON array', 'INVALID_TYPE', JSON.stringify([topLevel])],
    ['a JSON number', 'INVALID_TYPE', '42'],
    ['a JSON string', 'INVALID_TYPE', JSON.stringify(body())],
    ['no current_task_id', 'MISSING_FIELD', JSON.stringify(without('current_task_id', topLevel))],
    ['no new_subtask_status', 'MISSING_FIELD', JSON.stringify(without('new_subtask_status', topLevel))],
    ['no succeeded count', 'MISSING_FIELD', body({}, { succeeded: undefined })],
    ['no entry_id', 'MISSING_FIELD', JSON.stringify(without('entry_id', topLevel))],
    ['no state', 'MISSING_FIELD', body({}, { state: undefined })],
    ['new_subtask_status null', 'INVALID_TYPE', body({ new_subtask_status: null })],
    [
      'a missing state that only a __proto__ key inside the status carries',
      'MISSING_FIELD',
      `{"entry_id":"bulk-email-42","current_task_id":"${SUBTASK}","new_subtask_status":{"__proto__":{"state":"SUCCESS"},${JSON.stringify(without('state', EXAMPLE_STATUS)).slice(1)}}`,
    ],
    [
      'a missing entry_id that only a __proto__ key carries',
      'MISSING_FIELD',
      `{"__proto__":{"entry_id":"bulk-email-42"},${JSON.stringify(without('entry_id', topLevel)).slice(1)}`,
    ],
    [
      'a missing count beside an unknown field',
      'MISSING_FIELD',
      body({}, { skipped: undefined, retried: 0 }),
    ],
    ['a negative count', 'INVALID_COUNT', body({}, { skipped: -1 })],
    ['a fractional count', 'INVALID_COUNT', body({}, { skipped: 1.5 })],
    ['a count as a string', 'INVALID_COUNT', body({}, { skipped: '3' })],
    ['a null count', 'INVALID_COUNT', body({}, { retried_nomax: null })],
    ['a count of 2^31, whose sums could overflow a task', 'INVALID_COUNT', body({}, { skipped: 2 ** 31 })],
    ['a count of 1e300', 'INVALID_COUNT', body({}, { skipped: 1e300 })],
    ['a count above 2^53', 'INVALID_COUNT', body().replace('"skipped":3', '"skipped":9007199254740993')],
    ['an unknown state', 'UNKNOWN_STATE', body({}, { state: 'DONE' })],
    ['a lowercase state', 'UNKNOWN_STATE', body({}, { state: 'success' })],
    ['a state that is not a string', 'UNKNOWN_STATE', body({}, { state: 3 })],
    ['a slash in current_task_id', 'INVALID_ID', body({ current_task_id: 'a/b' }, { task_id: 'a/b' })],
    ['a space in entry_id', 'INVALID_ID', body({ entry_id: 'a b' })],
    ['an encoded path in entry_id', 'INVALID_ID', body({ entry_id: '..%2F' })],
    ['an id over 128 characters', 'INVALID_ID', body({ entry_id: 'a'.repeat(129) })],
    ['an empty current_task_id', 'INVALID_ID', body({ current_task_id: '' }, { task_id: '' })],
    ['an empty entry_id', 'INVALID_ID', body({ entry_id: '' })],
    ['a negative integer entry_id', 'INVALID_ID', body({ entry_id: -1 })],
    ['a float entry_id', 'INVALID_ID', body({ entry_id: 1.5 })],
    ['an entry_id above 2^53', 'INVALID_ID', body().replace('"bulk-email-42"', '9007199254740993')],
    ['a status task_id that is not a string', 'INVALID_ID', body({}, { task_id: 7 })],
    [
      'status.task_id other than current_task_id',
      'SUBTASK_ID_MISMATCH',
      body({}, { task_id: 'other-subtask' }),
    ],
    ['attempted other than succeeded + failed', 'COUNTS_MISMATCH', body({}, { attempted: 99 })],
    ['a body over 16 KiB', 'BODY_TOO_LARGE', body() + ' '.repeat(MAX_BODY_BYTES)],
    [
      'a body over 16 KiB in bytes though not in characters',
      'BODY_TOO_LARGE',
      body({ note: 'é'.repeat(MAX_BODY_BYTES / 2) }),
    ],
  ])('%s → %s', (_, code, raw) => {
    const error = parseError(raw);

    expect(error).toBeInstanceOf(InvalidMessageError);
    expect(error).toMatchObject({ code, permanent: true, name: 'InvalidMessageError' });
  });

  it('names the offending field in the error message', () => {
    const raw = body({}, { skipped: -1 });

    const error = parseError(raw);

    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as InvalidMessageError).message).toContain('new_subtask_status.skipped');
  });

  it('keeps the JSON parser error as the cause of INVALID_JSON', () => {
    const raw = '{"entry_id": ';

    const error = parseError(raw);

    expect(error).toBeInstanceOf(InvalidMessageError);
    expect((error as InvalidMessageError).cause).toBeInstanceOf(SyntaxError);
  });
});
