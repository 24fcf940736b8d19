/**
 * How tasks end besides their workers saying so — a subtask timeout, a deadline, a cancel — and the events the
 * service publishes about it, read from the local stack's events file. The sweeper runs when a test says, at
 * the time the test says: a minute of waiting becomes a clock argument.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_REGION } from '../../local/emulators';
import { type LocalEvent, readEventFile } from '../../local/event-file';
import { startStreamPoller } from '../../local/stream-poller';
import { uniqueName } from '../support/aws';
import {
  http,
  initialize,
  isRecord,
  progressOf,
  sendBodies,
  settled,
  startTestStack,
  streamsClient,
  type TestStack,
  wireMessage,
} from './stack';

const MINUTE_MS = 60_000;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

async function eventsOf(taskId: string, detailType?: string): Promise<LocalEvent[]> {
  return (await readEventFile(stack.eventsFile)).filter(
    (event) =>
      event.detail.task_id === taskId && (detailType === undefined || event['detail-type'] === detailType),
  );
}

async function subtasksIn(taskId: string, state: string): Promise<Record<string, unknown>[]> {
  const answer = await http(`${stack.httpUrl}/tasks/${taskId}/subtasks?state=${state}`);
  if (!isRecord(answer.json) || !Array.isArray(answer.json.subtasks)) throw new Error(answer.text);
  return answer.json.subtasks.filter(isRecord);
}

/** Reads the table's whole stream again, from its start, into the stack's aggregator: Lambda's redelivery. */
async function replayStream(): Promise<void> {
  const streams = streamsClient();
  const replay = startStreamPoller({
    streams,
    streamArn: stack.streamArn,
    region: LOCAL_REGION,
    handler: stack.aggregator,
    startingPosition: 'TRIM_HORIZON',
    batchingWindowMs: 0,
    onError: (error) => stack.errors.push({ source: 'replayed stream', error }),
  });
  try {
    await replay.caughtUp();
  } finally {
    await replay.stop();
    streams.destroy();
  }
}

describe('Task Ended events', () => {
  it('are in the events file once per ended task, with a stable event_id, whatever is delivered again', async () => {
    const taskId = uniqueName('task');
    const task = await initialize(stack, taskId, ['a', 'b']);
    const statuses = [
      wireMessage(taskId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'b', { succeeded: 99, failed: 1, state: 'SUCCESS' }),
    ];

    // Every status twice, then the whole stream handed to the aggregator again.
    await sendBodies(stack.queueUrl, [...statuses, ...statuses]);
    await settled(stack);
    await sendBodies(stack.queueUrl, statuses);
    await settled(stack);
    await replayStream();
    const ended = await eventsOf(taskId, 'Task Ended');
    const deliveries = stack.deliveries.filter((delivery) => delivery.event.detail.task_id === taskId);

    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({
      version: '0',
      source: 'subtask-progress',
      'detail-type': 'Task Ended',
      region: LOCAL_REGION,
      detail: {
        event_id: `${taskId}:${task.generation}:SUCCESS`,
        task_id: taskId,
        generation: task.generation,
        task_state: 'SUCCESS',
        succeeded: false,
        message: 'Message emailed for 199 of 200 recipients',
        task_progress: { attempted: 200, succeeded: 199, failed: 1 },
        subtasks: { total: 2, succeeded: 2, failed: 0, remaining: 0 },
        ended_at: expect.any(String),
      },
    });
    // The replay published the event again, with the same event_id; the file kept it once.
    expect(deliveries.length).toBeGreaterThanOrEqual(2);
    expect(new Set(deliveries.map((delivery) => delivery.event.detail.event_id))).toEqual(
      new Set([`${taskId}:${task.generation}:SUCCESS`]),
    );
    expect(deliveries.map((delivery) => delivery.repeat)).toEqual([
      false,
      ...deliveries.slice(1).map(() => true),
    ]);
  });
});

describe('a subtask timeout', () => {
  it('ends the subtasks not heard from for that long FAILURE (TIMED_OUT), and then the task', async () => {
    const taskId = uniqueName('task');
    const startedAt = Date.now();
    await initialize(stack, taskId, ['a', 'b', 'c'], {
      subtask_timeout_seconds: 60,
      tolerated_failure_percentage: 0,
    });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 10, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'b', { succeeded: 5, failed: 0, state: 'PROGRESS' }),
    ]);
    await settled(stack);

    const early = await stack.sweepNow(startedAt + 30_000);
    const running = await progressOf(stack, taskId);
    const late = await stack.sweepNow(startedAt + 3 * MINUTE_MS);
    await stack.caughtUp();
    const ended = await progressOf(stack, taskId);
    const timedOut = await subtasksIn(taskId, 'FAILURE');

    expect(early.subtasksEnded).toBe(0);
    expect(running).toMatchObject({ task_state: 'PROGRESS', in_flight: { attempted: 5 } });
    expect(late.subtasksEnded).toBe(2);
    expect(ended).toMatchObject({
      task_state: 'FAILURE',
      succeeded: false,
      // A timed-out subtask keeps the counts it reported: b's 5 items are now in the task's totals.
      task_progress: { attempted: 15, succeeded: 15, failed: 0 },
      subtasks: { total: 3, succeeded: 1, failed: 2, remaining: 0 },
      message: 'Message emailed for 15 of 15 recipients (out of 300) (2 of 3 subtasks failed)',
    });
    expect(timedOut.map((subtask) => [subtask.subtask_id, subtask.reason])).toEqual([
      ['b', 'TIMED_OUT'],
      ['c', 'TIMED_OUT'],
    ]);
    expect(
      (await eventsOf(taskId, 'Subtask Timed Out')).map((event) => event.detail.subtask_id).sort(),
    ).toEqual(['b', 'c']);
    expect((await eventsOf(taskId, 'Task Ended')).map((event) => event.detail.task_state)).toEqual([
      'FAILURE',
    ]);
  });
});

