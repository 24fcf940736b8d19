/**
 * Faults DynamoDB Local and the SQS emulator never produce, injected at the SDK client: a mock replaces one
 * document client's `send`, passes most calls through to DynamoDB Local and fails the chosen ones with the
 * SDK's own exceptions. The mock sits above the SDK's retry middleware, so every injected fault reaches our
 * code, as one that outlasted the SDK's own retries would. The applier and the aggregator each meet them; the
 * audit counts what was lost and what was counted twice.
 */

import {
  ConditionalCheckFailedException,
  DeleteTableCommand,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  type BatchGetCommandOutput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldBatch } from '../../lambdas/aggregator/fold-batch';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { changesOf } from '../../lambdas/aggregator/stream-records';
import { applyBatch } from '../../lambdas/applier/apply-batch';
import { documentClient } from '../../lambdas/aws-clients';
import type { RetryPolicy } from '../../lambdas/core/backoff';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import type { TaskRecord } from '../../lambdas/core/task';
import { EventBridgePublisher } from '../../lambdas/events/event-publisher';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { EVENTS, STATUS_QUEUE } from '../../lambdas/service-settings';
import { subtaskKey, taskKey } from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { publishPending } from '../../lambdas/sweeper/publish-pending';
import { SILENT_LOG } from '../support/applier-harness';
import {
  newStatusQueues,
  newTaskTable,
  receiveAll,
  streamsClient,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import { initializeRequest, lambdaContext, messageBody, T0, terminal } from '../support/factories';
import { roleDynamoClient } from '../support/role-gateways';
import { seededRandom, shuffle } from '../support/workload';
import {
  allSubtasks,
  applierHandler,
  auditTasks,
  type Delivery,
  deliveriesOf,
  expectExact,
  failedDeliveries,
  foldGap,
  foldUntilDone,
  queueDepth,
  RecordingPublisher,
  reportFigures,
  runApplierPool,
  SEED,
  StreamTap,
  sqsEventOf,
  startWorkloads,
  type TaskWorkload,
} from './support';

const OPERATIONS = ['GetItem', 'BatchGetItem', 'PutItem', 'Query', 'UpdateItem'] as const;
type Operation = (typeof OPERATIONS)[number];
/** The calls the applier makes: the task, its subtasks, one conditional put per changed subtask. */
const APPLIER_OPERATIONS: readonly Operation[] = ['GetItem', 'BatchGetItem', 'PutItem'];
/** The calls a fold makes: the task, the shard's query, the counter put, the counters' query, the task update. */
const FOLD_OPERATIONS: readonly Operation[] = ['GetItem', 'Query', 'PutItem', 'UpdateItem'];

const FAULT_KINDS = [
  'Throttling',
  'ProvisionedThroughputExceeded',
  'InternalServerError',
  'NetworkReset',
  'UnprocessedKeys',
  'WriteAckLost',
  'WriteAckLostRetryConflict',
  'EndlessConflict',
] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

interface Fault {
  readonly operations: readonly Operation[];
  /** What one such fault does to the call it hits: absorbed in place, or the work is handed back for redelivery. */
  readonly once: 'absorbed' | 'retried';
  /** The `error_code` an applier's record carries into the dead-letter queue when the fault outlasts its last delivery. */
  readonly deadLetterCode: string;
}

const WRITES: readonly Operation[] = ['PutItem', 'UpdateItem'];

const FAULTS: Record<FaultKind, Fault> = {
  Throttling: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'ThrottlingException' },
  ProvisionedThroughputExceeded: {
    operations: OPERATIONS,
    once: 'retried',
    deadLetterCode: 'ProvisionedThroughputExceededException',
  },
  InternalServerError: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'InternalServerError' },
  // A socket error is a plain Node `Error` with a `code`: the applier names the dead letter by it.
  NetworkReset: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'ECONNRESET' },
  // A partial batch read: the rest is read again in place, until the attempts run out.
  UnprocessedKeys: { operations: ['BatchGetItem'], once: 'absorbed', deadLetterCode: 'STORE_UNAVAILABLE' },
  // The conditional write went through; only its answer was lost on the way back.
  WriteAckLost: { operations: WRITES, once: 'retried', deadLetterCode: 'ECONNRESET' },
  // The write went through, its answer was lost, and the SDK's own retry of it found its condition failed.
  WriteAckLostRetryConflict: { operations: WRITES, once: 'absorbed', deadLetterCode: 'RETRIES_EXHAUSTED' },
  // Another writer always gets there first: the optimistic lock retries until its attempts run out.
  EndlessConflict: { operations: ['PutItem'], once: 'absorbed', deadLetterCode: 'RETRIES_EXHAUSTED' },
};

/** Short conflict backoff, so that a conflict that never ends exhausts its attempts quickly. */
const FAST_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };

function networkReset(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
}

function conditionFailed(): Error {
  return new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: { httpStatusCode: 400 },
  });
}

