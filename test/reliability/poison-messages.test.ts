/**
 * Poison and hostile input on the real path: every message goes through the SQS emulator to the Lambda edge,
 * mixed with good statuses for two tasks, each with its producer's own message attributes. Each bad one must
 * end in the dead-letter queue with its own reason and those attributes, without failing its batch and without
 * touching any task. A status with fields the service does not know is not poison: it applies, and is stored
 * without them.
 */

import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { documentClient } from '../../lambdas/aws-clients';
import { sleep } from '../../lambdas/core/backoff';
import { MAX_BODY_BYTES, MAX_COUNT } from '../../lambdas/core/status-message';
import { createSubtaskStatus, type SubtaskStatus, sameStatus } from '../../lambdas/core/subtask-status';
import type { TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { STATUS_QUEUE } from '../../lambdas/service-settings';
import { subtaskKey, taskKey } from '../../lambdas/store/task-items';
import {
  newStatusQueues,
  newTaskTable,
  receiveAll,
  sqsClient,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import { initializeRequest, lambdaContext, subtaskIds, T0, terminal } from '../support/factories';
import { roleSqsClient, roleStore } from '../support/role-gateways';
import { seededRandom, shuffle } from '../support/workload';
import {
  applierHandler,
  auditTasks,
  type Delivery,
  expectExact,
  queueDepth,
  reportFigures,
  SEED,
  shownTotals,
  sqsEventOf,
  startWorkloads,
  totalsOf,
  type Workloads,
} from './support';

interface Target {
  /** A task with real subtasks: a poison body built on it would change its counts if it were ever applied. */
  readonly taskId: string;
  readonly otherTaskId: string;
  readonly subtaskId: string;
  /** A task initialized, removed and initialized again: its generation now, and the one it had before. */
  readonly reinitializedTaskId: string;
  readonly generation: string;
  readonly oldGeneration: string;
}

interface Poison {
  readonly name: string;
  readonly code: string;
  readonly body: (target: Target) => string;
}

type Fields = Record<string, unknown>;

/** A terminal status of a real subtask, with counts no good message has. */
function status(target: Target, changes: Fields = {}): Fields {
  return { ...terminal(target.subtaskId, { succeeded: 9, failed: 1 }), ...changes };
}

function message(target: Target, changes: Fields = {}, statusChanges: Fields = {}): Fields {
  return {
    entry_id: target.taskId,
    current_task_id: target.subtaskId,
    new_subtask_status: status(target, statusChanges),
    ...changes,
  };
}

function without(fields: Fields, name: string): Fields {
  const { [name]: _removed, ...rest } = fields;
  return rest;
}

const json = (value: unknown): string => JSON.stringify(value);

/** Accepted rows write one subtask each of the re-initialized task; the two after them are kept for its poison. */
const reserved = (t: Target, index: 0 | 1): Target => ({
  ...t,
  taskId: t.reinitializedTaskId,
  subtaskId: subtaskIds(ACCEPTED.length + 2)[ACCEPTED.length + index] ?? '',
});

/** A message the service must apply although it carries what the service does not know. */
interface Accepted {
  readonly name: string;
  readonly body: (target: Target) => string;
  /** Counts of the status it must leave stored, beyond the target's `status()`. */
  readonly stored?: Fields;
}

const ACCEPTED: readonly Accepted[] = [
  { name: 'an extra top-level field', body: (t) => json(message(t, { priority: 'high' })) },
  {
    name: 'an extra status field (error details, as the reference foresees)',
    body: (t) =>
      json(message(t, {}, { error: { type: 'SMTPDataError', code: 554, detail: 'x'.repeat(200) } })),
  },
  {
    name: 'a __proto__ key at the top level naming another task',
    body: (t) => `{"__proto__":{"entry_id":"${t.otherTaskId}"},${json(message(t)).slice(1)}`,
  },
  {
    name: 'a __proto__ key in the status with a huge count',
    body: (t) =>
      json(message(t)).replace(
        '"new_subtask_status":{',
        '"new_subtask_status":{"__proto__":{"succeeded":1000000},',
      ),
  },
  {
    name: 'a constructor.prototype key',
    body: (t) => json(message(t, { constructor: { prototype: { polluted: true } } })),
  },
  {
    name: 'an extra field named like a stored attribute (version)',
    body: (t) => json(message(t, { version: 99 }, { generation: 'forged' })),
  },
  { name: 'the generation it was sent for', body: (t) => json(message(t, { generation: t.generation })) },
  {
    name: 'the largest count, 2^31 − 1',
    body: (t) => json(message(t, {}, { skipped: MAX_COUNT })),
    stored: { skipped: MAX_COUNT },
  },
];

/** A valid message with one count written as raw JSON text, which `JSON.stringify` could not produce. */
const withRawSkipped = (target: Target, raw: string): string =>
  json(message(target)).replace('"skipped":0', `"skipped":${raw}`);

/** A valid message padded with trailing whitespace (still valid JSON) to `bytes` bytes. */
function paddedTo(target: Target, bytes: number): string {
  const body = json(message(target));
  return body + ' '.repeat(bytes - Buffer.byteLength(body));
}

const POISON: readonly Poison[] = [
  // Not JSON
  { name: 'truncated JSON', code: 'INVALID_JSON', body: (t) => json(message(t)).slice(0, 40) },
  { name: 'whitespace only', code: 'INVALID_JSON', body: () => ' \n\t ' },
  {
    name: 'a byte-order mark before the JSON',
    code: 'INVALID_JSON',
    body: (t) => `\uFEFF${json(message(t))}`,
  },
  { name: 'a JavaScript literal', code: 'INVALID_JSON', body: (t) => `{entry_id: '${t.taskId}'}` },
  { name: 'NaN as a count', code: 'INVALID_JSON', body: (t) => withRawSkipped(t, 'NaN') },
  // JSON of the wrong shape
  { name: 'JSON null', code: 'INVALID_TYPE', body: () => 'null' },
  { name: 'an array of status messages', code: 'INVALID_TYPE', body: (t) => json([message(t)]) },
  { name: 'a status message encoded twice', code: 'INVALID_TYPE', body: (t) => json(json(message(t))) },
  { name: 'a bare number', code: 'INVALID_TYPE', body: () => '42' },
  {
    name: 'new_subtask_status as a string',
    code: 'INVALID_TYPE',
    body: (t) => json(message(t, { new_subtask_status: 'SUCCESS' })),
  },
  {
    name: 'new_subtask_status null',
    code: 'INVALID_TYPE',
    body: (t) => json(message(t, { new_subtask_status: null })),
  },
  {
    name: '8,000 nested arrays',
    code: 'INVALID_TYPE',
    body: () => `${'['.repeat(8_000)}${']'.repeat(8_000)}`,
  },
  // Missing fields
  {
    name: 'no current_task_id',
    code: 'MISSING_FIELD',
    body: (t) => json(without(message(t), 'current_task_id')),
  },
  {
    name: 'no new_subtask_status',
    code: 'MISSING_FIELD',
    body: (t) => json(without(message(t), 'new_subtask_status')),
  },
  {
    name: 'no skipped count',
    code: 'MISSING_FIELD',
    body: (t) => json(message(t, { new_subtask_status: without(status(t), 'skipped') })),
  },
  // Counts
  { name: 'a negative count', code: 'INVALID_COUNT', body: (t) => json(message(t, {}, { skipped: -1 })) },
  { name: 'a fractional count', code: 'INVALID_COUNT', body: (t) => json(message(t, {}, { skipped: 0.5 })) },
  { name: 'a count beyond 2^53', code: 'INVALID_COUNT', body: (t) => withRawSkipped(t, '9007199254740993') },
  { name: 'a count that parses to Infinity', code: 'INVALID_COUNT', body: (t) => withRawSkipped(t, '1e999') },
  { name: 'a count as a string', code: 'INVALID_COUNT', body: (t) => json(message(t, {}, { skipped: '3' })) },
  { name: 'a count null', code: 'INVALID_COUNT', body: (t) => json(message(t, {}, { skipped: null })) },
  // Counts are capped below 2^31, so that no sum over a task's subtasks can stop being an exact integer.
  {
    name: 'a count of 2^31',
    code: 'INVALID_COUNT',
    body: (t) => json(message(t, {}, { skipped: MAX_COUNT + 1 })),
  },
  {
    name: 'attempted != succeeded + failed',
    code: 'COUNTS_MISMATCH',
    body: (t) => json(message(t, {}, { attempted: 11 })),
  },
  // States
  {
    name: 'an unknown state name',
    code: 'UNKNOWN_STATE',
    body: (t) => json(message(t, {}, { state: 'DONE' })),
  },
  {
    name: 'a state in lower case',
    code: 'UNKNOWN_STATE',
    body: (t) => json(message(t, {}, { state: 'success' })),
  },
  { name: 'a state as a number', code: 'UNKNOWN_STATE', body: (t) => json(message(t, {}, { state: 3 })) },
  // Identifiers
  {
    name: 'an entry_id carrying a key separator',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: `${t.taskId}#SUB#x` })),
  },
  {
    name: 'an entry_id with ../',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: `../${t.taskId}` })),
  },
  {
    name: 'a subtask id of 129 characters',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { current_task_id: 's'.repeat(129) }, { task_id: 's'.repeat(129) })),
  },
  {
    name: 'an entry_id with a Cyrillic look-alike letter',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: `${t.taskId}\u0430` })),
  },
  {
    name: 'an entry_id with a newline (log injection)',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: `${t.taskId}\nlevel=ERROR` })),
  },
  { name: 'an empty entry_id', code: 'INVALID_ID', body: (t) => json(message(t, { entry_id: '' })) },
  {
    name: 'a negative integer entry_id',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: -1 })),
  },
  { name: 'a fractional entry_id', code: 'INVALID_ID', body: (t) => json(message(t, { entry_id: 1.5 })) },
  {
    name: 'an integer entry_id beyond 2^53',
    code: 'INVALID_ID',
    body: (t) => json(message(t)).replace(`"entry_id":"${t.taskId}"`, '"entry_id":9007199254740993'),
  },
  {
    name: 'an entry_id object (query injection)',
    code: 'INVALID_ID',
    body: (t) => json(message(t, { entry_id: { $ne: null } })),
  },
  {
    name: 'a status of another subtask than current_task_id',
    code: 'SUBTASK_ID_MISMATCH',
    body: (t) => json(message(t, { current_task_id: 'sub-00001' })),
  },
  // Generations
  {
    name: 'a generation as a number',
    code: 'INVALID_TYPE',
    body: (t) => json(message(t, { generation: 7 })),
  },
  {
    name: 'the old generation of a task initialized again',
    code: 'STALE_GENERATION',
    body: (t) => json(message(reserved(t, 0), { generation: t.oldGeneration })),
  },
  {
    name: 'a generation the task never had',
    code: 'STALE_GENERATION',
    body: (t) => json(message(reserved(t, 1), { generation: 'gen-never' })),
  },
  // Size
  {
    name: 'a valid status padded past 16 KiB',
    code: 'BODY_TOO_LARGE',
    body: (t) => paddedTo(t, MAX_BODY_BYTES + 1),
  },
  { name: 'a 256 KiB body', code: 'BODY_TOO_LARGE', body: (t) => paddedTo(t, 256 * 1024) },
  // Well formed, but naming what does not exist
  {
    name: 'a subtask the task never had',
    code: 'UNKNOWN_SUBTASK',
    body: (t) => json(message(t, { current_task_id: 'sub-99999' }, { task_id: 'sub-99999' })),
  },
  {
    name: 'a subtask named __proto__',
    code: 'UNKNOWN_SUBTASK',
    body: (t) => json(message(t, { current_task_id: '__proto__' }, { task_id: '__proto__' })),
  },
  {
    name: 'a subtask named constructor, of the other task',
    code: 'UNKNOWN_SUBTASK',
    body: (t) =>
      json(
        message(t, { entry_id: t.otherTaskId, current_task_id: 'constructor' }, { task_id: 'constructor' }),
      ),
  },
  {
    name: 'a task never initialized',
    code: 'UNKNOWN_TASK',
    body: (t) => json(message(t, { entry_id: 'never-initialized' })),
  },
  {
    name: 'a task named __proto__',
    code: 'UNKNOWN_TASK',
    body: (t) => json(message(t, { entry_id: '__proto__' })),
  },
];

