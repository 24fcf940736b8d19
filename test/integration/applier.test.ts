/**
 * The applier on DynamoDB Local and a real dead-letter queue (fauxqs): `applyBatch` and its Lambda edge,
 * `createApplierHandler`. The applier writes subtask items only; the task's totals come from the fold, run here
 * as a recount (`reconcileTask`) where a test looks at them.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { applyBatch, type QueueRecord } from '../../lambdas/applier/apply-batch';
import { createApplierHandler } from '../../lambdas/applier/sqs-batch-handler';
import { documentClient } from '../../lambdas/aws-clients';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import type { Log } from '../../lambdas/log';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { STATUS_QUEUE } from '../../lambdas/service-settings';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { taskKey } from '../../lambdas/store/task-items';
import { type ReadOptions, TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { capturingLog, SILENT_LOG } from '../support/applier-harness';
import {
  type ApplierFixture,
  dynamoEndpoint,
  newApplierFixture,
  receiveAll,
  uniqueName,
} from '../support/aws';
import {
  initializeRequest,
  lambdaContext,
  messageBody,
  queueRecord,
  sqsEvent,
  sqsRecord,
  status,
  T0,
  terminal,
} from '../support/factories';

let fixture: ApplierFixture;

beforeAll(async () => {
  fixture = await newApplierFixture();
});

function handlerFor(store: TaskStore = fixture.table.store) {
  return createApplierHandler({
    store,
    deadLetters: fixture.deadLetters,
    receiveLimit: STATUS_QUEUE.receiveLimit,
    logger: new Logger({ serviceName: 'test' }),
    metrics: new Metrics({ namespace: 'Test' }),
  });
}

function deps(log: Log = SILENT_LOG, store: TaskStore = fixture.table.store) {
  return { store, deadLetters: fixture.deadLetters, log, receiveLimit: STATUS_QUEUE.receiveLimit };
}

async function newTask(subtasks: number | readonly string[] = 3): Promise<string> {
  const taskId = uniqueName('task');
  await fixture.table.store.initialize(initializeRequest(taskId, subtasks), T0);
  return taskId;
}

async function task(taskId: string): Promise<TaskRecord> {
  const found = await fixture.table.store.getTask(taskId);
  if (found === undefined) throw new Error(`no task ${taskId}`);
  return found;
}

async function subtask(taskId: string, subtaskId: string): Promise<SubtaskRecord | undefined> {
  return (await fixture.table.store.getSubtasks(await task(taskId), [subtaskId])).get(subtaskId);
}

/** The task once the fold has counted what was applied. */
async function folded(taskId: string): Promise<TaskRecord> {
  await reconcileTask(fixture.table.store, taskId, Date.now);
  return task(taskId);
}

/** The dead letters among `bodies`; waits for all of them, or a couple of seconds more to show some are absent. */
async function deadLettersFor(bodies: readonly string[]) {
  const wanted = new Set(bodies);
  const { client, deadLetterQueueUrl } = fixture.queues;
  const messages = await receiveAll(client, deadLetterQueueUrl, bodies.length, 2);
  return messages.filter((message) => wanted.has(message.Body ?? ''));
}