/** The error DynamoDB (or the network) answers with. */
function faultError(kind: FaultKind): Error {
  const $metadata = { httpStatusCode: 400, attempts: 3 };
  switch (kind) {
    case 'ProvisionedThroughputExceeded':
      return new ProvisionedThroughputExceededException({
        message: 'The level of configured provisioned throughput for the table was exceeded',
        $metadata,
      });
    case 'Throttling':
      return new ThrottlingException({
        message: 'Throughput exceeds the current throughput limit',
        $metadata,
      });
    case 'InternalServerError':
      return new InternalServerError({
        message: 'Internal server error',
        $metadata: { httpStatusCode: 500 },
      });
    case 'NetworkReset':
    case 'WriteAckLost':
      return networkReset();
    case 'WriteAckLostRetryConflict':
    case 'EndlessConflict':
      return conditionFailed();
    case 'UnprocessedKeys':
      return new RangeError('UnprocessedKeys is a partial BatchGetItem answer, not an error');
  }
}

type FaultChoice = (operation: Operation, taskId: string) => FaultKind | undefined;

function noFaults(): Record<FaultKind, number> {
  return Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
}

/** Every fault this file injected, for its closing figures. */
const injectedInFile = noFaults();
let eventFaultsInFile = 0;

/** Decides which calls fail and counts the faults that actually happened. */
class FaultInjector {
  readonly injected = noFaults();
  constructor(readonly choose: FaultChoice) {}

  record(kind: FaultKind): void {
    this.injected[kind] += 1;
    injectedInFile[kind] += 1;
  }

  total(): number {
    return Object.values(this.injected).reduce((sum, count) => sum + count, 0);
  }

  private readonly inFlight = new Set<Promise<unknown>>();

  /** Follows a call passed through to DynamoDB Local until it has been answered. */
  track<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return call;
  }

  /**
   * Resolves once every call passed through has been answered. The applier sends a task's subtask writes at
   * once and gives up on the task at the first failure, so it may answer its batch while a sibling write is
   * still on its way; that write is conditioned on the version it read, so it lands or fails the same.
   */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

/** The task a key belongs to: `TASK#<id>` (task, counters) or `TASK#<id>#<shard>` (subtasks). */
function taskIdOf(pk: unknown): string {
  return typeof pk === 'string' && pk.startsWith('TASK#') ? (pk.slice(5).split('#')[0] ?? '') : '';
}

let table: TestTable;
/** Unmocked clients through each function's synthesized role: the faulty ones pass their calls to these. */
let roles: Record<'applier' | 'aggregator', DynamoDBDocumentClient>;
/** The operator's client, for what no function does (removing an item). */
let direct: DynamoDBDocumentClient;
let applierStore: TaskStore;
let aggregatorStore: TaskStore;
let tap: StreamTap;
/** Queues for tests that expect no dead letter at all. */
let fileQueues: TestQueues;

/** DynamoDB answers part of a batch read and hands the rest back as unprocessed; here, the second half. */
async function partialBatchGet(
  real: DynamoDBDocumentClient,
  input: BatchGetCommandInput,
): Promise<BatchGetCommandOutput> {
  const [tableName, request] = Object.entries(input.RequestItems ?? {})[0] ?? [];
  if (tableName === undefined || request === undefined) return real.send(new BatchGetCommand(input));
  const keys = request.Keys ?? [];
  const answered = keys.slice(0, Math.floor(keys.length / 2));
  const output: BatchGetCommandOutput =
    answered.length === 0
      ? { Responses: { [tableName]: [] }, $metadata: {} }
      : await direct.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { ...request, Keys: answered } } }),
        );
  return { ...output, UnprocessedKeys: { [tableName]: { ...request, Keys: keys.slice(answered.length) } } };
}

/**
 * A write whose fault is about its answer: it goes through first. Only a write that went through can lose its
 * answer, so one whose condition really failed stays what it is, and no fault is counted.
 */
async function faultyWrite(kind: FaultKind, injector: FaultInjector, send: () => Promise<unknown>) {
  if (kind === 'WriteAckLost' || kind === 'WriteAckLostRetryConflict') await send();
  injector.record(kind);
  throw faultError(kind);
}

/** A document client on DynamoDB Local that fails the calls `injector` chooses. */
function faultyClient(injector: FaultInjector, role: keyof typeof roles): DynamoDBDocumentClient {
  const real = roles[role];
  // Its own `send` is replaced: nothing goes out through this client but what the fakes pass to `real`.
  const faulty = documentClient(table.client);
  const mock = mockClient(faulty);
  mock.on(GetCommand).callsFake(async (input: GetCommandInput) => {
    const kind = injector.choose('GetItem', taskIdOf(input.Key?.pk));
    if (kind === undefined) return injector.track(real.send(new GetCommand(input)));
    injector.record(kind);
    throw faultError(kind);
  });
  mock.on(BatchGetCommand).callsFake(async (input: BatchGetCommandInput) => {
    const keys = Object.values(input.RequestItems ?? {})[0]?.Keys ?? [];
    const kind = injector.choose('BatchGetItem', taskIdOf(keys[0]?.pk));
    if (kind === undefined) return injector.track(real.send(new BatchGetCommand(input)));
    injector.record(kind);
    if (kind === 'UnprocessedKeys') return injector.track(partialBatchGet(real, input));
    throw faultError(kind);
  });
  mock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => {
    const kind = injector.choose('Query', taskIdOf(input.ExpressionAttributeValues?.[':pk']));
    if (kind === undefined) return injector.track(real.send(new QueryCommand(input)));
    injector.record(kind);
    throw faultError(kind);
  });
  mock.on(PutCommand).callsFake(async (input: PutCommandInput) => {
    const kind = injector.choose('PutItem', taskIdOf(input.Item?.pk));
    if (kind === undefined) return injector.track(real.send(new PutCommand(input)));
    return injector.track(faultyWrite(kind, injector, () => real.send(new PutCommand(input))));
  });
  mock.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => {
    const kind = injector.choose('UpdateItem', taskIdOf(input.Key?.pk));
    if (kind === undefined) return injector.track(real.send(new UpdateCommand(input)));
    return injector.track(faultyWrite(kind, injector, () => real.send(new UpdateCommand(input))));
  });
  return faulty;
}

