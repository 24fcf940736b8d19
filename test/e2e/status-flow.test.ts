/**
 * Statuses into the real queue, through the event source stand-in and the applier (subtask items), the stream
 * poller and the aggregator (the fold), out of the HTTP API.
 */

import { randomInt } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiveAll, sqsClient, uniqueName } from '../support/aws';
import {
  eventually,
  finishedProgress,
  http,
  initialize,
  progressOf,
  queueDrained,
  sendBodies,
  settled,
  startTestStack,
  type TestStack,
  wireMessage,
} from './stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

describe('statuses sent to the queue', () => {
  it('are applied for an integer entry_id, and the task reports exact counts and the message', async () => {
    const numericId = randomInt(1, 2 ** 47);
    const taskId = String(numericId);
    await initialize(stack, taskId, ['a', 'b']);

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
      in_flight: { attempted: 0, succeeded: 0, failed: 0, skipped: 0 },
      subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
      cancel_requested: false,
      ended_at: expect.any(String),
    });
  });

  it('are applied for a string entry_id, counting failed items and failed subtasks', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['s-1', 's-2', 's-3'], { total: 400 });

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

    // No tolerance given: the task fails only when every subtask or every attempted item failed.
    expect(answer.json).toMatchObject({
      task_state: 'SUCCESS',
      succeeded: false,
      message: 'Message emailed for 138 of 150 recipients (skipping 8) (out of 400) (2 of 3 subtasks failed)',
      task_progress: { attempted: 150, succeeded: 138, failed: 12, skipped: 8, total: 400 },
      subtasks: { total: 3, succeeded: 1, failed: 2, remaining: 0 },
    });
  });

  it('show the items of running subtasks in in_flight before they end', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['r-1', 'r-2']);

    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'r-1', { succeeded: 30, failed: 1, skipped: 2, state: 'PROGRESS' }),
      wireMessage(taskId, 'r-2', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
    ]);
    await settled(stack);
    const progress = await progressOf(stack, taskId);

    expect(progress).toMatchObject({
      task_state: 'PROGRESS',
      in_progress: true,
      task_progress: { attempted: 100, succeeded: 100, failed: 0, skipped: 0 },
      in_flight: { attempted: 31, succeeded: 30, failed: 1, skipped: 2 },
      subtasks: { total: 2, succeeded: 1, failed: 0, remaining: 1 },
      message: 'Progress: emailed 100 of 100 so far (out of 200)',
    });
  });

  it('give the same result whatever the order and however often each arrives', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['x', 'y'], { total: 100 });
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
    await settled(stack);
    const replayed = await http(`${stack.httpUrl}/tasks/${taskId}`);

    expect(first.json).toMatchObject({
      task_progress: { attempted: 89, succeeded: 85, failed: 4, skipped: 0 },
      subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
      message: 'Message emailed for 85 of 89 recipients (out of 100)',
    });
    expect(replayed.json).toEqual(first.json);
  });

  it('that can never apply reach the dead-letter queue with their reason', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['only'], { total: 10 });
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

  it("that reach the dead-letter queue keep the sender's own message attributes", async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['only'], { total: 10 });
    const body = wireMessage(taskId, 'stranger', { succeeded: 1, failed: 0, state: 'SUCCESS' });
    const client = sqsClient();

    try {
      await client.send(
        new SendMessageCommand({
          QueueUrl: stack.queueUrl,
          MessageBody: body,
          MessageAttributes: {
            trace_id: { DataType: 'String', StringValue: 'trace-7f0c' },
            attempt: { DataType: 'Number', StringValue: '3' },
            signature: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255]) },
          },
        }),
      );
      const [letter, ...others] = await receiveAll(client, stack.deadLetterQueueUrl, 1);

      expect(others).toEqual([]);
      expect(letter?.Body).toBe(body);
      expect(letter?.MessageAttributes).toMatchObject({
        trace_id: { DataType: 'String', StringValue: 'trace-7f0c' },
        attempt: { DataType: 'Number', StringValue: '3' },
        signature: { DataType: 'Binary' },
        error_code: { DataType: 'String', StringValue: 'UNKNOWN_SUBTASK' },
        error_message: { DataType: 'String', StringValue: expect.stringContaining('stranger') },
      });
      expect([...(letter?.MessageAttributes?.signature?.BinaryValue ?? [])]).toEqual([0, 1, 2, 255]);
    } finally {
      client.destroy();
    }
  });
});

describe('GET /tasks/{task_id}', () => {
  it('answers 304 to If-None-Match while the task is unchanged, and 200 with a new ETag once it changes', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['p', 'q'], { total: 20 });
    const url = `${stack.httpUrl}/tasks/${taskId}`;
    const initial = await http(url);
    const etag = initial.headers.get('etag') ?? '';

    const unchanged = await http(url, { headers: { 'if-none-match': etag } });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'p', { succeeded: 10, failed: 0, state: 'SUCCESS' }),
    ]);
    const changed = await eventually(
      () => http(url, { headers: { 'if-none-match': etag } }),
      (answer) => answer.status !== 304,
    );

    expect(initial.status).toBe(200);
    expect(initial.json).toMatchObject({ version: expect.any(Number), generation: expect.any(String) });
    // Generation and version: a task initialized again never matches a tag of its predecessor.
    expect(etag).toMatch(/^"[^".]+\.\d+"$/);
    expect(unchanged.status).toBe(304);
    expect(unchanged.text).toBe('');
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(changed.json).toMatchObject({ subtasks: { succeeded: 1, remaining: 1 } });
  });

  it('ignores a cache-busting query parameter', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['only']);

    const answer = await http(`${stack.httpUrl}/tasks/${taskId}?_=1700000000`);

    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ task_id: taskId, task_state: 'PROGRESS' });
    expect(answer.headers.get('cache-control')).toBe('no-cache');
  });
});

describe('the local stack', () => {
  it('reported no errors while serving the tests above', async () => {
    await queueDrained(stack.queueUrl);

    expect(stack.errorLines()).toEqual([]);
  });
});