describe('applying statuses', () => {
  it('applies a message in exactly the reference format, entry_id as an integer or a string', async () => {
    const numericTaskId = String(Date.now());
    await fixture.table.store.initialize(initializeRequest(numericTaskId, ['7f0c-a']), T0);
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
    expect((await subtask(numericTaskId, '7f0c-a'))?.status).toEqual(reference.new_subtask_status);
    expect(await folded(numericTaskId)).toMatchObject({
      task_state: 'SUCCESS',
      task_output: { attempted: 100, succeeded: 98, failed: 2, skipped: 3 },
    });
    expect((await folded(stringTaskId)).task_output).toMatchObject({ succeeded: 98, failed: 2 });
  });

  it('writes a subtask once when the same message is delivered three times', async () => {
    const taskId = await newTask(2);
    const body = messageBody(taskId, terminal('sub-00000', { succeeded: 90, failed: 10 }));

    const first = await applyBatch([queueRecord(body)], deps());
    const again = await applyBatch([queueRecord(body, 2), queueRecord(body, 2)], deps());

    expect(first.summary).toMatchObject({ applied: 1, writes: 1 });
    expect(again.summary).toMatchObject({ applied: 0, duplicate: 2, writes: 0 });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 1, status: { state: 'SUCCESS' } });
    expect(await folded(taskId)).toMatchObject({
      task_output: { attempted: 100, succeeded: 90, failed: 10 },
      subtasks: { total: 2, succeeded: 1, failed: 0 },
    });
  });

  it('writes several statuses of one subtask in one batch as one write, judged in order', async () => {
    const taskId = await newTask(1);
    const bodies = [
      status('sub-00000', { succeeded: 1, state: 'PROGRESS' }),
      status('sub-00000', { succeeded: 5, state: 'PROGRESS' }),
      status('sub-00000', { succeeded: 3, state: 'PROGRESS' }),
    ].map((s) => queueRecord(messageBody(taskId, s)));

    const { summary } = await applyBatch(bodies, deps());

    expect(summary).toMatchObject({ applied: 2, stale: 1, writes: 1, conflicts: 0 });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 1, status: { succeeded: 5 } });
  });

  it('retries a write that lost to a concurrent writer of the same subtask, re-judging it', async () => {
    const taskId = await newTask(1);
    let raced = false;
    class RacedStore extends TaskStore {
      override async writeSubtask(read: TaskRecord, next: SubtaskRecord, expectedVersion: number) {
        if (!raced) {
          raced = true;
          // Another applier's batch writes the same subtask between this one's read and its write.
          await applyToTask(fixture.table.store, taskId, [
            { subtaskId: 'sub-00000', status: status('sub-00000', { succeeded: 2, state: 'PROGRESS' }) },
          ]);
        }
        return super.writeSubtask(read, next, expectedVersion);
      }
    }
    const store = new RacedStore(documentClient(fixture.table.client), fixture.table.tableName);
    const body = messageBody(taskId, terminal('sub-00000', { succeeded: 8 }));

    const { summary, retry } = await applyBatch([queueRecord(body)], deps(SILENT_LOG, store));

    expect(retry).toEqual([]);
    expect(summary).toMatchObject({ applied: 1, conflicts: 1, writes: 1 });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({
      version: 2,
      status: { succeeded: 8, state: 'SUCCESS' },
    });
  });
});