describe('a deadline', () => {
  it('ends every subtask not ended by then FAILURE (TIMED_OUT), and the task with them', async () => {
    const taskId = uniqueName('task');
    const deadline = Date.now() + 2 * MINUTE_MS;
    await initialize(stack, taskId, ['a', 'b', 'c'], {
      deadline: new Date(deadline).toISOString(),
      tolerated_failure_percentage: 50,
    });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'b', { succeeded: 20, failed: 0, state: 'RETRY', retried_nomax: 1 }),
    ]);
    await settled(stack);

    const before = await stack.sweepNow(deadline - MINUTE_MS);
    const after = await stack.sweepNow(deadline + MINUTE_MS);
    await stack.caughtUp();
    const ended = await progressOf(stack, taskId);

    expect(before.subtasksEnded).toBe(0);
    expect(after.subtasksEnded).toBe(2);
    // Two of three subtasks failed: more than the 50% tolerated.
    expect(ended).toMatchObject({
      task_state: 'FAILURE',
      subtasks: { total: 3, succeeded: 1, failed: 2, remaining: 0 },
      task_progress: { attempted: 120, succeeded: 120 },
    });
    expect((await subtasksIn(taskId, 'FAILURE')).map((subtask) => subtask.reason)).toEqual([
      'TIMED_OUT',
      'TIMED_OUT',
    ]);
    expect(await eventsOf(taskId, 'Subtask Timed Out')).toHaveLength(2);
    expect(await eventsOf(taskId, 'Task Ended')).toHaveLength(1);
  });
});

describe('POST /tasks/{task_id}/cancel', () => {
  it('shows cancel_requested at once, ends the task CANCELED, and late statuses change nothing', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['a', 'b', 'c', 'd']);
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'b', { succeeded: 40, failed: 2, state: 'PROGRESS' }),
    ]);
    await settled(stack);

    const cancel = await http(`${stack.httpUrl}/tasks/${taskId}/cancel`, { method: 'POST' });
    const atOnce = await progressOf(stack, taskId);
    const sweep = await stack.sweepNow();
    await stack.caughtUp();
    const canceled = await progressOf(stack, taskId);
    // The workers did not hear of it in time: their statuses arrive after the subtasks were revoked.
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'b', { succeeded: 98, failed: 2, state: 'SUCCESS' }),
      wireMessage(taskId, 'c', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'd', { succeeded: 10, failed: 0, state: 'PROGRESS' }),
    ]);
    await settled(stack);
    const afterLateStatuses = await progressOf(stack, taskId);
    const again = await http(`${stack.httpUrl}/tasks/${taskId}/cancel`, { method: 'POST' });
    const revoked = await subtasksIn(taskId, 'REVOKED');

    expect(cancel.status).toBe(202);
    expect(cancel.json).toMatchObject({ task_state: 'PROGRESS', cancel_requested: true });
    expect(atOnce).toMatchObject({ task_state: 'PROGRESS', in_progress: true, cancel_requested: true });
    expect(sweep.subtasksEnded).toBe(3);
    expect(canceled).toMatchObject({
      task_state: 'CANCELED',
      in_progress: false,
      succeeded: false,
      cancel_requested: true,
      task_progress: { attempted: 142, succeeded: 140, failed: 2 },
      subtasks: { total: 4, succeeded: 1, failed: 3, remaining: 0 },
      message: expect.stringMatching(/^Canceled: emailed 140 of 142 \(out of 400\)/),
    });
    expect(afterLateStatuses).toEqual(canceled);
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ error: 'Conflict', message: expect.stringContaining('CANCELED') });
    expect(revoked.map((subtask) => [subtask.subtask_id, subtask.reason])).toEqual([
      ['b', 'CANCELED'],
      ['c', 'CANCELED'],
      ['d', 'CANCELED'],
    ]);
    expect((await eventsOf(taskId, 'Task Ended')).map((event) => event.detail.task_state)).toEqual([
      'CANCELED',
    ]);
  });

  it('answers 404 for a task that does not exist', async () => {
    const answer = await http(`${stack.httpUrl}/tasks/never-created/cancel`, { method: 'POST' });

    expect(answer.status).toBe(404);
  });
});

describe('the local stack', () => {
  it('reported no errors while serving the tests above', () => {
    expect(stack.errorLines()).toEqual([]);
  });
});
