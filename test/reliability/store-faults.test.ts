import {
  DeleteTableCommand,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  type BatchGetCommandOutput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { STATUS_QUEUE, TABLE_KEYS } from '../../lambdas/service-settings';
import type { RetryPolicy } from '../../lambdas/store/backoff';
import { subtaskKey, taskKey, taskPartition } from '../../lambdas/store/task-items';
import { TaskStore } from '../../lambdas/store/task-store';
import { runAppliers, seededRandom, shuffle } from '../support/applier-harness';
import {
  newStatusQueues,
  newTaskTable,
  receiveAll,
  type TestQueues,
  type TestTable,
  uniqueName,
} from '../support/aws';
import { initializeRequest, lambdaContext, messageBody, T0, terminal } from '../support/factories';
import {
  applierHandler,
  auditTasks,
  type Delivery,
  expectExact,
  failedDeliveries,
  queueDepth,
  reportFigures,
  SEED,
  sqsEventOf,
  startWorkloads,
  type TaskWorkload,
} from './support';

/**
 * Faults DynamoDB Local never produces, injected at the SDK client: a mock replaces one document client's `send`,
 * passes most calls through to DynamoDB Local and fails the chosen ones with the SDK's own exceptions. The mock
 * sits above the SDK's retry middleware, so every injected fault reaches our code, as one that outlasted the
 * SDK's own retries would.
 */

const OPERATIONS = ['GetItem', 'BatchGetItem', 'TransactWriteItems'] as const;
type Operation = (typeof OPERATIONS)[number];

const FAULT_KINDS = [
  'ProvisionedThroughputExceeded',
  'Throttling',
  'InternalServerError',
  'NetworkReset',
  'TransactionConflict',
  'ThrottledInTransaction',
  'UnprocessedKeys',
  'CommitAckLost',
] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

interface Fault {
  readonly operations: readonly Operation[];
  /** What the first delivery does about one such fault: absorb it (retry in place) or hand the records back. */
  readonly once: 'absorbed' | 'retried';
  /** The `error_code` a record carries into the dead-letter queue when the fault outlasts its last delivery. */
  readonly deadLetterCode: string;
}

const FAULTS: Record<FaultKind, Fault> = {
  ProvisionedThroughputExceeded: {
    operations: OPERATIONS,
    once: 'retried',
    deadLetterCode: 'ProvisionedThroughputExceededException',
  },
  Throttling: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'ThrottlingException' },
  InternalServerError: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'InternalServerError' },
  // A socket error is a plain Node `Error`: its name is all the reason the dead letter gets.
  NetworkReset: { operations: OPERATIONS, once: 'retried', deadLetterCode: 'Error' },
  // A conflict is the optimistic lock at work: re-read and re-apply in place, until the attempts run out.
  TransactionConflict: {
    operations: ['TransactWriteItems'],
    once: 'absorbed',
    deadLetterCode: 'RETRIES_EXHAUSTED',
  },
  ThrottledInTransaction: {
    operations: ['TransactWriteItems'],
    once: 'retried',
    deadLetterCode: 'STORE_UNAVAILABLE',
  },
  UnprocessedKeys: { operations: ['BatchGetItem'], once: 'absorbed', deadLetterCode: 'STORE_UNAVAILABLE' },
  // The commit went through; only its acknowledgement was lost on the way back.
  CommitAckLost: { operations: ['TransactWriteItems'], once: 'retried', deadLetterCode: 'Error' },
};

/** Short conflict backoff, so that a conflict that never ends exhausts its attempts quickly. */
const FAST_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };

function networkReset(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
}