describe('what cannot be applied', () => {
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

    const response = await handlerFor()(
      sqsEvent([...Object.values(poison), good[0] ?? '', good[1] ?? '']),
      lambdaContext(),
    );

    expect(response.batchItemFailures).toEqual([]);
    const letters = await deadLettersFor(Object.values(poison));
    const reasons = new Map(letters.map((m) => [m.Body, m.MessageAttributes?.error_code?.StringValue]));
    expect(
      Object.fromEntries(Object.entries(poison).map(([code, body]) => [code, reasons.get(body)])),
    ).toEqual(Object.fromEntries(Object.keys(poison).map((code) => [code, code])));
    expect(letters.every((m) => (m.MessageAttributes?.error_message?.StringValue ?? '').length > 0)).toBe(
      true,
    );
    expect(await folded(taskId)).toMatchObject({
      subtasks: { total: 3, succeeded: 2, failed: 0 },
      task_output: { attempted: 200, succeeded: 150, failed: 50 },
    });
  });

  it.each([
    ['an unknown task', 'UNKNOWN_TASK', false],
    ['a task not ready yet', 'TASK_NOT_READY', true],
  ])('retries a status for %s, then dead-letters it %s on the last delivery', async (_, code, initialize) => {
    const taskId = uniqueName('not-yet');
    if (initialize) {
      await fixture.table.store.initialize(initializeRequest(taskId, 1), T0, { mayContinue: () => false });
    }
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = handlerFor();

    const early = await handler(sqsEvent([body], 1), lambdaContext());
    const beforeLast = await handler(sqsEvent([body], STATUS_QUEUE.receiveLimit - 1), lambdaContext());
    const last = await handler(sqsEvent([body], STATUS_QUEUE.receiveLimit), lambdaContext());

    expect(early.batchItemFailures).toHaveLength(1);
    expect(beforeLast.batchItemFailures).toHaveLength(1);
    expect(last.batchItemFailures).toEqual([]);
    const letters = await deadLettersFor([body]);
    expect(letters.map((letter) => letter.MessageAttributes?.error_code?.StringValue)).toEqual([code]);
  });

  it('applies a status whose task was initialized between two deliveries', async () => {
    const taskId = uniqueName('late');
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = handlerFor();
    const first = await handler(sqsEvent([body], 1), lambdaContext());

    await fixture.table.store.initialize(initializeRequest(taskId, 1), T0);
    const second = await handler(sqsEvent([body], 2), lambdaContext());

    expect(first.batchItemFailures).toHaveLength(1);
    expect(second.batchItemFailures).toEqual([]);
    expect((await folded(taskId)).task_state).toBe('SUCCESS');
  });

  it('applies a status whose task is initialized again between the task read and the subtask read', async () => {
    const taskId = await newTask(1);
    const before = (await task(taskId)).generation;
    let reinitialized = false;
    class Reinitializing extends TaskStore {
      override async getSubtasks(read: TaskRecord, ids: readonly string[], options?: ReadOptions) {
        if (!reinitialized) {
          reinitialized = true;
          await documentClient(fixture.table.client).send(
            new DeleteCommand({ TableName: fixture.table.tableName, Key: taskKey(taskId) }),
          );
          await fixture.table.store.initialize(initializeRequest(taskId, 1), T0);
        }
        return super.getSubtasks(read, ids, options);
      }
    }
    const store = new Reinitializing(documentClient(fixture.table.client), fixture.table.tableName);
    const body = messageBody(taskId, terminal('sub-00000', { succeeded: 4 }));

    const result = await applyBatch([queueRecord(body, 1)], deps(SILENT_LOG, store));

    const current = await task(taskId);
    expect(reinitialized).toBe(true);
    expect(current.generation).not.toBe(before);
    expect(result).toMatchObject({ retry: [], summary: { applied: 1, deadLettered: 0 } });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({
      generation: current.generation,
      status: { succeeded: 4, state: 'SUCCESS' },
    });
  });

  it('dead-letters UNKNOWN_SUBTASK at once for a subtask the task never had', async () => {
    const taskId = await newTask(1);
    const body = messageBody(taskId, terminal('not-a-subtask'));

    const result = await applyBatch([queueRecord(body, 1)], deps());

    expect(result).toMatchObject({ retry: [], summary: { deadLettered: 1, applied: 0 } });
    const letters = await deadLettersFor([body]);
    expect(letters.map((letter) => letter.MessageAttributes?.error_code?.StringValue)).toEqual([
      'UNKNOWN_SUBTASK',
    ]);
  });

  it('dead-letters STALE_GENERATION a status that names a generation the task was initialized past', async () => {
    const taskId = await newTask(1);
    const old = (await task(taskId)).generation;
    await documentClient(fixture.table.client).send(
      new DeleteCommand({ TableName: fixture.table.tableName, Key: taskKey(taskId) }),
    );
    await fixture.table.store.initialize(initializeRequest(taskId, 1), T0);
    const current = (await task(taskId)).generation;
    const withGeneration = (generation: string, succeeded: number) =>
      JSON.stringify({
        ...JSON.parse(messageBody(taskId, terminal('sub-00000', { succeeded }))),
        generation,
      });
    const [stale, fresh] = [withGeneration(old, 1), withGeneration(current, 2)];

    const { summary } = await applyBatch([queueRecord(stale), queueRecord(fresh)], deps());

    expect(summary).toMatchObject({ deadLettered: 1, applied: 1 });
    const letters = await deadLettersFor([stale]);
    expect(letters.map((letter) => letter.MessageAttributes?.error_code?.StringValue)).toEqual([
      'STALE_GENERATION',
    ]);
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({
      generation: current,
      status: { succeeded: 2 },
    });
  });

  it('keeps the original message attributes on the dead-letter copy, from the SQS event through the handler', async () => {
    const taskId = await newTask(1);
    const body = messageBody(taskId, terminal('sub-99999'));
    const record: SQSRecord = {
      ...sqsRecord(body),
      messageAttributes: {
        trace_id: {
          dataType: 'String',
          stringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793',
          stringListValues: [],
          binaryListValues: [],
        },
        tenant: { dataType: 'Number', stringValue: '42', stringListValues: [], binaryListValues: [] },
        signature: {
          dataType: 'Binary',
          binaryValue: Buffer.from([0, 1, 2, 250, 255]).toString('base64'),
          stringListValues: [],
          binaryListValues: [],
        },
      },
    };

    const response = await handlerFor()({ Records: [record] }, lambdaContext());

    expect(response.batchItemFailures).toEqual([]);
    const [letter] = await deadLettersFor([body]);
    expect(letter?.MessageAttributes).toMatchObject({
      trace_id: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' },
      tenant: { DataType: 'Number', StringValue: '42' },
      signature: { DataType: 'Binary' },
      error_code: { DataType: 'String', StringValue: 'UNKNOWN_SUBTASK' },
      error_message: { DataType: 'String', StringValue: expect.stringContaining('sub-99999') },
    });
    expect([...(letter?.MessageAttributes?.signature?.BinaryValue ?? [])]).toEqual([0, 1, 2, 250, 255]);
  });

  it.each([
    ['duplicate', [terminal('sub-00000', { succeeded: 5 })], terminal('sub-00000', { succeeded: 5 })],
    [
      'stale',
      [status('sub-00000', { succeeded: 1, retried_withmax: 2, state: 'RETRY' })],
      terminal('sub-00000', { succeeded: 5 }),
    ],
  ])('logs a %s terminal status at warn, and changes nothing', async (kind, before, incoming) => {
    const taskId = await newTask(1);
    await applyBatch(
      before.map((s) => queueRecord(messageBody(taskId, s))),
      deps(),
    );
    const stored = await subtask(taskId, 'sub-00000');
    const { log, lines } = capturingLog();
    const record = queueRecord(messageBody(taskId, incoming));

    const { summary } = await applyBatch([record], deps(log));

    expect(summary).toMatchObject({ [kind]: 1, writes: 0 });
    expect(lines).toContainEqual({
      level: 'warn',
      message: `Terminal status ignored as ${kind}`,
      attributes: expect.objectContaining({ messageId: record.messageId, taskId, subtaskId: 'sub-00000' }),
    });
    expect(await subtask(taskId, 'sub-00000')).toEqual(stored);
  });
});