/** How the event source mapping treats a batch, with the visibility timeout cut to nothing. */
interface DrainOutcome {
  invocations: number;
  readonly errors: unknown[];
  /** Every delivery a batch response handed back for retry. */
  readonly handedBack: { readonly messageId: string; readonly receiveCount: number }[];
}

function deliveryOf(received: Message): Delivery & { readonly receiptHandle: string } {
  const { MessageId, Body, ReceiptHandle, Attributes, MessageAttributes } = received;
  if (MessageId === undefined || Body === undefined || ReceiptHandle === undefined)
    throw new Error('SQS returned a message without id, body or receipt handle');
  return {
    messageId: MessageId,
    body: Body,
    receiptHandle: ReceiptHandle,
    receiveCount: Number(Attributes?.ApproximateReceiveCount ?? 1),
    ...(MessageAttributes === undefined ? {} : { attributes: MessageAttributes }),
  };
}

/**
 * Stands in for Lambda's SQS event source mapping: receives batches of up to 10, invokes the handler, deletes
 * what it finished and makes what it handed back visible again at once (SQS would wait out the visibility
 * timeout). SQS itself counts the receives and applies the queue's redrive policy.
 */
async function drain(
  sqs: SQSClient,
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
): Promise<DrainOutcome> {
  const outcome: DrainOutcome = { invocations: 0, errors: [], handedBack: [] };
  for (let round = 0; round < 1_000; round++) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) {
      if ((await queueDepth(sqs, queueUrl)) === 0) return outcome;
      await sleep(20);
      continue;
    }
    const deliveries = Messages.map(deliveryOf);
    outcome.invocations += 1;
    let failed: Set<string>;
    try {
      const response = await handler(sqsEventOf(deliveries));
      failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
    } catch (error) {
      outcome.errors.push(error);
      failed = new Set(deliveries.map((delivery) => delivery.messageId));
    }
    const retry = deliveries.filter((delivery) => failed.has(delivery.messageId));
    const done = deliveries.filter((delivery) => !failed.has(delivery.messageId));
    outcome.handedBack.push(...retry.map(({ messageId, receiveCount }) => ({ messageId, receiveCount })));
    if (retry.length > 0)
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: retry.map((delivery, index) => ({
            Id: String(index),
            ReceiptHandle: delivery.receiptHandle,
            VisibilityTimeout: 0,
          })),
        }),
      );
    if (done.length > 0)
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((delivery, index) => ({
            Id: String(index),
            ReceiptHandle: delivery.receiptHandle,
          })),
        }),
      );
  }
  throw new Error('The queue did not drain in 1,000 receives');
}