/** A store on the faulty client; no jitter, so retries of unprocessed keys do not wait. */
function faultyStore(injector: FaultInjector, role: keyof typeof roles = 'applier'): TaskStore {
  return new TaskStore(faultyClient(injector, role), table.tableName, undefined, () => 0);
}

/** Fails the first call of `operation` for `taskId` with `kind`, once. */
function onceOn(kind: FaultKind, operation: Operation, taskId: string): FaultInjector {
  let fired = false;
  return new FaultInjector((op, id) => {
    if (fired || op !== operation || id !== taskId) return undefined;
    fired = true;
    return kind;
  });
}

beforeAll(async () => {
  table = await newTaskTable();
  direct = documentClient(table.client);
  // Applier and fold stores go through the functions' synthesized roles; the faults are injected in front.
  roles = {
    applier: documentClient(await roleDynamoClient('applier', table)),
    aggregator: documentClient(await roleDynamoClient('aggregator', table)),
  };
  applierStore = new TaskStore(roles.applier, table.tableName);
  aggregatorStore = new TaskStore(roles.aggregator, table.tableName);
  tap = new StreamTap(streamsClient(), table.streamArn);
  fileQueues = await newStatusQueues();
});

afterAll(() => {
  reportFigures('faults injected in all', {
    faults: Object.values(injectedInFile).reduce((sum, count) => sum + count, 0) + eventFaultsInFile,
    ...Object.fromEntries(FAULT_KINDS.map((kind) => [kind, injectedInFile[kind]])),
    PutEvents: eventFaultsInFile,
  });
});

/** A producer's own attribute, which a dead letter must keep. */
const TRACE = (messageId: string): Record<string, MessageAttributeValue> => ({
  trace_id: { DataType: 'String', StringValue: `trace-${messageId}` },
});

type TwoSubtaskTask = TaskWorkload & { readonly statuses: readonly SubtaskStatus[] };

/** Two tasks of two subtasks; each task's batch finishes both, with one duplicate. Faults hit task `a` only. */
async function twoTasks(label: string) {
  const tasks = await Promise.all(
    ['a', 'b'].map(async (name): Promise<TwoSubtaskTask> => {
      const taskId = uniqueName(`${label}-${name}`);
      const statuses = [
        terminal('sub-00000', { succeeded: 40, failed: 2 }),
        terminal('sub-00001', { succeeded: 7, skipped: 1 }),
      ];
      await table.store.initialize(initializeRequest(taskId, 2), T0);
      return { taskId, statuses, histories: new Map(statuses.map((s) => [s.task_id, [s]])) };
    }),
  );
  const [a, b] = tasks;
  if (a === undefined || b === undefined) throw new Error('two tasks expected');
  const deliveries = (task: TwoSubtaskTask, receiveCount: number): Delivery[] =>
    [...task.statuses, ...task.statuses.slice(0, 1)].map((s, index) => {
      const messageId = `${task.taskId}-${index}`;
      return { messageId, body: messageBody(task.taskId, s), receiveCount, attributes: TRACE(messageId) };
    });
  return { a, b, tasks, deliveries };
}

async function versionsOf(taskId: string): Promise<number[]> {
  const task = (await table.store.getTask(taskId)) as TaskRecord;
  return (await allSubtasks(table.store, task)).map((subtask) => subtask.version);
}

