/**
 * The client's errors for the API's refusals: one family under `SubtaskProgressClientError`, and a conflict's
 * fields read from the answer's `fields`, whatever its message says.
 */
import { describe, expect, it } from 'vitest';
import {
  CancelConflictError,
  cancelTask,
  InitializeConflictError,
  InvalidInitializeRequestError,
  initializeTask,
  ProgressApiError,
  SubtaskProgressClientError,
} from '../../client';

/** A loopback URL, so nothing is signed; the answer comes from `fetch` below. */
const apiUrl = 'http://127.0.0.1:9';

function answering(status: number, body: unknown): { apiUrl: string; fetch: typeof fetch } {
  return {
    apiUrl,
    fetch: async () =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }),
  };
}

const request = { taskId: 'job-1', actionName: 'emailed', total: 3, subtaskIds: ['a'] };

describe('the client on the API refusing a write', () => {
  it('throws InitializeConflictError with the fields of the 409 body and its message', async () => {
    const error = await initializeTask(
      request,
      answering(409, { error: 'Conflict', message: 'Not what it was', fields: ['total', 'options'] }),
    ).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(InitializeConflictError);
    expect(error).toBeInstanceOf(ProgressApiError);
    expect(error).toBeInstanceOf(SubtaskProgressClientError);
    expect(error).toMatchObject({
      taskId: 'job-1',
      fields: ['total', 'options'],
      status: 409,
      error: 'Conflict',
      message: 'Not what it was',
    });
  });

  it('names no fields when a 409 body has none', async () => {
    const error = await initializeTask(
      request,
      answering(409, { error: 'Conflict', message: 'with a different total' }),
    ).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(InitializeConflictError);
    expect(error).toMatchObject({ fields: [] });
  });

  it('throws InvalidInitializeRequestError on a 400 and CancelConflictError on a cancel 409, in the family', async () => {
    const invalid = await initializeTask(
      request,
      answering(400, { error: 'BadRequest', message: 'Subtask ids must be unique' }),
    ).catch((caught: unknown) => caught);
    const conflict = await cancelTask(
      'job-1',
      answering(409, { error: 'Conflict', message: "Task 'job-1' already ended SUCCESS" }),
    ).catch((caught: unknown) => caught);

    expect(invalid).toBeInstanceOf(InvalidInitializeRequestError);
    expect(invalid).toBeInstanceOf(SubtaskProgressClientError);
    expect(invalid).toMatchObject({
      status: 400,
      error: 'BadRequest',
      message: 'Subtask ids must be unique',
    });
    expect(conflict).toBeInstanceOf(CancelConflictError);
    expect(conflict).toBeInstanceOf(SubtaskProgressClientError);
    expect(conflict).toMatchObject({ status: 409, message: "Task 'job-1' already ended SUCCESS" });
  });
});
