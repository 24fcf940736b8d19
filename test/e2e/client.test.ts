import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ClientConfigurationError,
  createSubtaskStatus,
  getProgress,
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

/** The producer client and the progress API client against the running stack, as another service uses them. */

let stack: TestStack;

beforeAll(async () => {
  // The stack exports the SDK's endpoint variables for its functions; the client's default SDK clients read them.
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
  it('initializes a task and queues statuses that the service applies exactly', async () => {
    const taskId = uniqueName('task');
    const subtaskIds = numberedSubtaskIds(8);
    const statuses = histories(subtaskIds).flat();

    const task = await initializeTask(
      { taskId, actionName: 'emailed', total: 100, subtaskIds },
      { tableName: stack.tableName },
    );
    const result = await sendSubtaskStatuses(taskId, statuses, { queueUrl: stack.queueUrl });
    const progress = await eventually(
      () => getProgress(taskId, { apiUrl: stack.httpUrl }),
      (answer) => answer.status === 200 && !answer.progress.in_progress,
    );

    expect(task).toMatchObject({ task_id: taskId, version: 1, subtasks: { total: 8 } });
    expect(result).toEqual({ sent: 24, failed: [] });
    expect(progress).toMatchObject({
      status: 200,
      etag: expect.any(String),
      progress: {
        task_state: 'SUCCESS',
        message: 'Message emailed for 80 of 88 recipients (skipping 8) (out of 100)',
        task_progress: { attempted: 88, succeeded: 80, failed: 8, skipped: 8 },
        subtasks: { total: 8, succeeded: 7, failed: 1, remaining: 0 },
      },
    });
  });

  it('returns the existing task when the same initialization runs again', async () => {
    const request = { taskId: uniqueName('task'), actionName: 'emailed', total: 3, subtaskIds: ['a', 'b'] };

    const first = await initializeTask(request, { tableName: stack.tableName });
    const again = await initializeTask(request, { tableName: stack.tableName });

    expect(again).toEqual(first);
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
      { tableName: stack.tableName },
    );
  });

  it('gets a 304 for an unchanged task when it passes the ETag', async () => {
    const first = await getProgress(taskId, { apiUrl: stack.httpUrl });
    const etag = first.status === 200 ? first.etag : undefined;

    const second = await getProgress(taskId, { apiUrl: stack.httpUrl, ...(etag ? { etag } : {}) });

    expect(first).toMatchObject({ status: 200, etag: '"v1"', progress: { task_id: taskId, version: 1 } });
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

describe('request signing', () => {
  const body = (taskId: string) =>
    JSON.stringify({
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
      message: 'Progress: emailed 0 of 0 so far (out of 1)',
      succeeded: false,
      subtasks: { total: 1, succeeded: 0, failed: 0, remaining: 1 },
      version: 1,
    });

  /** A fetch that records what it was asked and answers like the API would. */
  function recordingFetch() {
    const requests: { url: string; headers: Headers }[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      requests.push({ url: String(input), headers: new Headers(init?.headers) });
      return new Response(body('t:1'), { status: 200, headers: { etag: '"v1"' } });
    };
    return { requests, fetchImpl };
  }

  it('signs requests to API Gateway with SigV4 for execute-api in the configured region', async () => {
    const { requests, fetchImpl } = recordingFetch();

    await getProgress('t:1', {
      apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
      fetch: fetchImpl,
    });

    const [sent] = requests;
    expect(sent?.url).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/tasks/t%3A1');
    expect(sent?.headers.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=\S*host\S*, Signature=[0-9a-f]{64}$/,
    );
    expect(sent?.headers.get('x-amz-security-token')).toBe('token');
    expect(sent?.headers.get('x-amz-date')).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('leaves requests to the local stack on loopback unsigned', async () => {
    const { requests, fetchImpl } = recordingFetch();

    await getProgress('t:1', { apiUrl: 'http://127.0.0.1:3000', fetch: fetchImpl });

    expect(requests[0]?.headers.get('authorization')).toBeNull();
  });
});
