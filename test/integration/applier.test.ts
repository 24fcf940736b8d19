import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { applyBatch, type Log } from '../../lambdas/applier/apply-batch';
import { createSqsBatchHandler } from '../../lambdas/applier/sqs-batch-handler';
import { documentClient } from '../../lambdas/aws-clients';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { STATUS_QUEUE } from '../../lambdas/service-settings';
import { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import {
  newStatusQueues,
  newTaskTable,
  receiveAll,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import {
  initializeRequest,
  lambdaContext,
  messageBody,
  queueRecord,
  sqsEvent,
  status,
  T0,
  terminal,
} from '../support/factories';

let table: TestTable;
let queues: TestQueues;
let deadLetters: DeadLetterQueue;

beforeAll(async () => {
  [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  deadLetters = new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl);
});

function handlerFor(store: TaskStore = table.store) {
  return createSqsBatchHandler({
    store,
    deadLetters,
    receiveLimit: STATUS_QUEUE.receiveLimit,
    logger: new Logger({ serviceName: 'test' }),
    metrics: new Metrics({ namespace: 'Test' }),
  });
}

async function newTask(subtasks = 3): Promise<string> {
  const taskId = uniqueName('task');
  await table.store.initialize(initializeRequest(taskId, subtasks), T0);
  return taskId;
}

/** The dead letters among `bodies`; waits for all of them, or a couple of seconds more to show some are absent. */
async function deadLettersFor(bodies: readonly string[]) {
  const wanted = new Set(bodies);
  const messages = await receiveAll(queues.client, queues.deadLetterQueueUrl, bodies.length, 2);
  return messages.filter((message) => wanted.has(message.Body ?? ''));
}

describe('applier handler', () => {
  it('applies a message in exactly the reference format, entry_id as an integer or a string', async () => {
    const numericTaskId = String(Date.now());
    await table.store.initialize(initializeRequest(numericTaskId, ['7f0c-a']), T0);
    const stringTaskId = await newTask(1);
    const reference = {
      entry_id: Number(numericTaskId),
      current_task_id: '7f0c-a',
      new_subtask_status: {
        task_id: '7f0c-a',
        attempted: 100,
        succeeded: 98,
        failed: 2,
        skipped: 3,
        retried_nomax: 0,
        retried_withmax: 1,
        state: 'SUCCESS',
      },
    };

    const response = await handlerFor()(
      sqsEvent([
        JSON.stringify(reference),
        messageBody(stringTaskId, terminal('sub-00000', { succeeded: 98, failed: 2 })),
      ]),
      lambdaContext(),
    );

    expect(response.batchItemFailures).toEqual([]);
    const numeric = await table.store.getTask(numericTaskId);
    expect(numeric?.task_output).toMatchObject({ attempted: 100, succeeded: 98, failed: 2, skipped: 3 });
    expect(numeric?.task_state).toBe('SUCCESS');
    expect((await table.store.getTask(stringTaskId))?.task_output).toMatchObject({
      succeeded: 98,
      failed: 2,
    });
  });

  it('changes the counts once when the same message is delivered three times', async () => {
    const taskId = await newTask(2);
    const body = messageBody(taskId, terminal('sub-00000', { succeeded: 90, failed: 10 }));
    const handler = handlerFor();

    await handler(sqsEvent([body]), lambdaContext());
    await handler(sqsEvent([body, body]), lambdaContext());

    const task = await table.store.getTask(taskId);
    expect(task?.task_output).toMatchObject({ attempted: 100, succeeded: 90, failed: 10 });
    expect(task?.subtasks).toEqual({ total: 2, succeeded: 1, failed: 0 });
    expect(task?.version).toBe(2);
  });

  it('dead-letters poison messages with their reason and applies the rest of the batch', async () => {
    const taskId = await newTask(3);
    const good = [terminal('sub-00000'), terminal('sub-00001', { succeeded: 50, failed: 50 })].map((s) =>
      messageBody(taskId, s),
    );
    const poison: Record<string, string> = {
      INVALID_JSON: '{"entry_id": ',
      INVALID_TYPE: JSON.stringify({
        entry_id: taskId,
        current_task_id: 'sub-00002',
        new_subtask_status: 'done',
      }),
      INVALID_COUNT: messageBody(taskId, { ...terminal('sub-00002'), succeeded: -1, attempted: -1 }),
      COUNTS_MISMATCH: messageBody(taskId, { ...terminal('sub-00002'), attempted: 7 }),
      UNKNOWN_SUBTASK: messageBody(taskId, terminal('sub-99999')),
    };
    const fractional = messageBody(taskId, { ...terminal('sub-00002'), skipped: 1.5 });

    const response = await handlerFor()(
      sqsEvent([...Object.values(poison), good[0] ?? '', fractional, good[1] ?? '']),
      lambdaContext(),
    );

    expect(response.batchItemFailures).toEqual([]);
    const task = await table.store.getTask(taskId);
    expect(task?.subtasks).toEqual({ total: 3, succeeded: 2, failed: 0 });
    expect(task?.task_output).toMatchObject({ attempted: 200, succeeded: 150, failed: 50 });
    const letters = await deadLettersFor([...Object.values(poison), fractional]);
    const reasons = new Map(letters.map((m) => [m.Body, m.MessageAttributes?.error_code?.StringValue]));
    for (const [code, body] of Object.entries(poison)) expect(reasons.get(body)).toBe(code);
    expect(reasons.get(fractional)).toBe('INVALID_COUNT');
    expect(letters.every((m) => (m.MessageAttributes?.error_message?.StringValue ?? '').length > 0)).toBe(
      true,
    );
  });

  it('retries a status for a task not initialized yet, then dead-letters it on the last delivery', async () => {
    const taskId = uniqueName('not-yet');
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = handlerFor();

    const early = await handler(sqsEvent([body], 1), lambdaContext());
    const last = await handler(sqsEvent([body], STATUS_QUEUE.receiveLimit), lambdaContext());

    expect(early.batchItemFailures).toHaveLength(1);
    expect(last.batchItemFailures).toEqual([]);
    const [letter] = await deadLettersFor([body]);
    expect(letter?.MessageAttributes?.error_code?.StringValue).toBe('UNKNOWN_TASK');
  });

  it('applies a status whose task was initialized between two deliveries', async () => {
    const taskId = uniqueName('late');
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = handlerFor();
    const first = await handler(sqsEvent([body], 1), lambdaContext());

    await table.store.initialize(initializeRequest(taskId, 1), T0);
    const second = await handler(sqsEvent([body], 2), lambdaContext());

    expect(first.batchItemFailures).toHaveLength(1);
    expect(second.batchItemFailures).toEqual([]);
    expect((await table.store.getTask(taskId))?.task_state).toBe('SUCCESS');
  });

  it('reports throttled records for redelivery without applying or dead-lettering them', async () => {
    const taskId = await newTask(1);
    const throttledDb = documentClient(table.client);
    const mock = mockClient(throttledDb);
    mock
      .on(GetCommand)
      .rejects(new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }));
    const body = messageBody(taskId, terminal('sub-00000'));

    const response = await handlerFor(new TaskStore(throttledDb, table.tableName))(
      sqsEvent([body]),
      lambdaContext(),
    );
    mock.restore();

    expect(response.batchItemFailures.map((failure) => failure.itemIdentifier)).toHaveLength(1);
    expect((await table.store.getTask(taskId))?.version).toBe(1);
    expect(await deadLettersFor([body])).toEqual([]);
  });

  it('keeps records for redelivery when running out of Lambda time', async () => {
    const taskId = await newTask(1);
    const body = messageBody(taskId, status('sub-00000', { succeeded: 3, state: 'PROGRESS' }));

    const response = await handlerFor()(sqsEvent([body]), lambdaContext(500));

    expect(response.batchItemFailures).toHaveLength(1);
    expect((await table.store.getTask(taskId))?.version).toBe(1);
  });
});