describe('eventually consistent reads', () => {
  /**
   * A store whose eventually consistent subtask reads answer what `stale` says, as a replica behind the
   * latest writes would; DynamoDB Local's own are always fresh. Consistent reads pass through.
   */
  function staleStore(stale: (fresh: Map<string, SubtaskRecord>) => Map<string, SubtaskRecord>) {
    const reads: boolean[] = [];
    class StaleReplica extends TaskStore {
      override async getSubtasks(read: TaskRecord, ids: readonly string[], options?: ReadOptions) {
        const consistent = options?.consistent ?? true;
        reads.push(consistent);
        const found = await super.getSubtasks(read, ids, options);
        return consistent ? found : stale(found);
      }
    }
    return { store: new StaleReplica(documentClient(fixture.table.client), fixture.table.tableName), reads };
  }

  it('judges on an eventually consistent read; a stale version fails its condition and is applied after a consistent re-read', async () => {
    const taskId = await newTask(1);
    const older = await subtask(taskId, 'sub-00000');
    await applyToTask(fixture.table.store, taskId, [
      { subtaskId: 'sub-00000', status: status('sub-00000', { succeeded: 1, state: 'PROGRESS' }) },
    ]);
    const { store, reads } = staleStore(() => new Map([['sub-00000', older as SubtaskRecord]]));

    const report = await applyToTask(store, taskId, [
      { subtaskId: 'sub-00000', status: status('sub-00000', { succeeded: 2, state: 'PROGRESS' }) },
    ]);

    expect(reads).toEqual([false, true]);
    expect(report).toMatchObject({ outcomes: [{ kind: 'applied' }], conflicts: 1, writes: 1 });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 2, status: { succeeded: 2 } });
  });

  it('never dead-letters a subtask a stale read missed: the task, then its subtasks, are read again consistently', async () => {
    const taskId = await newTask(1);
    const { store, reads } = staleStore(() => new Map());
    const body = messageBody(taskId, terminal('sub-00000'));

    const result = await applyBatch([queueRecord(body, 1)], deps(SILENT_LOG, store));

    expect(reads).toEqual([false, true]);
    expect(result).toMatchObject({ retry: [], summary: { applied: 1, deadLettered: 0 } });
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 1, status: { state: 'SUCCESS' } });
  });
});