function handlerWith(store: TaskStore, queues: TestQueues) {
  return applierHandler({
    store,
    deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
    receiveLimit: STATUS_QUEUE.receiveLimit,
    applyOptions: { retry: FAST_RETRY },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The applier
// ---------------------------------------------------------------------------------------------------------------

/** Every (fault, call) pair the applier can meet once: the endless conflict only ever ends in a dead letter. */
const APPLIER_SITES = FAULT_KINDS.filter((kind) => kind !== 'EndlessConflict').flatMap((kind) =>
  FAULTS[kind].operations
    .filter((operation) => APPLIER_OPERATIONS.includes(operation))
    .map((operation) => ({ kind, operation })),
);

describe('the applier meets a DynamoDB fault on one delivery', () => {
  let queues: TestQueues;
  beforeAll(async () => {
    queues = await newStatusQueues();
  });

  it.each(APPLIER_SITES)(
    '$kind on $operation: only the hit task is handed back, and each subtask is written once',
    async ({ kind, operation }) => {
      const { a, b, tasks, deliveries } = await twoTasks(`${kind}-${operation}`);
      const injector = onceOn(kind, operation, a.taskId);
      const batch = [...deliveries(a, 1), ...deliveries(b, 1)];

      const first = failedDeliveries(
        batch,
        await handlerWith(faultyStore(injector), queues)(sqsEventOf(batch), lambdaContext()),
      );
      await injector.settled();
      const writtenAtFirst = (await versionsOf(a.taskId)).filter((version) => version > 0).length;
      const again = first.map((d) => ({ ...d, receiveCount: d.receiveCount + 1 }));
      const second = failedDeliveries(
        again,
        await handlerWith(faultyStore(injector), queues)(sqsEventOf(again), lambdaContext()),
      );

      expect(injector.injected[kind]).toBe(1);
      const retried = FAULTS[kind].once === 'retried';
      expect(first.map((d) => d.messageId)).toEqual(retried ? deliveries(a, 1).map((d) => d.messageId) : []);
      // A read fault stops the task before any write; a lost write fails alone, its sibling goes through;
      // a lost answer leaves both written.
      const written = !retried || kind === 'WriteAckLost' ? 2 : operation === 'PutItem' ? 1 : 0;
      expect(writtenAtFirst).toBe(written);
      expect(second).toEqual([]);
      // Whatever was redelivered, no subtask was written twice.
      expect([...(await versionsOf(a.taskId)), ...(await versionsOf(b.taskId))]).toEqual([1, 1, 1, 1]);
      expectExact(await auditTasks(table.store, tasks, { reconcile: true }));
      expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    },
  );
});

/** For each kind, the call it hits when it never goes away. */
const LASTING_APPLIER_SITES: readonly { readonly kind: FaultKind; readonly operation: Operation }[] = [
  { kind: 'ProvisionedThroughputExceeded', operation: 'GetItem' },
  { kind: 'Throttling', operation: 'BatchGetItem' },
  { kind: 'InternalServerError', operation: 'PutItem' },
  { kind: 'NetworkReset', operation: 'GetItem' },
  { kind: 'UnprocessedKeys', operation: 'BatchGetItem' },
  { kind: 'WriteAckLost', operation: 'PutItem' },
  { kind: 'EndlessConflict', operation: 'PutItem' },
];

describe('a DynamoDB fault that outlasts the last delivery', () => {
  it.each(LASTING_APPLIER_SITES)(
    '$kind on $operation: the hit records are dead-lettered with its name and their own attributes, the rest is applied',
    async ({ kind, operation }) => {
      const queues = await newStatusQueues();
      const { a, b, deliveries } = await twoTasks(`last-${kind}`);
      const injector = new FaultInjector((op, taskId) =>
        op === operation && taskId === a.taskId ? kind : undefined,
      );
      const batch = [
        ...deliveries(a, STATUS_QUEUE.receiveLimit),
        ...deliveries(b, STATUS_QUEUE.receiveLimit),
      ];

      const response = await handlerWith(faultyStore(injector), queues)(sqsEventOf(batch), lambdaContext());
      await injector.settled();
      const letters = await receiveAll(queues.client, queues.deadLetterQueueUrl, 3);

      expect(response.batchItemFailures).toEqual([]);
      expect(injector.injected[kind]).toBeGreaterThan(0);
      const reasons = new Map(
        letters.map((letter) => [
          letter.MessageAttributes?.original_message_id?.StringValue,
          [
            letter.MessageAttributes?.error_code?.StringValue,
            letter.MessageAttributes?.trace_id?.StringValue,
          ],
        ]),
      );
      expect(reasons).toEqual(
        new Map(
          deliveries(a, 1).map((d) => [d.messageId, [FAULTS[kind].deadLetterCode, `trace-${d.messageId}`]]),
        ),
      );
      expectExact(await auditTasks(table.store, [b], { reconcile: true }));
      // A lost answer leaves the statuses both applied and dead-lettered: redriving them adds nothing.
      const applied = kind === 'WriteAckLost';
      expect(await versionsOf(a.taskId)).toEqual(applied ? [1, 1] : [0, 0]);
      if (applied) {
        const redrive = letters.map((letter, index) => ({
          messageId: `redrive-${index}`,
          body: letter.Body ?? '',
          receiveCount: 1,
        }));
        const healthy = handlerWith(table.store, queues);
        expect((await healthy(sqsEventOf(redrive), lambdaContext())).batchItemFailures).toEqual([]);
        expectExact(await auditTasks(table.store, [a], { reconcile: true }));
        expect(await versionsOf(a.taskId)).toEqual([1, 1]);
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The aggregator
// ---------------------------------------------------------------------------------------------------------------

/** Two tasks whose statuses are all in, and the stream records that say so (and nothing older). */
async function twoAppliedTasks(label: string) {
  await tap.read();
  const fixture = await twoTasks(label);
  const { retry } = await applyBatch(
    [...fixture.deliveries(fixture.a, 1), ...fixture.deliveries(fixture.b, 1)],
    {
      store: applierStore,
      deadLetters: new DeadLetterQueue(fileQueues.client, fileQueues.deadLetterQueueUrl),
      log: SILENT_LOG,
      receiveLimit: STATUS_QUEUE.receiveLimit,
    },
  );
  expect(retry).toEqual([]);
  return { ...fixture, records: await tap.read() };
}

/** The sequence number of the first record that makes the fold recount a shard of `taskId`. */
function firstRecordOf(records: readonly DynamoDBRecord[], taskId: string): string | undefined {
  return records.find((record) =>
    changesOf(record).some((change) => change.kind === 'shard-changed' && change.taskId === taskId),
  )?.dynamodb?.SequenceNumber;
}

async function exactNow(taskId: string): Promise<boolean> {
  const { shown, expected } = await foldGap(table.store, taskId);
  return JSON.stringify(shown) === JSON.stringify(expected);
}

/** Each kind of fault at calls a fold makes: throttling at every one of them, the others at some. */
const FOLD_SITES = [
  ...FOLD_OPERATIONS.map((operation) => ({ kind: 'Throttling' as const, operation })),
  { kind: 'InternalServerError', operation: 'Query' },
  { kind: 'InternalServerError', operation: 'UpdateItem' },
  { kind: 'NetworkReset', operation: 'GetItem' },
  { kind: 'NetworkReset', operation: 'PutItem' },
  { kind: 'ProvisionedThroughputExceeded', operation: 'Query' },
  { kind: 'WriteAckLost', operation: 'PutItem' },
  { kind: 'WriteAckLost', operation: 'UpdateItem' },
  { kind: 'WriteAckLostRetryConflict', operation: 'PutItem' },
  { kind: 'WriteAckLostRetryConflict', operation: 'UpdateItem' },
] as const satisfies readonly { kind: FaultKind; operation: Operation }[];

describe('the aggregator meets a DynamoDB fault in a fold', () => {
  it.each(FOLD_SITES)(
    '$kind on $operation: the batch resumes from the hit task’s first record, and the totals end exact',
    async ({ kind, operation }) => {
      const { a, b, tasks, records } = await twoAppliedTasks(`fold-${kind}-${operation}`);
      const injector = onceOn(kind, operation, a.taskId);
      const store = faultyStore(injector, 'aggregator');
      const events = new RecordingPublisher();
      const before = await table.store.getTask(a.taskId);

      const first = await foldBatch(records, { store, events, log: SILENT_LOG, now: Date.now });
      const atFirst = await table.store.getTask(a.taskId);
      const bExactAtFirst = await exactNow(b.taskId);
      const deliveries =
        first.resumeFrom === undefined
          ? 1
          : 1 +
            (await foldUntilDone(
              records.slice(
                records.findIndex((record) => record.dynamodb?.SequenceNumber === first.resumeFrom),
              ),
              { store, events, now: Date.now },
            ));
      const after = await table.store.getTask(a.taskId);
      await foldUntilDone(await tap.read(), { store: aggregatorStore, events, now: Date.now });

      expect(injector.injected[kind]).toBe(1);
      if (FAULTS[kind].once === 'retried') {
        expect(first.resumeFrom).toBe(firstRecordOf(records, a.taskId));
        expect(first.summary.retried).toBe(1);
        expect(deliveries).toBe(2);
      } else {
        expect(first.resumeFrom).toBeUndefined();
        expect(first.summary.retried).toBe(0);
      }
      expect(first.summary.skipped).toBe(0);
      expect(bExactAtFirst).toBe(true);
      // Versions and guard sums only move forward.
      expect(atFirst?.version).toBeGreaterThanOrEqual(before?.version ?? 0);
      expect(after?.version).toBeGreaterThanOrEqual(atFirst?.version ?? 0);
      expect(after?.counters_vsum).toBeGreaterThanOrEqual(atFirst?.counters_vsum ?? 0);
      // No reconcile: the fold alone made them exact; the endings were published.
      expectExact(await auditTasks(table.store, tasks, { reconcile: false }));
      expect(
        events.published
          .filter((event) => event.detailType === EVENTS.taskEnded)
          .map((e) => e.detail.task_id),
      ).toEqual(expect.arrayContaining([a.taskId, b.taskId]));
    },
  );

  it('skips a fold that fails for good (logged), and the next recount repairs what it missed', async () => {
    const { a, b, tasks, records } = await twoAppliedTasks('fold-validation');
    // A non-transient error (a malformed request, a bug): retrying the record would fail the same way.
    const validation = Object.assign(new Error('One or more parameter values were invalid'), {
      name: 'ValidationException',
      $metadata: { httpStatusCode: 400 },
    });
    let fired = false;
    const failing = new (class extends TaskStore {
      override async readShard(task: TaskRecord, shard: number) {
        if (!fired && task.task_id === a.taskId) {
          fired = true;
          throw validation;
        }
        return super.readShard(task, shard);
      }
    })(roles.aggregator, table.tableName);

    const result = await foldBatch(records, {
      store: failing,
      events: new RecordingPublisher(),
      log: SILENT_LOG,
      now: Date.now,
    });
    const skippedTask = await table.store.getTask(a.taskId);
    await reconcileTask(table.store, a.taskId, Date.now);

    expect(result.resumeFrom).toBeUndefined();
    expect(result.summary).toMatchObject({ skipped: 1, retried: 0 });
    expect(skippedTask?.subtasks).toEqual({ total: 2, succeeded: 0, failed: 0 });
    expect(await exactNow(b.taskId)).toBe(true);
    expectExact(await auditTasks(table.store, tasks, { reconcile: false }));
  });
});

describe('EventBridge fails to take a Task Ended event', () => {
  const CASES = [
    { name: 'PutEvents throttled', fault: 'throttled' },
    { name: 'PutEvents with a failed entry', fault: 'failed-entry' },
  ] as const;

  it.each(CASES)(
    '$name: the stream goes on, the ending stays marked on its task, and the sweeper publishes it',
    async ({ fault }) => {
      const { a, b, records } = await twoAppliedTasks(`events-${fault}`);
      await foldUntilDone(records, {
        store: aggregatorStore,
        events: new RecordingPublisher(),
        now: Date.now,
      });
      const endings = await tap.read();
      const eventBridge = new EventBridgeClient({ region: 'us-east-1' });
      const mock = mockClient(eventBridge);
      if (fault === 'throttled') {
        mock
          .on(PutEventsCommand)
          .rejectsOnce(
            Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $retryable: {} }),
          )
          .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }, { EventId: 'e2' }] });
      } else {
        mock
          .on(PutEventsCommand)
          .resolvesOnce({
            FailedEntryCount: 1,
            Entries: [{ EventId: 'e1' }, { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
          })
          .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }, { EventId: 'e2' }] });
      }
      eventFaultsInFile += 1;
      const events = new EventBridgePublisher(eventBridge, 'default');
      const versions = async () => [
        (await table.store.getTask(a.taskId))?.version,
        (await table.store.getTask(b.taskId))?.version,
      ];
      const ended = await versions();

      const first = await foldBatch(endings, {
        store: aggregatorStore,
        events,
        log: SILENT_LOG,
        now: Date.now,
      });
      const marked = await Promise.all([a.taskId, b.taskId].map((id) => table.store.getTask(id)));
      const republished = await Promise.all(
        marked.map((task) =>
          task === undefined
            ? undefined
            : publishPending({ store: table.store, events, log: SILENT_LOG }, task, Date.now()),
        ),
      );

      expect(first.resumeFrom).toBeUndefined();
      expect(first.summary).toMatchObject({ retried: 0, skipped: 0 });
      expect(first.summary.eventsPublished + first.summary.eventsDeferred).toBe(2);
      expect(republished.reduce((sum, result) => sum + (result?.published ?? 0), 0)).toBe(
        first.summary.eventsDeferred,
      );
      // The first call failed whole (throttled) or in its second entry; every later one was accepted.
      const accepted = mock.commandCalls(PutEventsCommand).flatMap((call, index) => {
        const ids = (call.args[0].input.Entries ?? []).map(
          (entry) => JSON.parse(entry.Detail ?? '{}').task_id as string,
        );
        if (index > 0) return ids;
        return fault === 'throttled' ? [] : ids.slice(0, 1);
      });
      // Each task's ending accepted exactly once, the failed one published again from its mark.
      expect(accepted.sort()).toEqual([a.taskId, b.taskId].sort());
      expect(
        (await Promise.all([a.taskId, b.taskId].map((id) => table.store.getTask(id)))).map(
          (task) => task?.event_pending,
        ),
      ).toEqual([undefined, undefined]);
      // Events are no reason to move a version: the tasks are as the fold left them.
      expect(await versions()).toEqual(ended);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Under load
// ---------------------------------------------------------------------------------------------------------------

describe('DynamoDB faults under load', () => {
  let queues: TestQueues;
  beforeAll(async () => {
    queues = await newStatusQueues();
  });

  /** Faults on a random `rate` of all calls; each is the kind met least so far among those the call can meet. */
  function randomFaults(random: () => number, rate: number): FaultInjector {
    const kinds = FAULT_KINDS.filter((kind) => kind !== 'EndlessConflict');
    const injector: FaultInjector = new FaultInjector((operation) => {
      if (random() >= rate) return undefined;
      const candidates = shuffle(
        kinds.filter((kind) => FAULTS[kind].operations.includes(operation)),
        random,
      );
      // Least met first, so that even a short storm meets every kind.
      return candidates.reduce((least, kind) =>
        injector.injected[kind] < injector.injected[least] ? kind : least,
      );
    });
    return injector;
  }

  it('a storm of faults on the appliers and the aggregator at once loses nothing and counts nothing twice', async () => {
    const random = seededRandom(SEED);
    await tap.read();
    const workloads = await startWorkloads(
      table.store,
      [30, 15, 8],
      { duplicateShare: 0.1, minProgressSteps: 0, maxProgressSteps: 2 },
      random,
      'storm',
    );
    const applierFaults = randomFaults(random, 0.2);
    const foldFaults = randomFaults(random, 0.2);
    const foldStore = faultyStore(foldFaults, 'aggregator');
    const events = new RecordingPublisher();
    const fold = { records: 0, batches: 0, deliveries: 0 };
    let appliersDone = false;

    /** The aggregator, polling the stream while the appliers work: batches of random size, resumed as Lambda does. */
    const aggregator = async () => {
      for (let idle = 0; idle < 2; ) {
        const records = await tap.read();
        if (records.length === 0) {
          if (appliersDone) idle++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        idle = 0;
        fold.records += records.length;
        for (let start = 0; start < records.length; ) {
          const size = 1 + Math.floor(random() * 60);
          fold.batches += 1;
          fold.deliveries += await foldUntilDone(records.slice(start, start + size), {
            store: foldStore,
            events,
            now: Date.now,
          });
          start += size;
        }
      }
    };
    const [totals] = await Promise.all([
      runApplierPool({
        store: faultyStore(applierFaults),
        deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
        deliveries: deliveriesOf(workloads.bodies, 'storm'),
        appliers: 6,
        batchSize: 20,
        random,
        applyOptions: { retry: { maxAttempts: 8, baseDelayMs: 2, maxDelayMs: 50 } },
        maxBatches: 5_000,
      }).finally(async () => {
        // A write still on its way from a batch that gave up is part of the stream the aggregator must see.
        await applierFaults.settled();
        appliersDone = true;
      }),
      aggregator(),
    ]);

    await foldFaults.settled();
    // No reconcile: what the fold made of the stream, faults and all.
    const audit = await auditTasks(table.store, workloads.tasks, { reconcile: false });
    expectExact(audit);
    expect(totals.deadLettered).toBe(0);
    // Each delivery was settled once, as applied, duplicate or stale, by the batch that did not hand it back.
    expect(totals.applied + totals.duplicate + totals.stale).toBe(workloads.bodies.length);
    for (const kind of FAULT_KINDS.filter((k) => k !== 'EndlessConflict')) {
      expect(applierFaults.injected[kind] + foldFaults.injected[kind]).toBeGreaterThan(0);
    }
    const endedIds = new Set(
      events.published.filter((event) => event.detailType === EVENTS.taskEnded).map((e) => e.detail.task_id),
    );
    expect(endedIds).toEqual(new Set(workloads.tasks.map((task) => task.taskId)));
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    reportFigures('fault storm', {
      seed: SEED,
      faults: applierFaults.total() + foldFaults.total(),
      applierFaults: applierFaults.total(),
      foldFaults: foldFaults.total(),
      ...Object.fromEntries(
        FAULT_KINDS.map((kind) => [
          `faults.${kind}`,
          applierFaults.injected[kind] + foldFaults.injected[kind],
        ]),
      ),
      statusesSent: workloads.statusesSent,
      deliveries: totals.deliveries,
      retried: totals.retried,
      writes: totals.writes,
      conflicts: totals.conflicts,
      streamRecords: fold.records,
      foldBatches: fold.batches,
      foldDeliveries: fold.deliveries,
      lost: audit.lost,
      doubleCounted: audit.doubleCounted,
    });
  }, 90_000);

  it('counts each terminal status once when every status arrives up to four times at twelve appliers', async () => {
    const random = seededRandom(SEED + 1);
    const workloads = await startWorkloads(
      table.store,
      [24],
      { duplicateShare: 0.1, minProgressSteps: 0, maxProgressSteps: 2 },
      random,
      'redelivery-storm',
    );
    const bodies = workloads.bodies.flatMap((body) =>
      Array.from({ length: 1 + Math.floor(random() * 4) }, () => body),
    );
    const injector = randomFaults(random, 0.05);
    const totals = await runApplierPool({
      store: faultyStore(injector),
      deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
      deliveries: deliveriesOf(shuffle(bodies, random), 'redelivery'),
      appliers: 12,
      batchSize: 10,
      random,
      applyOptions: { retry: { maxAttempts: 8, baseDelayMs: 2, maxDelayMs: 50 } },
      maxBatches: 5_000,
    });

    await injector.settled();
    const audit = await auditTasks(table.store, workloads.tasks, { reconcile: true });
    expectExact(audit);
    expect(totals.deadLettered).toBe(0);
    expect(totals.applied + totals.duplicate + totals.stale).toBe(bodies.length);
    expect(totals.duplicate).toBeGreaterThan(totals.applied);
    reportFigures('redelivery storm', {
      seed: SEED,
      faults: injector.total(),
      statusesSent: workloads.statusesSent,
      deliveries: totals.deliveries,
      duplicates: totals.duplicate,
      conflicts: totals.conflicts,
      lost: audit.lost,
      doubleCounted: audit.doubleCounted,
    });
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------------------
// Lost data
// ---------------------------------------------------------------------------------------------------------------

describe('a store that lost its data', () => {
  it('retries statuses while the table is gone and dead-letters them as ResourceNotFoundException on the last delivery', async () => {
    const queues = await newStatusQueues();
    const doomed = await newTaskTable();
    const taskId = uniqueName('gone');
    await doomed.store.initialize(initializeRequest(taskId, 1), T0);
    await doomed.client.send(new DeleteTableCommand({ TableName: doomed.tableName }));
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = handlerWith(doomed.store, queues);

    const early = await handler(sqsEventOf([{ messageId: 'm1', body, receiveCount: 1 }]), lambdaContext());
    const last = await handler(
      sqsEventOf([{ messageId: 'm1', body, receiveCount: STATUS_QUEUE.receiveLimit }]),
      lambdaContext(),
    );
    const [letter] = await receiveAll(queues.client, queues.deadLetterQueueUrl, 1);

    expect(early.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(last.batchItemFailures).toEqual([]);
    expect(letter?.Body).toBe(body);
    expect(letter?.MessageAttributes?.error_code?.StringValue).toBe('ResourceNotFoundException');
  });

  it('treats a task whose item expired as unknown (retried, then UNKNOWN_TASK) and a vanished subtask as UNKNOWN_SUBTASK', async () => {
    const queues = await newStatusQueues();
    const expiredTask = uniqueName('expired');
    const partialTask = uniqueName('partial');
    await table.store.initialize(initializeRequest(expiredTask, 2, { ttlDays: 16 }), T0);
    await table.store.initialize(initializeRequest(partialTask, 2, { ttlDays: 16 }), T0);
    // TTL deletes items one by one, in no order: here the first task lost its task item, the second one subtask.
    await direct.send(new DeleteCommand({ TableName: table.tableName, Key: taskKey(expiredTask) }));
    await direct.send(
      new DeleteCommand({ TableName: table.tableName, Key: subtaskKey(partialTask, 0, 'sub-00001') }),
    );
    const toExpired = messageBody(expiredTask, terminal('sub-00000'));
    const toVanished = messageBody(partialTask, terminal('sub-00001'));
    const handler = handlerWith(table.store, queues);
    const early = await handler(
      sqsEventOf([
        { messageId: 'expired', body: toExpired, receiveCount: 1 },
        { messageId: 'vanished', body: toVanished, receiveCount: 1 },
      ]),
      lambdaContext(),
    );
    const last = await handler(
      sqsEventOf([{ messageId: 'expired', body: toExpired, receiveCount: STATUS_QUEUE.receiveLimit }]),
      lambdaContext(),
    );
    // Ask for one more than should come, to see that nothing else was dead-lettered.
    const letters = await receiveAll(queues.client, queues.deadLetterQueueUrl, 3, 1);

    expect(early.batchItemFailures).toEqual([{ itemIdentifier: 'expired' }]);
    expect(last.batchItemFailures).toEqual([]);
    // The vanished subtask is dead-lettered on the first delivery, the expired task's status on the last.
    expect(
      letters.map((letter) => [letter.Body, letter.MessageAttributes?.error_code?.StringValue]).sort(),
    ).toEqual(
      [
        [toExpired, 'UNKNOWN_TASK'],
        [toVanished, 'UNKNOWN_SUBTASK'],
      ].sort(),
    );
  });

  /**
   * DESIGN §2: "A subtask missing from its shard (removed while running, e.g. a TTL shorter than the task)
   * counts as failed with reason LOST", so that its task can still end. The removal's stream record makes the
   * fold recount the shard, and the recount does count the subtask as lost, but its version sum is lower than
   * the stored one (the removed item's version is no longer in it), so `writeCounter`'s guard drops it, and so
   * does every later recount (the sweeper's idle recount, `reconcile`) until other writes push the sum past its
   * old maximum. With no such writes the task never ends.
   */
  it('counts a subtask whose item was removed while it ran as failed (LOST), so that its task ends', async () => {
    await tap.read();
    const taskId = uniqueName('lost');
    await table.store.initialize(initializeRequest(taskId, 2), T0);
    const { retry } = await applyBatch(
      [
        { messageId: 'done', body: messageBody(taskId, terminal('sub-00000')), receiveCount: 1 },
        {
          messageId: 'running',
          body: messageBody(taskId, terminal('sub-00001', { succeeded: 3, state: 'PROGRESS' })),
          receiveCount: 1,
        },
      ],
      {
        store: applierStore,
        deadLetters: new DeadLetterQueue(fileQueues.client, fileQueues.deadLetterQueueUrl),
        log: SILENT_LOG,
        receiveLimit: STATUS_QUEUE.receiveLimit,
      },
    );
    expect(retry).toEqual([]);
    const events = new RecordingPublisher();
    await foldUntilDone(await tap.read(), { store: aggregatorStore, events, now: Date.now });
    const beforeRemoval = await table.store.getTask(taskId);
    // The running subtask's item goes (TTL or an operator); the stream says so, and the fold recounts.
    await direct.send(
      new DeleteCommand({ TableName: table.tableName, Key: subtaskKey(taskId, 0, 'sub-00001') }),
    );
    await foldUntilDone(await tap.read(), { store: aggregatorStore, events, now: Date.now });
    const afterFold = await table.store.getTask(taskId);
    // The sweeper's idle recount does the same.
    await reconcileTask(table.store, taskId, Date.now);
    const afterReconcile = await table.store.getTask(taskId);

    expect(beforeRemoval?.subtasks).toEqual({ total: 2, succeeded: 1, failed: 0 });
    expect({ subtasks: afterFold?.subtasks, state: afterFold?.task_state }).toEqual({
      subtasks: { total: 2, succeeded: 1, failed: 1 },
      state: 'SUCCESS',
    });
    expect({ subtasks: afterReconcile?.subtasks, state: afterReconcile?.task_state }).toEqual({
      subtasks: { total: 2, succeeded: 1, failed: 1 },
      state: 'SUCCESS',
    });
  });
});
