/** The producer client and the progress API client against the running stack, as another service uses them. */

import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CancelConflictError,
  ClientConfigurationError,
  cancelTask,
  createSubtaskStatus,
  getProgress,
  InitializeConflictError,
  InvalidInitializeRequestError,
  incrementSubtaskStatus,
  initializeTask,
  listSubtasks,
  numberedSubtaskIds,
  ProgressApiError,
  ProgressApiUnreachableError,
  type SubtaskStatus,
  sendSubtaskStatuses,
} from '../../client';
import { freePort, LOCAL_CREDENTIALS } from '../../local/emulators';
import { uniqueName } from '../support/aws';
import { eventually, startTestStack, type TestStack } from './stack';

let stack: TestStack;

beforeAll(async () => {
  // The test stack sets the export line's variables here; the client's default SDK clients read them.
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** Every subtask's cumulative history: a progress report, a retry, then the end. */
function histories(subtaskIds: readonly string[]): SubtaskStatus[][] {
  return subtaskIds.map((id, index) => {
    const progress = createSubtaskStatus(id, { succeeded: 5, state: 'PROGRESS' });
    const retry = incrementSubtaskStatus(progress, {
      succeeded: 3,
      failed: 1,
      retried_withmax: 1,
      state: 'RETRY',
    });
    const final = incrementSubtaskStatus(retry, {
      succeeded: 2,
      skipped: 1,
      state: index === 0 ? 'FAILURE' : 'SUCCESS',
    });
    return [progress, retry, final];
  });
}

describe('producer client', () => {
  it('initializes a task over HTTP and queues statuses that the service applies exactly', async () => {
    const taskId = uniqueName('task');
    const subtaskIds = numberedSubtaskIds(8);
    const statuses = histories(subtaskIds).flat();

    const task = await initializeTask(
      { taskId, actionName: 'emailed', total: 100, subtaskIds },
      { apiUrl: stack.httpUrl },
    );
    const result = await sendSubtaskStatuses(taskId, statuses, { queueUrl: stack.queueUrl });
    const progress = await eventually(
      () => getProgress(taskId, { apiUrl: stack.httpUrl }),
      (answer) => answer.status === 200 && !answer.progress.in_progress,
    );

    expect(task).toMatchObject({
      created: true,
      requests: 1,
      progress: { task_id: taskId, subtasks: { total: 8 } },
    });
    expect(result).toEqual({ sent: 24, failed: [] });
    expect(progress).toMatchObject({
      status: 200,
      etag: expect.any(String),
      progress: {
        task_state: 'SUCCESS',
        message: 'Message emailed for 80 of 88 recipients (skipping 8) (out of 100) (1 of 8 subtasks failed)',
        task_progress: { attempted: 88, succeeded: 80, failed: 8, skipped: 8 },
        subtasks: { total: 8, succeeded: 7, failed: 1, remaining: 0 },
      },
    });
  });

  it('returns the existing task, not created, when the same initialization runs again', async () => {
    const request = { taskId: uniqueName('task'), actionName: 'emailed', total: 3, subtaskIds: ['a', 'b'] };

    const first = await initializeTask(request, { apiUrl: stack.httpUrl });
    const again = await initializeTask(request, { apiUrl: stack.httpUrl });

    expect(first.created).toBe(true);
    expect(again).toEqual({ ...first, created: false });
  });

  it('initializes numbered subtasks from a count and a prefix', async () => {
    const taskId = uniqueName('task');

    const task = await initializeTask(
      { taskId, actionName: 'printed', total: 30, subtaskCount: 12, prefix: 'page' },
      { apiUrl: stack.httpUrl },
    );
    const page = await listSubtasks(taskId, { apiUrl: stack.httpUrl, limit: 100 });

    expect(task.progress.subtasks.total).toBe(12);
    expect(page.subtasks.map((subtask) => subtask.subtask_id).sort()).toEqual(numberedSubtaskIds(12, 'page'));
  });

  it('throws InitializeConflictError naming the fields, and InvalidInitializeRequestError, with the API message', async () => {
    const taskId = uniqueName('task');
    await initializeTask(
      { taskId, actionName: 'emailed', total: 3, subtaskIds: ['a'] },
      { apiUrl: stack.httpUrl },
    );

    const [conflict, invalid] = await Promise.allSettled([
      initializeTask(
        { taskId, actionName: 'emailed', total: 4, subtaskIds: ['a'], subtaskTimeoutSeconds: 60 },
        { apiUrl: stack.httpUrl },
      ),
      initializeTask(
        { taskId: uniqueName('task'), actionName: 'emailed', total: 3, subtaskIds: ['a', 'a'] },
        { apiUrl: stack.httpUrl },
      ),
    ]);

    expect(conflict.status === 'rejected' && conflict.reason).toBeInstanceOf(InitializeConflictError);
    expect(conflict.status === 'rejected' && conflict.reason).toMatchObject({
      fields: ['total', 'options'],
      message: `Task '${taskId}' is already initialized with a different total, options`,
    });
    expect(invalid.status === 'rejected' && invalid.reason).toBeInstanceOf(InvalidInitializeRequestError);
    expect(invalid.status === 'rejected' && invalid.reason).toMatchObject({
      message: 'Subtask ids must be unique',
    });
  });

  it('repeats the same PUT while the API answers 202, waiting as Retry-After says', async () => {
    const bodies: string[] = [];
    const waits: number[] = [];
    const answers = [202, 202, 200];
    const fetchImpl: typeof fetch = async (_input, init) => {
      bodies.push(String(init?.body));
      const status = answers.shift() ?? 500;
      return new Response(progressBody('big'), { status, headers: { 'retry-after': '1' } });
    };

    const task = await initializeTask(
      { taskId: 'big', actionName: 'emailed', total: 1, subtaskCount: 200_000 },
      { apiUrl: 'http://127.0.0.1:1', fetch: fetchImpl, sleep: async (ms) => void waits.push(ms) },
    );

    expect(task).toMatchObject({ created: true, requests: 3, progress: { task_id: 'big' } });
    expect(new Set(bodies)).toEqual(new Set(['{"action_name":"emailed","total":1,"subtask_count":200000}']));
    expect(waits).toEqual([1_000, 1_000]);
  });

  it('cancels a task: cancel_requested at once, CANCELED once swept, CancelConflictError after', async () => {
    const taskId = uniqueName('task');
    await initializeTask(
      { taskId, actionName: 'emailed', total: 3, subtaskIds: ['a', 'b'] },
      { apiUrl: stack.httpUrl },
    );

    const requested = await cancelTask(taskId, { apiUrl: stack.httpUrl });
    await stack.sweepNow();
    await stack.caughtUp();
    const ended = await getProgress(taskId, { apiUrl: stack.httpUrl });
    const [again, unknown] = await Promise.allSettled([
      cancelTask(taskId, { apiUrl: stack.httpUrl }),
      cancelTask('never-created', { apiUrl: stack.httpUrl }),
    ]);

    expect(requested).toMatchObject({ task_state: 'PROGRESS', cancel_requested: true });
    expect(ended).toMatchObject({ progress: { task_state: 'CANCELED', subtasks: { failed: 2 } } });
    expect(again.status === 'rejected' && again.reason).toBeInstanceOf(CancelConflictError);
    expect(again.status === 'rejected' && again.reason).toMatchObject({
      message: expect.stringContaining('already ended CANCELED'),
    });
    expect(unknown.status === 'rejected' && unknown.reason).toMatchObject({ status: 404, error: 'NotFound' });
  });

  it('reports a status that breaks the message rules as failed, without sending it', async () => {
    const bad: SubtaskStatus = { ...createSubtaskStatus('a', { succeeded: 1 }), attempted: 5 };

    const result = await sendSubtaskStatuses('some-task', [bad], { queueUrl: stack.queueUrl });

    expect(result).toEqual({
      sent: 0,
      failed: [{ status: bad, reason: expect.stringMatching(/^COUNTS_MISMATCH/) }],
    });
  });

  it('retries entries SQS fails through no fault of ours, and reports those it refuses', async () => {
    const sqs = new SQSClient({ region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    const mock = mockClient(sqs);
    mock
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: '0', MessageId: 'm0', MD5OfMessageBody: '' }],
        Failed: [
          { Id: '1', Code: 'InternalError', SenderFault: false, Message: 'try again' },
          { Id: '2', Code: 'InvalidMessageContents', SenderFault: true, Message: 'no' },
        ],
      })
      .resolves({ Successful: [{ Id: '0', MessageId: 'm1', MD5OfMessageBody: '' }], Failed: [] });
    const statuses = ['a', 'b', 'c'].map((id) => createSubtaskStatus(id, { state: 'PROGRESS' }));

    const result = await sendSubtaskStatuses('task', statuses, {
      queueUrl: stack.queueUrl,
      client: sqs,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });

    expect(result).toEqual({
      sent: 2,
      failed: [{ status: statuses[2], reason: 'InvalidMessageContents: no' }],
    });
    expect(mock.commandCalls(SendMessageBatchCommand)).toHaveLength(2);
  });

  it('reports every entry as failed once the retries are spent', async () => {
    const sqs = new SQSClient({ region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
    mockClient(sqs)
      .on(SendMessageBatchCommand)
      .resolves({ Failed: [{ Id: '0', Code: 'ServiceUnavailable', SenderFault: false, Message: 'busy' }] });
    const status = createSubtaskStatus('a', { state: 'PROGRESS' });

    const result = await sendSubtaskStatuses('task', [status], {
      queueUrl: stack.queueUrl,
      client: sqs,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    });

    expect(result).toEqual({ sent: 0, failed: [{ status, reason: 'ServiceUnavailable: busy' }] });
  });

  it('says which setting is missing when neither an option nor the environment gives it', async () => {
    vi.stubEnv('SUBTASK_PROGRESS_QUEUE_URL', undefined);
    try {
      const sending = sendSubtaskStatuses('task', []);

      await expect(sending).rejects.toBeInstanceOf(ClientConfigurationError);
      await expect(sending).rejects.toThrow(/SUBTASK_PROGRESS_QUEUE_URL is not set/);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('progress API client', () => {
  let taskId: string;

  beforeAll(async () => {
    taskId = uniqueName('task');
    await initializeTask(
      { taskId, actionName: 'emailed', total: 30, subtaskIds: ['s-1', 's-2', 's-3'] },
      { apiUrl: stack.httpUrl },
    );
  });

  it('gets a 304 for an unchanged task when it passes the ETag', async () => {
    const first = await getProgress(taskId, { apiUrl: stack.httpUrl });
    const etag = first.status === 200 ? first.etag : undefined;

    const second = await getProgress(taskId, { apiUrl: stack.httpUrl, ...(etag ? { etag } : {}) });

    expect(first).toMatchObject({ status: 200, etag: expect.stringMatching(/^"[^".]+\.\d+"$/) });
    expect(second).toEqual({ status: 304 });
  });

  it('lists subtasks page by page', async () => {
    const first = await listSubtasks(taskId, { apiUrl: stack.httpUrl, limit: 2 });
    const second = await listSubtasks(taskId, {
      apiUrl: stack.httpUrl,
      limit: 2,
      ...(first.next_cursor === null ? {} : { cursor: first.next_cursor }),
    });

    expect(first.subtasks.map((subtask) => subtask.subtask_id)).toEqual(['s-1', 's-2']);
    expect(second.subtasks.map((subtask) => subtask.subtask_id)).toEqual(['s-3']);
    expect(second.next_cursor).toBeNull();
    expect(first.subtasks[0]).toMatchObject({ state: 'QUEUING', attempted: 0 });
  });

  it("throws ProgressApiError with the API's error and message for an unknown task", async () => {
    const failure = getProgress('never-created', { apiUrl: stack.httpUrl });

    await expect(failure).rejects.toBeInstanceOf(ProgressApiError);
    await expect(failure).rejects.toMatchObject({
      status: 404,
      error: 'NotFound',
      message: "Task 'never-created' does not exist",
    });
  });

  it('throws ProgressApiUnreachableError when nothing listens at the URL', async () => {
    const failure = getProgress(taskId, { apiUrl: `http://127.0.0.1:${await freePort()}` });

    await expect(failure).rejects.toBeInstanceOf(ProgressApiUnreachableError);
    await expect(failure).rejects.toThrow(/ECONNREFUSED/);
  });
});

/** A progress answer as the API gives it, for fetches that stand in for the API. */
function progressBody(taskId: string): string {
  return JSON.stringify({
    task_id: taskId,
    task_state: 'PROGRESS',
    in_progress: true,
    task_progress: {
      action_name: 'emailed',
      attempted: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
      total: 1,
      duration_ms: 0,
      start_time: 1,
    },
    in_flight: { attempted: 0, succeeded: 0, failed: 0, skipped: 0 },
    message: 'Progress: emailed 0 of 0 so far (out of 1)',
    succeeded: false,
    subtasks: { total: 1, succeeded: 0, failed: 0, remaining: 1 },
    cancel_requested: false,
    generation: 'g-1',
    version: 2,
    updated_at: '2026-01-01T00:00:00.000Z',
  });
}

describe('request signing', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' };
  const apiUrl = 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod';

  /** A fetch that records what it was asked and answers like the API would. */
  function recordingFetch(status = 200) {
    const requests: { url: string; method: string; headers: Headers; body: string | undefined }[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      requests.push({
        url: String(input),
        method: init?.method ?? 'GET',
        headers: new Headers(init?.headers),
        body: init?.body === undefined ? undefined : String(init.body),
      });
      return new Response(progressBody('t:1'), { status, headers: { etag: '"g-1.2"' } });
    };
    return { requests, fetchImpl };
  }

  it('signs requests to API Gateway with SigV4 for execute-api in the configured region', async () => {
    const { requests, fetchImpl } = recordingFetch();

    await getProgress('t:1', { apiUrl, region: 'eu-west-1', credentials, fetch: fetchImpl });

    const [sent] = requests;
    expect(sent?.url).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/tasks/t%3A1');
    expect(sent?.headers.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=\S*host\S*, Signature=[0-9a-f]{64}$/,
    );
    expect(sent?.headers.get('x-amz-security-token')).toBe('token');
    expect(sent?.headers.get('x-amz-date')).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('signs the body and content type of a PUT, so a changed body no longer matches the signature', async () => {
    const { requests, fetchImpl } = recordingFetch(201);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
    try {
      const options = { apiUrl, region: 'eu-west-1', credentials, fetch: fetchImpl };
      await initializeTask({ taskId: 't:1', actionName: 'emailed', total: 1, subtaskIds: ['a'] }, options);
      await initializeTask({ taskId: 't:1', actionName: 'emailed', total: 2, subtaskIds: ['a'] }, options);
    } finally {
      vi.useRealTimers();
    }

    const [first, second] = requests;
    expect(first).toMatchObject({
      method: 'PUT',
      body: '{"action_name":"emailed","total":1,"subtask_ids":["a"]}',
    });
    expect(first?.headers.get('content-type')).toBe('application/json');
    expect(first?.headers.get('authorization')).toMatch(/SignedHeaders=content-type;host;/);
    expect(first?.headers.get('x-amz-date')).toBe(second?.headers.get('x-amz-date'));
    expect(first?.headers.get('authorization')).not.toBe(second?.headers.get('authorization'));
  });

  it('leaves requests to the local stack on loopback unsigned', async () => {
    const { requests, fetchImpl } = recordingFetch();

    await getProgress('t:1', { apiUrl: 'http://127.0.0.1:3000', fetch: fetchImpl });

    expect(requests[0]?.headers.get('authorization')).toBeNull();
  });

  it('refuses to sign a request over plain http to a host that is not loopback, and sends nothing', async () => {
    const { requests, fetchImpl } = recordingFetch();
    const options = {
      apiUrl: 'http://progress.example.com',
      region: 'eu-west-1',
      credentials,
      fetch: fetchImpl,
    };

    const calls = await Promise.allSettled([
      getProgress('t:1', options),
      initializeTask({ taskId: 't:1', actionName: 'emailed', total: 1, subtaskIds: ['a'] }, options),
      cancelTask('t:1', options),
    ]);

    for (const call of calls) {
      expect(call.status === 'rejected' && call.reason).toBeInstanceOf(ClientConfigurationError);
      expect(call.status === 'rejected' && String(call.reason)).toMatch(
        /Refusing to send a signed request over plain http to progress\.example\.com/,
      );
    }
    expect(requests).toEqual([]);
  });
});