/** A producer's own attributes on the `index`th message: a dead letter must keep them. */
function producerAttributes(index: number): Record<string, MessageAttributeValue> {
  return {
    trace_id: { DataType: 'String', StringValue: `trace-${index}` },
    tenant: { DataType: 'String', StringValue: 'acme' },
  };
}

/**
 * Sends each body on its own (a 1 MiB body fills a whole batch request), with the producer's attributes when
 * asked; returns the message ids in order.
 */
async function sendAll(
  sqs: SQSClient,
  queueUrl: string,
  bodies: readonly string[],
  withAttributes = false,
): Promise<string[]> {
  const ids: string[] = [];
  for (const [index, body] of bodies.entries()) {
    const { MessageId } = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        ...(withAttributes ? { MessageAttributes: producerAttributes(index) } : {}),
      }),
    );
    if (MessageId === undefined) throw new Error('SendMessage returned no id');
    ids.push(MessageId);
  }
  return ids;
}

/** The applier as deployed: the table and the dead-letter queue through its synthesized role. */
async function handlerFor(table: TestTable, queues: TestQueues) {
  const handler = applierHandler({
    store: await roleStore('applier', table, queues),
    deadLetters: new DeadLetterQueue(
      await roleSqsClient('applier', table, queues),
      queues.deadLetterQueueUrl,
    ),
    receiveLimit: STATUS_QUEUE.receiveLimit,
  });
  return (event: SQSEvent) => handler(event, lambdaContext());
}

