import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, receiveAll, sqsClient, uniqueName } from '../support/aws';
import { initializeRequest } from '../support/factories';
import {
  eventually,
  finishedProgress,
  http,
  queueDrained,
  sendBodies,
  startTestStack,
  type TestStack,
  wireMessage,
} from './stack';

/** Statuses into the real queue, through the event source stand-in and the applier, out of the HTTP API. */

let stack: TestStack;
let store: TaskStore;

beforeAll(async () => {
  stack = await startTestStack();
  store = new TaskStore(documentClient(dynamoClient()), stack.tableName);
});

afterAll(async () => {
  await stack?.stop();
});

async function newTask(taskId: string, subtaskIds: readonly string[], total: number): Promise<string> {
  await store.initialize(initializeRequest(taskId, subtaskIds, { total }), Date.now());
  return taskId;
}

describe('statuses sent to the queue', () => {
  it('are applied for an integer entry_id, and the task reports exact counts and the message', async () => {
    const numericId = randomInt(1, 2 ** 47);
    const taskId = await newTask(String(numericId), ['a', 'b'], 200);

    await sendBodies(stack.queueUrl, [
      wireMessage(numericId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(numericId, 'b', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
    ]);
    const answer = await finishedProgress(stack, taskId);

    expect(answer.json).toMatchObject({
      task_id: taskId,
      task_state: 'SUCCESS',
      in_progress: false,
      succeeded: true,
      message: 'Message successfully emailed for 200 recipients',
      task_progress: { attempted: 200, succeeded: 200, failed: 0, skipped: 0, total: 200 },
      subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
    });
  });

  it('are applied for a string entry_id, counting failed items and failed subtasks', async () => {
    const taskId = await newTask(uniqueName('task'), ['s-1', 's-2', 's-3'], 400);

    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 's-1', {
        succeeded: 98,
        failed: 2,
        skipped: 3,
        retried_withmax: 1,
        state: 'SUCCESS',
      }),
      wireMessage(taskId, 's-2', { succeeded: 40, failed: 10, state: 'FAILURE' }),
      wireMessage(taskId, 's-3', { succeeded: 0, failed: 0, skipped: 5, state: 'REVOKED' }),
    ]);
    const answer = await finishedProgress(stack, taskId);

    expect(answer.json).toMatchObject({
      task_state: 'SUCCESS',
      succeeded: false,
      message: 'Message emailed for 138 of 150 recipients (skipping 8) (out of 400)',
      task_progress: { attempted: 150, succeeded: 138, failed: 12, skipped: 8, total: 400 },
      subtasks: { total: 3, succeeded: 1, failed: 2, remaining: 0 },
    });
  });

  it('give the same result whatever the order and however often each arrives', async () => {
    const taskId = await newTask(uniqueName('task'), ['x', 'y'], 100);
    const history = (id: string, succeeded: number) => [
      wireMessage(taskId, id, { succeeded: 10, failed: 0, state: 'PROGRESS' }),
      wireMessage(taskId, id, { succeeded: 20, failed: 1, retried_nomax: 1, state: 'RETRY' }),
      wireMessage(taskId, id, { succeeded, failed: 2, retried_nomax: 1, state: 'SUCCESS' }),
    ];
    const [x1, x2, x3] = history('x', 40);
    const [y1, y2, y3] = history('y', 45);
    const deliveries = [x3, y2, x1, y3, x2, x3, y1, y3, x1].filter((body) => body !== undefined);

    await sendBodies(stack.queueUrl, deliveries);
    const first = await finishedProgress(stack, taskId);
    await sendBodies(stack.queueUrl, deliveries);
    await queueDrained(stack.queueUrl);
    const replayed = await http(`${stack.httpUrl}/tasks/${taskId}`);

    expect(first.json).toMatchObject({
      task_progress: { attempted: 89, succeeded: 85, failed: 4, skipped: 0 },
      subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
      message: 'Message emailed for 85 of 89 recipients (out of 100)',
    });
    expect(replayed.json).toEqual(first.json);
  });

  it('that can never apply reach the dead-letter queue with their reason', async () => {
    const taskId = await newTask(uniqueName('task'), ['only'], 10);
    const poison = {
      INVALID_JSON: '{"entry_id": "half a message',
      COUNTS_MISMATCH: wireMessage(taskId, 'only', { succeeded: 1, failed: 0, state: 'SUCCESS' }).replace(
        '"attempted":1',
        '"attempted":7',
      ),
      UNKNOWN_SUBTASK: wireMessage(taskId, 'stranger', { succeeded: 1, failed: 0, state: 'SUCCESS' }),
    };

    await sendBodies(stack.queueUrl, Object.values(poison));
    const client = sqsClient();
    const letters = await receiveAll(client, stack.deadLetterQueueUrl, 3).finally(() => client.destroy());

    const reasons = Object.fromEntries(
      letters.map((letter) => [letter.MessageAttributes?.error_code?.StringValue, letter.Body]),
    );
    expect(reasons).toEqual(poison);
    expect(letters.every((letter) => letter.MessageAttributes?.error_message?.StringValue)).toBe(true);
  });
});

describe('GET /tasks/{task_id} with If-None-Match', () => {
  it('answers 304 while the version is unchanged and 200 with a new ETag once it changes', async () => {
    const taskId = await newTask(uniqueName('task'), ['p', 'q'], 20);
    const url = `${stack.httpUrl}/tasks/${taskId}`;
    const initial = await http(url);
    const etag = initial.headers.get('etag') ?? '';

    const unchanged = await http(url, { headers: { 'if-none-match': etag } });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'p', { succeeded: 10, failed: 0, state: 'SUCCESS' }),
    ]);
    const changed = await finishedOrChanged(url, etag);

    expect(initial.status).toBe(200);
    expect(etag).toMatch(/^"v1"$/);
    expect(unchanged.status).toBe(304);
    expect(unchanged.text).toBe('');
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).toBe('"v2"');
    expect(changed.json).toMatchObject({ version: 2, subtasks: { succeeded: 1, remaining: 1 } });
  });
});

/** Polls with `If-None-Match` until the answer is no longer a 304, as a dashboard would. */
function finishedOrChanged(url: string, etag: string) {
  return eventually(
    () => http(url, { headers: { 'if-none-match': etag } }),
    (answer) => answer.status !== 304,
  );
}

describe('the local stack', () => {
  it('reported no errors while serving the tests above', () => {
    expect(stack.errors).toEqual([]);
  });
});