/** The error DynamoDB (or the network) answers with; a transaction's errors name one reason per action. */
function faultError(kind: FaultKind, actions: number): Error {
  const $metadata = { httpStatusCode: 400, attempts: 1 };
  const canceled = (code: string) =>
    new TransactionCanceledException({
      message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${code}]`,
      $metadata,
      CancellationReasons: [{ Code: code }, ...Array.from({ length: actions - 1 }, () => ({ Code: 'None' }))],
    });
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
    case 'TransactionConflict':
      return canceled('TransactionConflict');
    case 'ThrottledInTransaction':
      return canceled('ThrottlingError');
    case 'NetworkReset':
    case 'CommitAckLost':
      return networkReset();
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
}

/** The task a call is about, from the partition key of its (first) item. */
function taskIdOf(key: Record<string, unknown> | undefined): string {
  const partition = key?.[TABLE_KEYS.partitionKey];
  const prefix = taskPartition('');
  return typeof partition === 'string' && partition.startsWith(prefix) ? partition.slice(prefix.length) : '';
}

/** DynamoDB answers part of a batch read and hands the rest back as unprocessed; here, the second half. */
async function partialBatchGet(input: BatchGetCommandInput): Promise<BatchGetCommandOutput> {
  const [tableName, request] = Object.entries(input.RequestItems ?? {})[0] ?? [];
  if (tableName === undefined || request === undefined) return real.send(new BatchGetCommand(input));
  const keys = request.Keys ?? [];
  const answered = keys.slice(0, Math.floor(keys.length / 2));
  const output: BatchGetCommandOutput =
    answered.length === 0
      ? { Responses: { [tableName]: [] }, $metadata: {} }
      : await real.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { ...request, Keys: answered } } }),
        );
  return { ...output, UnprocessedKeys: { [tableName]: { ...request, Keys: keys.slice(answered.length) } } };
}

/** A document client on DynamoDB Local that fails the calls `injector` chooses. */
function faultyClient(injector: FaultInjector): DynamoDBDocumentClient {
  // Its own `send` is replaced: nothing goes out through this client but what the fake passes to `real`.
  const faulty = documentClient(table.client);
  const mock = mockClient(faulty);
  mock.on(GetCommand).callsFake(async (input: GetCommandInput) => {
    const kind = injector.choose('GetItem', taskIdOf(input.Key));
    if (kind === undefined) return real.send(new GetCommand(input));
    injector.record(kind);
    throw faultError(kind, 1);
  });
  mock.on(BatchGetCommand).callsFake(async (input: BatchGetCommandInput) => {
    const keys = Object.values(input.RequestItems ?? {})[0]?.Keys ?? [];
    const kind = injector.choose('BatchGetItem', taskIdOf(keys[0]));
    if (kind === undefined) return real.send(new BatchGetCommand(input));
    injector.record(kind);
    if (kind === 'UnprocessedKeys') return partialBatchGet(input);
    throw faultError(kind, 1);
  });
  mock.on(TransactWriteCommand).callsFake(async (input: TransactWriteCommandInput) => {
    const actions = input.TransactItems ?? [];
    const kind = injector.choose('TransactWriteItems', taskIdOf(actions[0]?.Update?.Key));
    if (kind === undefined) return real.send(new TransactWriteCommand(input));
    if (kind === 'CommitAckLost') {
      // Only a commit that went through can lose its acknowledgement; a real cancellation stays what it is.
      await real.send(new TransactWriteCommand(input));
      injector.record(kind);
      throw networkReset();
    }
    injector.record(kind);
    throw faultError(kind, actions.length);
  });
  return faulty;
}

let table: TestTable;
/** The unmocked client the faulty ones pass their calls through to. */
let real: DynamoDBDocumentClient;

beforeAll(async () => {
  table = await newTaskTable();
  real = documentClient(table.client);
});

afterAll(() => {
  reportFigures('faults injected in all', {
    faults: Object.values(injectedInFile).reduce((sum, count) => sum + count, 0),
    ...Object.fromEntries(FAULT_KINDS.map((kind) => [kind, injectedInFile[kind]])),
  });
});

/** Every (fault, operation) pair DynamoDB can produce. */
const FAULT_SITES = FAULT_KINDS.flatMap((kind) =>
  FAULTS[kind].operations.map((operation) => ({ kind, operation })),
);

/** Two tasks of two subtasks; the batch finishes both, with one duplicate. Faults hit task `a` only. */
async function twoTasks(label: string) {
  const tasks = await Promise.all(
    ['a', 'b'].map(async (name): Promise<TaskWorkload & { readonly statuses: SubtaskStatus[] }> => {
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
  const deliveries = (task: typeof a, receiveCount: number): Delivery[] =>
    [...task.statuses, ...task.statuses.slice(0, 1)].map((s, index) => ({
      messageId: `${task.taskId}-${index}`,
      body: messageBody(task.taskId, s),
      receiveCount,
    }));
  return { a, b, tasks, deliveries };
}

function handlerWith(injector: FaultInjector, queues: TestQueues) {
  return applierHandler({
    // No jitter, so no wait between retries of unprocessed keys: this file counts retries, not time.
    store: new TaskStore(faultyClient(injector), table.tableName, () => 0),
    deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
    receiveLimit: STATUS_QUEUE.receiveLimit,
    applyOptions: { retry: FAST_RETRY },
  });
}

describe('DynamoDB faults on one delivery', () => {
  let queues: TestQueues;
  beforeAll(async () => {
    queues = await newStatusQueues();
  });

  it.each(FAULT_SITES)(
    '$kind on $operation: only the hit task is retried, and it is counted once after redelivery',
    async ({ kind, operation }) => {
      const { a, b, tasks, deliveries } = await twoTasks(`${kind}-${operation}`);
      let fired = false;
      const injector = new FaultInjector((op, taskId) => {
        if (fired || op !== operation || taskId !== a.taskId) return undefined;
        fired = true;
        return kind;
      });
      const batch = [...deliveries(a, 1), ...deliveries(b, 1)];

      const first = failedDeliveries(
        batch,
        await handlerWith(injector, queues)(sqsEventOf(batch), lambdaContext()),
      );
      const versionOfA = (await table.store.getTask(a.taskId))?.version;
      const again = first.map((d) => ({ ...d, receiveCount: d.receiveCount + 1 }));
      const second = failedDeliveries(
        again,
        await handlerWith(injector, queues)(sqsEventOf(again), lambdaContext()),
      );

      expect(injector.injected[kind]).toBe(1);
      const expectedRetry = FAULTS[kind].once === 'retried' ? deliveries(a, 1) : [];
      expect(first.map((d) => d.messageId)).toEqual(expectedRetry.map((d) => d.messageId));
      // Applied on the first delivery unless the fault stopped it before its commit.
      expect(versionOfA).toBe(FAULTS[kind].once === 'absorbed' || kind === 'CommitAckLost' ? 2 : 1);
      expect(second).toEqual([]);
      expectExact(await auditTasks(table.store, tasks));
      // One commit per task in all: nothing was applied twice.
      expect((await table.store.getTask(a.taskId))?.version).toBe(2);
      expect((await table.store.getTask(b.taskId))?.version).toBe(2);
      expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    },
  );
});

/** For each kind, the operation it hits when it never goes away: spread over the three. */
const LASTING_FAULT_SITES: readonly { readonly kind: FaultKind; readonly operation: Operation }[] = [
  { kind: 'ProvisionedThroughputExceeded', operation: 'GetItem' },
  { kind: 'Throttling', operation: 'BatchGetItem' },
  { kind: 'InternalServerError', operation: 'TransactWriteItems' },
  { kind: 'NetworkReset', operation: 'GetItem' },
  { kind: 'TransactionConflict', operation: 'TransactWriteItems' },
  { kind: 'ThrottledInTransaction', operation: 'TransactWriteItems' },
  { kind: 'UnprocessedKeys', operation: 'BatchGetItem' },
  { kind: 'CommitAckLost', operation: 'TransactWriteItems' },
];

describe('a DynamoDB fault that outlasts the last delivery', () => {
  it.each(LASTING_FAULT_SITES)(
    '$kind on $operation: the hit records go to the dead-letter queue with its name, the rest is applied',
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

      const response = await handlerWith(injector, queues)(sqsEventOf(batch), lambdaContext());
      const letters = await receiveAll(queues.client, queues.deadLetterQueueUrl, 3);

      expect(response.batchItemFailures).toEqual([]);
      expect(injector.injected[kind]).toBeGreaterThan(0);
      const reasons = new Map(
        letters.map((letter) => [
          letter.MessageAttributes?.original_message_id?.StringValue,
          letter.MessageAttributes?.error_code?.StringValue,
        ]),
      );
      expect(reasons).toEqual(
        new Map(deliveries(a, 1).map((d) => [d.messageId, FAULTS[kind].deadLetterCode])),
      );
      expectExact(await auditTasks(table.store, [b]));
      // A lost acknowledgement leaves the statuses both applied and dead-lettered: redriving them adds nothing.
      const applied = kind === 'CommitAckLost';
      expect((await table.store.getTask(a.taskId))?.subtasks.succeeded).toBe(applied ? 2 : 0);
      if (applied) {
        const redrive = letters.map((letter, index) => ({
          messageId: `redrive-${index}`,
          body: letter.Body ?? '',
          receiveCount: 1,
        }));
        const healthy = applierHandler({
          store: table.store,
          deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
          receiveLimit: STATUS_QUEUE.receiveLimit,
        });
        expect((await healthy(sqsEventOf(redrive), lambdaContext())).batchItemFailures).toEqual([]);
        expectExact(await auditTasks(table.store, [a]));
        expect((await table.store.getTask(a.taskId))?.version).toBe(2);
      }
    },
  );
});

describe('DynamoDB faults under load', () => {
  let queues: TestQueues;
  beforeAll(async () => {
    queues = await newStatusQueues();
  });

  /** Faults on a random `rate` of all calls; each is the kind met least so far among those the call can meet. */
  function randomFaults(random: () => number, rate: number): FaultInjector {
    const injector: FaultInjector = new FaultInjector((operation) => {
      if (random() >= rate) return undefined;
      const kinds = shuffle(
        FAULT_KINDS.filter((kind) => FAULTS[kind].operations.includes(operation)),
        random,
      );
      // Least met first, so that even a short storm meets every kind.
      return kinds.reduce((least, kind) =>
        injector.injected[kind] < injector.injected[least] ? kind : least,
      );
    });
    return injector;
  }

  async function runWithFaults(
    label: string,
    options: {
      readonly subtasks: readonly number[];
      readonly faultRate: number;
      readonly appliers: number;
      readonly batchSize: number;
      /** Each status is delivered 1 to this many times. */
      readonly copies: number;
      readonly seed: number;
    },
  ) {
    const random = seededRandom(options.seed);
    const workloads = await startWorkloads(
      table.store,
      options.subtasks,
      { duplicateShare: 0.1, maxProgressSteps: 2 },
      random,
      label,
    );
    const bodies = workloads.bodies.flatMap((body) =>
      Array.from({ length: 1 + Math.floor(random() * options.copies) }, () => body),
    );
    const injector = randomFaults(random, options.faultRate);
    const totals = await runAppliers({
      store: new TaskStore(faultyClient(injector), table.tableName),
      deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
      bodies: shuffle(bodies, random),
      appliers: options.appliers,
      batchSize: options.batchSize,
      random,
      applyOptions: { retry: { maxAttempts: 8, baseDelayMs: 2, maxDelayMs: 50 } },
      maxBatches: 20_000,
    });
    const audit = await auditTasks(table.store, workloads.tasks);
    let versions = 0;
    for (const { taskId } of workloads.tasks)
      versions += ((await table.store.getTask(taskId))?.version ?? 1) - 1;
    return { workloads, bodies, injector, totals, audit, versions };
  }

  it('retries or absorbs every fault of a random storm and counts each terminal status once', async () => {
    const run = await runWithFaults('storm', {
      subtasks: [30, 15, 8],
      faultRate: 0.25,
      appliers: 6,
      batchSize: 20,
      copies: 2,
      seed: SEED,
    });

    expectExact(run.audit);
    expect(run.totals.deadLettered).toBe(0);
    // Each delivery was settled once, as applied, duplicate or stale, by the batch that did not hand it back.
    expect(run.totals.applied + run.totals.duplicate + run.totals.stale).toBe(run.bodies.length);
    // Every commit raised a version by one: those reported, plus those whose acknowledgement was lost.
    expect(run.versions).toBe(run.totals.commits + run.injector.injected.CommitAckLost);
    for (const kind of FAULT_KINDS) expect(run.injector.injected[kind]).toBeGreaterThan(0);
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    reportFigures('fault storm', {
      seed: SEED,
      faults: run.injector.total(),
      ...Object.fromEntries(FAULT_KINDS.map((kind) => [`faults.${kind}`, run.injector.injected[kind]])),
      statusesSent: run.workloads.statusesSent,
      deliveries: run.totals.deliveries,
      retried: run.totals.retried,
      commits: run.totals.commits,
      lost: run.audit.lost,
      doubleCounted: run.audit.doubleCounted,
    });
  }, 60_000);

  it('counts each terminal status once when every status arrives up to five times at sixteen appliers', async () => {
    const run = await runWithFaults('redelivery-storm', {
      subtasks: [50],
      faultRate: 0.05,
      appliers: 16,
      batchSize: 10,
      copies: 5,
      seed: SEED,
    });

    expectExact(run.audit);
    expect(run.totals.deadLettered).toBe(0);
    expect(run.totals.applied + run.totals.duplicate + run.totals.stale).toBe(run.bodies.length);
    expect(run.versions).toBe(run.totals.commits + run.injector.injected.CommitAckLost);
    expect(run.totals.duplicate).toBeGreaterThan(run.totals.applied);
    reportFigures('redelivery storm', {
      seed: SEED,
      faults: run.injector.total(),
      statusesSent: run.workloads.statusesSent,
      deliveries: run.totals.deliveries,
      duplicates: run.totals.duplicate,
      conflicts: run.totals.conflicts,
      lost: run.audit.lost,
      doubleCounted: run.audit.doubleCounted,
    });
  }, 60_000);
});

describe('a store that lost its data', () => {
  it('retries statuses while the table is gone and dead-letters them as ResourceNotFoundException on the last delivery', async () => {
    const queues = await newStatusQueues();
    const doomed = await newTaskTable();
    const taskId = uniqueName('gone');
    await doomed.store.initialize(initializeRequest(taskId, 1), T0);
    await doomed.client.send(new DeleteTableCommand({ TableName: doomed.tableName }));
    const body = messageBody(taskId, terminal('sub-00000'));
    const handler = applierHandler({
      store: doomed.store,
      deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
      receiveLimit: STATUS_QUEUE.receiveLimit,
    });

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
    const db = documentClient(table.client);
    const expiredTask = uniqueName('expired');
    const partialTask = uniqueName('partial');
    await table.store.initialize(initializeRequest(expiredTask, 2, { ttlSeconds: 60 }), T0);
    await table.store.initialize(initializeRequest(partialTask, 2, { ttlSeconds: 60 }), T0);
    // TTL deletes items one by one, in no order: here the first task lost its task item, the second one subtask.
    await db.send(new DeleteCommand({ TableName: table.tableName, Key: taskKey(expiredTask) }));
    await db.send(
      new DeleteCommand({ TableName: table.tableName, Key: subtaskKey(partialTask, 'sub-00001') }),
    );
    const toExpired = messageBody(expiredTask, terminal('sub-00000'));
    const toVanished = messageBody(partialTask, terminal('sub-00001'));
    const handler = applierHandler({
      store: table.store,
      deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
      receiveLimit: STATUS_QUEUE.receiveLimit,
    });
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
    expect((await table.store.getTask(partialTask))?.version).toBe(1);
  });
});