describe('failures on the way', () => {
  it('reports throttled records for redelivery without applying or dead-lettering them', async () => {
    const taskId = await newTask(1);
    const throttledDb = documentClient(fixture.table.client);
    const mock = mockClient(throttledDb);
    mock
      .on(GetCommand)
      .rejects(new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }));
    const body = messageBody(taskId, terminal('sub-00000'));

    const response = await handlerFor(new TaskStore(throttledDb, fixture.table.tableName))(
      sqsEvent([body]),
      lambdaContext(),
    );
    mock.restore();

    expect(response.batchItemFailures).toHaveLength(1);
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 0, status: { state: 'QUEUING' } });
    expect(await deadLettersFor([body])).toEqual([]);
  });

  it('keeps records for redelivery when running out of Lambda time', async () => {
    const taskId = await newTask(1);
    const body = messageBody(taskId, status('sub-00000', { succeeded: 3, state: 'PROGRESS' }));

    const response = await handlerFor()(sqsEvent([body]), lambdaContext(500));

    expect(response.batchItemFailures).toHaveLength(1);
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 0 });
  });

  it('logs every dead-lettered message with its code', async () => {
    const { log, lines } = capturingLog();

    await applyBatch([queueRecord('not json')], deps(log));

    expect(lines).toContainEqual({
      level: 'error',
      message: 'Status message dead-lettered',
      attributes: expect.objectContaining({ errorCode: 'INVALID_JSON' }),
    });
    await deadLettersFor(['not json']);
  });

  it('leaves a message on the source queue when the dead-letter queue refuses it', async () => {
    const { client, deadLetterQueueUrl } = fixture.queues;
    const unreachable = new DeadLetterQueue(client, `${deadLetterQueueUrl}-missing`);
    const record: QueueRecord = queueRecord('still not json');

    const result = await applyBatch([record], { ...deps(), deadLetters: unreachable });

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
      TABLE_NAME: fixture.table.tableName,
      DEAD_LETTER_QUEUE_URL: fixture.queues.deadLetterQueueUrl,
      RECEIVE_LIMIT: '5',
      AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint(),
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
    expect(await subtask(taskId, 'sub-00000')).toMatchObject({ version: 1, status: { state: 'SUCCESS' } });
    expect(await deadLettersFor(['poison'])).toHaveLength(1);
  });
});