describe('dead-lettering', () => {
  it('logs every dead-lettered message with its code', async () => {
    const lines: Array<{ message: string; attributes: Record<string, unknown> }> = [];
    const capture = (message: string, attributes: Record<string, unknown>) =>
      lines.push({ message, attributes });
    const log: Log = { info: capture, warn: capture, error: capture };

    await applyBatch([queueRecord('not json')], {
      store: table.store,
      deadLetters,
      log,
      receiveLimit: STATUS_QUEUE.receiveLimit,
    });

    expect(lines).toContainEqual({
      message: 'Status message dead-lettered',
      attributes: expect.objectContaining({ errorCode: 'INVALID_JSON' }),
    });
    await deadLettersFor(['not json']);
  });

  it('leaves a message on the source queue when the dead-letter queue refuses it', async () => {
    const unreachable = new DeadLetterQueue(queues.client, `${queues.deadLetterQueueUrl}-missing`);
    const record = queueRecord('still not json');

    const result = await applyBatch([record], {
      store: table.store,
      deadLetters: unreachable,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      receiveLimit: STATUS_QUEUE.receiveLimit,
    });

    expect(result.retry).toEqual([record.messageId]);
    expect(result.summary.deadLettered).toBe(0);
  });
});

describe('applier entry point', () => {
  const ENTRY = '../../lambdas/applier/handler';

  function configure(values: Record<string, string | undefined>) {
    for (const [name, value] of Object.entries(values)) vi.stubEnv(name, value);
    vi.resetModules();
  }

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('refuses to start without its configuration', async () => {
    configure({ TABLE_NAME: undefined, DEAD_LETTER_QUEUE_URL: 'not a url', RECEIVE_LIMIT: '5' });

    await expect(import(ENTRY)).rejects.toThrow(
      /TABLE_NAME.*DEAD_LETTER_QUEUE_URL|DEAD_LETTER_QUEUE_URL.*TABLE_NAME/s,
    );
  });

  it('finds its table, dead-letter queue and the emulators through the environment', async () => {
    const taskId = await newTask(1);
    configure({
      TABLE_NAME: table.tableName,
      DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
      RECEIVE_LIMIT: '5',
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
      AWS_ENDPOINT_URL_SQS: inject('sqsEndpoint'),
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    });

    const { handler } = await import(ENTRY);
    const response = await handler(
      sqsEvent([messageBody(taskId, terminal('sub-00000')), 'poison']),
      lambdaContext(),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect((await table.store.getTask(taskId))?.task_state).toBe('SUCCESS');
    expect(await deadLettersFor(['poison'])).toHaveLength(1);
  });
});