describe('poison messages among good ones', () => {
  let table: TestTable;
  let queues: TestQueues;
  let good: Workloads;
  let bystander: TaskRecord | undefined;
  let target: Target;
  /** Per message id: the row it was built from (poison or accepted), its body and the index it was sent at. */
  let sent: Map<string, { readonly row?: Poison | Accepted; readonly body: string; readonly index: number }>;
  let outcome: DrainOutcome;
  /** Dead letters by the id of the message they came from. */
  let letters: Map<string, Message>;

  const idOf = (row: Poison | Accepted): string =>
    [...sent].find(([, message]) => message.row === row)?.[0] ?? '';
  /** The subtask of the re-initialized task each accepted row writes. */
  const acceptedTarget = (row: Accepted): Target => ({
    ...target,
    taskId: target.reinitializedTaskId,
    subtaskId: subtaskIds(ACCEPTED.length)[ACCEPTED.indexOf(row)] ?? '',
  });
  /** The status an accepted row must leave stored: the target's status with the row's own counts, nothing else. */
  const storedStatus = (row: Accepted): SubtaskStatus =>
    ({ ...status(acceptedTarget(row)), ...row.stored }) as unknown as SubtaskStatus;

  beforeAll(async () => {
    [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
    const random = seededRandom(SEED + 400);
    good = await startWorkloads(
      table.store,
      [4, 3],
      { duplicateShare: 0.3, minProgressSteps: 0, maxProgressSteps: 2 },
      random,
      'good',
    );
    const bystanderId = uniqueName('bystander');
    await table.store.initialize(initializeRequest(bystanderId, 2), T0);
    bystander = await table.store.getTask(bystanderId);
    // Initialized, removed (by TTL or an operator), initialized again: a new generation.
    const reinitialized = uniqueName('reinitialized');
    const request = initializeRequest(reinitialized, ACCEPTED.length + 2);
    const old = (await table.store.initialize(request, T0)).task;
    await documentClient(table.client).send(
      new DeleteCommand({ TableName: table.tableName, Key: taskKey(reinitialized) }),
    );
    const current = (await table.store.initialize(request, T0)).task;
    expect(current.generation).not.toBe(old.generation);

    const [a, b] = good.tasks;
    target = {
      taskId: a?.taskId ?? '',
      otherTaskId: b?.taskId ?? '',
      subtaskId: 'sub-00000',
      reinitializedTaskId: reinitialized,
      generation: current.generation,
      oldGeneration: old.generation,
    };
    const messages = shuffle(
      [
        ...POISON.map((row) => ({ row: row as Poison | Accepted | undefined, body: row.body(target) })),
        ...ACCEPTED.map((row) => ({ row, body: row.body(acceptedTarget(row)) })),
        ...good.bodies.map((body) => ({ row: undefined, body })),
      ],
      random,
    );

    const ids = await sendAll(
      queues.client,
      queues.queueUrl,
      messages.map(({ body }) => body),
      true,
    );
    sent = new Map(
      messages.map(({ row, body }, index) => [ids[index] ?? '', { body, index, ...(row ? { row } : {}) }]),
    );
    outcome = await drain(queues.client, queues.queueUrl, await handlerFor(table, queues));
    // Ask for one more than should come, to see that nothing else was dead-lettered.
    const received = await receiveAll(queues.client, queues.deadLetterQueueUrl, POISON.length + 1, 1);
    letters = new Map(
      received.map((letter) => [letter.MessageAttributes?.original_message_id?.StringValue ?? '', letter]),
    );
    reportFigures('poison', {
      seed: SEED,
      poisonKinds: POISON.length,
      codes: new Set(POISON.map((row) => row.code)).size,
      acceptedKinds: ACCEPTED.length,
      goodDeliveries: good.bodies.length,
      statusesSent: good.statusesSent,
      invocations: outcome.invocations,
      handedBack: outcome.handedBack.length,
      deadLetters: received.length,
    });
  }, 60_000);

  it.each(POISON)('$name → dead-lettered as $code, with its own attributes', (row) => {
    const id = idOf(row);
    const letter = letters.get(id);
    const index = sent.get(id)?.index ?? -1;

    expect(letter?.MessageAttributes?.error_code?.StringValue).toBe(row.code);
    expect(letter?.Body).toBe(sent.get(id)?.body);
    expect(letter?.MessageAttributes?.error_message?.StringValue?.length).toBeGreaterThan(0);
    expect(letter?.MessageAttributes?.trace_id?.StringValue).toBe(`trace-${index}`);
    expect(letter?.MessageAttributes?.tenant?.StringValue).toBe('acme');
  });

  it.each(ACCEPTED)('$name → applied, and stored without what the service does not know', async (row) => {
    const { taskId, subtaskId } = acceptedTarget(row);
    const { Item } = await documentClient(table.client).send(
      new GetCommand({
        TableName: table.tableName,
        Key: subtaskKey(taskId, 0, subtaskId),
        ConsistentRead: true,
      }),
    );

    expect(letters.has(idOf(row))).toBe(false);
    expect(Item?.generation).toBe(target.generation);
    expect(Item?.version).toBe(1);
    expect(sameStatus(Item?.status, storedStatus(row))).toBe(true);
    expect(Object.keys(Item?.status ?? {}).sort()).toEqual(Object.keys(createSubtaskStatus('x')).sort());
    expect(Object.keys(Item ?? {}).sort()).toEqual(
      ['generation', 'pk', 'sk', 'status', 'subtask_id', 'task_id', 'updated_at', 'version'].sort(),
    );
  });

  it('dead-letters each poison message once and nothing else', () => {
    expect(letters.size).toBe(POISON.length);
    expect([...letters.keys()].sort()).toEqual(POISON.map(idOf).sort());
  });

  it('answers every batch without throwing', () => {
    expect(outcome.errors).toEqual([]);
    expect(outcome.invocations).toBeGreaterThan(0);
  });

  it('hands back only the unknown-task messages, on each delivery before the last', () => {
    const unknownTask = POISON.filter((row) => row.code === 'UNKNOWN_TASK').map(idOf);
    const earlyDeliveries = Array.from({ length: STATUS_QUEUE.receiveLimit - 1 }, (_, index) => index + 1);

    expect(
      [...outcome.handedBack].sort(
        (x, y) => x.messageId.localeCompare(y.messageId) || x.receiveCount - y.receiveCount,
      ),
    ).toEqual(
      unknownTask
        .sort()
        .flatMap((messageId) => earlyDeliveries.map((receiveCount) => ({ messageId, receiveCount }))),
    );
  });

  it('applies the good statuses of both tasks exactly once', async () => {
    expectExact(await auditTasks(table.store, good.tasks, { reconcile: true }));
  });

  it('counts the accepted statuses, and nothing of the stale generations, in the re-initialized task', async () => {
    await reconcileTask(table.store, target.reinitializedTaskId, Date.now);
    const task = await table.store.getTask(target.reinitializedTaskId);
    const reservedIds = [reserved(target, 0).subtaskId, reserved(target, 1).subtaskId];

    expect(task === undefined ? undefined : shownTotals(task)).toEqual(
      totalsOf(ACCEPTED.length + 2, [
        ...ACCEPTED.map(storedStatus),
        ...reservedIds.map((id) => createSubtaskStatus(id)),
      ]),
    );
    const untouched = await table.store.getSubtasks(task as TaskRecord, reservedIds);
    expect([...untouched.values()].map((subtask) => [subtask.version, subtask.status.state])).toEqual([
      [0, 'QUEUING'],
      [0, 'QUEUING'],
    ]);
  });

  it('leaves a task no message names untouched', async () => {
    const task = await table.store.getTask(bystander?.task_id ?? '');

    expect(task).toEqual(bystander);
    expect(
      [...(await table.store.getSubtasks(task as TaskRecord, subtaskIds(2))).values()].map((s) => s.version),
    ).toEqual([0, 0]);
  });
});

/** A queue pair like the deployed one, whose dead-letter queue takes messages of at most `maxBytes`. */
async function queuesWithDeadLetterLimit(sqs: SQSClient, maxBytes: number) {
  const name = uniqueName('capped');
  const deadLetter = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${name}-dlq`,
      Attributes: { MaximumMessageSize: String(maxBytes) },
    }),
  );
  const deadLetterQueueUrl = deadLetter.QueueUrl ?? '';
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const source = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes?.QueueArn,
          maxReceiveCount: STATUS_QUEUE.receiveLimit,
        }),
      },
    }),
  );
  return { client: sqs, queueUrl: source.QueueUrl ?? '', deadLetterQueueUrl };
}

describe('a poison body too large to dead-letter with its reason', () => {
  const CASES = [
    { name: 'a 1 MiB body (the largest SQS takes)', bytes: 1024 * 1024, deadLetterMaxBytes: undefined },
    {
      name: 'a 256 KiB body, dead-letter queue capped at 256 KiB',
      bytes: 256 * 1024,
      deadLetterMaxBytes: 256 * 1024,
    },
  ] as const;

  it.each(CASES)(
    "$name stays on the source queue until SQS's own redrive parks it, without a reason",
    async ({ bytes, deadLetterMaxBytes }) => {
      const sqs = sqsClient();
      const table = await newTaskTable();
      const queues =
        deadLetterMaxBytes === undefined
          ? await newStatusQueues(sqs)
          : await queuesWithDeadLetterLimit(sqs, deadLetterMaxBytes);
      const huge = 'x'.repeat(bytes);
      const [hugeId, smallId] = await sendAll(sqs, queues.queueUrl, [huge, 'not json']);

      const outcome = await drain(sqs, queues.queueUrl, await handlerFor(table, queues));
      const received = await receiveAll(sqs, queues.deadLetterQueueUrl, 3, 1);

      // Refused by the dead-letter queue, it is handed back on every delivery; the small one is not held up.
      expect(outcome.handedBack).toEqual(
        Array.from({ length: STATUS_QUEUE.receiveLimit }, (_, index) => ({
          messageId: hugeId,
          receiveCount: index + 1,
        })),
      );
      const parked = received.find((letter) => letter.Body === huge);
      const small = received.find((letter) => letter.Body === 'not json');
      expect(received).toHaveLength(2);
      expect(parked).toBeDefined();
      expect(parked?.MessageAttributes?.error_code).toBeUndefined();
      expect(small?.MessageAttributes?.error_code?.StringValue).toBe('INVALID_JSON');
      expect(small?.MessageAttributes?.original_message_id?.StringValue).toBe(smallId);
    },
  );
});
