/**
 * The stand-in for Lambda's DynamoDB Streams event source mapping, on the stream of a real table in DynamoDB
 * Local: the event's shape, batching, partial batch responses, bisection of failed batches, and the lifecycle
 * (`caughtUp()`, `stop()`). Shard lineage, which DynamoDB Local never produces, runs on a mocked stream.
 */

import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { createTaskTable } from '../../local/resources';
import {
  type StreamBatchReport,
  type StreamHandler,
  type StreamPoller,
  type StreamPollerOptions,
  startStreamPoller,
} from '../../local/stream-poller';
import { dynamoClient, streamsClient, uniqueName } from '../support/aws';

let db: DynamoDBClient;
let streams: DynamoDBStreamsClient;
const running: StreamPoller[] = [];

beforeAll(() => {
  db = dynamoClient();
  streams = streamsClient();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((poller) => poller.stop()));
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface TestStream {
  readonly tableName: string;
  readonly streamArn: string;
}

async function newStream(): Promise<TestStream> {
  const tableName = uniqueName('stream');
  return { tableName, streamArn: await createTaskTable(db, tableName) };
}

const key = (pk: string, sk: string) => ({ pk: { S: pk }, sk: { S: sk } });

async function put(table: TestStream, pk: string, sk: string, extra: Record<string, AttributeValue> = {}) {
  await db.send(new PutItemCommand({ TableName: table.tableName, Item: { ...key(pk, sk), ...extra } }));
}

async function setVersion(table: TestStream, pk: string, sk: string, version: number, poison = false) {
  await db.send(
    new UpdateItemCommand({
      TableName: table.tableName,
      Key: key(pk, sk),
      UpdateExpression: poison ? 'SET #v = :v, #poison = :poison' : 'SET #v = :v',
      ExpressionAttributeNames: poison ? { '#v': 'v', '#poison': 'poison' } : { '#v': 'v' },
      ExpressionAttributeValues: poison
        ? { ':v': { N: String(version) }, ':poison': { BOOL: true } }
        : { ':v': { N: String(version) } },
    }),
  );
}

async function remove(table: TestStream, pk: string, sk: string) {
  await db.send(new DeleteItemCommand({ TableName: table.tableName, Key: key(pk, sk) }));
}

/** Writes items `pk`/`0` … `pk`/`count - 1`, one INSERT each, in that order. */
async function putNumbered(table: TestStream, count: number, pk = 'item') {
  for (let index = 0; index < count; index++) await put(table, pk, String(index));
}

/** `sk` of a record, with `:v` when the new image has a version: enough to tell the records of a test apart. */
function label(record: DynamoDBRecord): string {
  const sk = record.dynamodb?.Keys?.sk?.S ?? '?';
  const version = record.dynamodb?.NewImage?.v?.N;
  return version === undefined ? sk : `${sk}:${version}`;
}

const seq = (record: DynamoDBRecord) => record.dynamodb?.SequenceNumber ?? '';

interface Invocation {
  readonly records: DynamoDBRecord[];
  readonly labels: string[];
  readonly context: Context;
  /** True when the handler returned without reporting failures. */
  ok: boolean;
}

/** A handler that notes every invocation; `respond` decides each answer (all succeed when absent). */
function recorder(
  respond?: (invocation: Invocation, index: number) => Promise<DynamoDBBatchResponse | undefined>,
) {
  const invocations: Invocation[] = [];
  const handler: StreamHandler = async (event, context) => {
    const invocation: Invocation = {
      records: event.Records,
      labels: event.Records.map(label),
      context,
      ok: false,
    };
    invocations.push(invocation);
    const response = await respond?.(invocation, invocations.length - 1);
    invocation.ok = response === undefined || response.batchItemFailures.length === 0;
    return response;
  };
  /** Labels of the records whose invocation succeeded, in the order they were handed over. */
  const succeeded = () => invocations.filter((call) => call.ok).flatMap((call) => call.labels);
  return { invocations, handler, succeeded };
}

interface Started {
  readonly poller: StreamPoller;
  readonly reports: StreamBatchReport[];
  readonly errors: unknown[];
}

function start(
  table: Pick<TestStream, 'streamArn'>,
  handler: StreamHandler,
  options: Partial<StreamPollerOptions> = {},
): Started {
  const reports: StreamBatchReport[] = [];
  const errors: unknown[] = [];
  const poller = startStreamPoller({
    streams,
    streamArn: table.streamArn,
    region: LOCAL_REGION,
    handler,
    batchingWindowMs: 50,
    onBatch: (report) => reports.push(report),
    onError: (error) => errors.push(error),
    ...options,
  });
  running.push(poller);
  return { poller, reports, errors };
}

const failuresFor = (...records: DynamoDBRecord[]): DynamoDBBatchResponse => ({
  batchItemFailures: records.map((record) => ({ itemIdentifier: seq(record) })),
});

describe('stream poller: the event', () => {
  it('hands over INSERT, MODIFY and REMOVE in write order, in the Lambda shape with raw attribute values and both images', async () => {
    const table = await newStream();
    const written: Record<string, AttributeValue> = {
      n: { N: '1.50' },
      b: { B: Uint8Array.of(1, 2, 3) },
      flag: { BOOL: true },
      nothing: { NULL: true },
      ss: { SS: ['a', 'b'] },
      ns: { NS: ['1', '2'] },
      bs: { BS: [Uint8Array.of(255)] },
      l: { L: [{ S: 'x' }, { N: '2' }, { M: { deep: { B: Uint8Array.of(0) } } }] },
      m: { M: { inner: { S: 'y' }, list: { L: [{ BOOL: false }] } } },
    };
    await put(table, 'item', 'one', written);
    await setVersion(table, 'item', 'one', 2);
    await remove(table, 'item', 'one');
    const before = Date.now() / 1000;
    const { invocations, handler } = recorder();

    const { poller, errors } = start(table, handler);
    await poller.caughtUp();

    const records = invocations.flatMap((call) => call.records);
    const inserted = {
      pk: { S: 'item' },
      sk: { S: 'one' },
      n: { N: '1.5' }, // DynamoDB normalizes numbers; they stay strings
      b: { B: 'AQID' },
      flag: { BOOL: true },
      nothing: { NULL: true },
      ss: { SS: ['a', 'b'] },
      ns: { NS: ['1', '2'] },
      bs: { BS: ['/w=='] },
      l: { L: [{ S: 'x' }, { N: '2' }, { M: { deep: { B: 'AA==' } } }] },
      m: { M: { inner: { S: 'y' }, list: { L: [{ BOOL: false }] } } },
    };
    const modified = { ...inserted, v: { N: '2' } };
    const shape = (eventName: string, dynamodb: Record<string, unknown>) => ({
      eventID: expect.any(String),
      eventName,
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: LOCAL_REGION,
      dynamodb: {
        ApproximateCreationDateTime: expect.any(Number),
        Keys: { pk: { S: 'item' }, sk: { S: 'one' } },
        SequenceNumber: expect.stringMatching(/^\d+$/),
        SizeBytes: expect.any(Number),
        StreamViewType: 'NEW_AND_OLD_IMAGES',
        ...dynamodb,
      },
      eventSourceARN: table.streamArn,
    });
    expect(records).toStrictEqual([
      shape('INSERT', { NewImage: inserted }),
      shape('MODIFY', { OldImage: inserted, NewImage: modified }),
      shape('REMOVE', { OldImage: modified }),
    ]);
    // Plain JSON, as Lambda parses it: no Date, no Uint8Array.
    expect(JSON.parse(JSON.stringify(records))).toStrictEqual(records);
    const sequence = records.map((record) => BigInt(seq(record)));
    expect(sequence).toStrictEqual([...sequence].sort((a, b) => (a < b ? -1 : 1)));
    expect(new Set(sequence).size).toBe(3);
    for (const record of records) {
      // Epoch seconds; DynamoDB Local rounds them down to the minute.
      expect(record.dynamodb?.ApproximateCreationDateTime).toBeGreaterThan(before - 120);
      expect(record.dynamodb?.ApproximateCreationDateTime).toBeLessThanOrEqual(Date.now() / 1000);
    }
    expect(errors).toEqual([]);
  });

  it('gives the handler a Lambda context whose remaining time counts down from timeoutMs', async () => {
    const table = await newStream();
    await putNumbered(table, 1);
    const remaining: number[] = [];
    const { invocations, handler } = recorder(async (call) => {
      remaining.push(call.context.getRemainingTimeInMillis());
      await sleep(100);
      remaining.push(call.context.getRemainingTimeInMillis());
      return undefined;
    });

    const { poller } = start(table, handler, { timeoutMs: 2_000, functionName: 'fold' });
    await poller.caughtUp();

    const context = invocations[0]?.context;
    expect(context).toMatchObject({
      functionName: 'fold',
      functionVersion: '$LATEST',
      invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:000000000000:function:fold`,
      logGroupName: '/aws/lambda/fold',
    });
    expect(context?.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    const [first = 0, second = 0] = remaining;
    expect(first).toBeLessThanOrEqual(2_000);
    expect(first).toBeGreaterThan(1_500);
    expect(first - second).toBeGreaterThanOrEqual(90);
  });
});

describe('stream poller: batching', () => {
  it('never hands over more than batchSize records, and keeps the write order across batches', async () => {
    const table = await newStream();
    await putNumbered(table, 7);
    const { invocations, handler } = recorder();

    const { poller } = start(table, handler, { batchSize: 3, batchingWindowMs: 100 });
    await poller.caughtUp();

    expect(invocations.map((call) => call.labels)).toEqual([['0', '1', '2'], ['3', '4', '5'], ['6']]);
  });

  it('gathers the records written while the batching window that the first one opened is open', async () => {
    const table = await newStream();
    const { invocations, handler } = recorder();
    const { poller } = start(table, handler, { batchSize: 100, batchingWindowMs: 1_500 });
    await poller.caughtUp();

    await put(table, 'item', '0');
    const firstWritten = Date.now();
    await sleep(50);
    await put(table, 'item', '1');
    await sleep(50);
    await put(table, 'item', '2');
    await poller.caughtUp();
    const handedOver = Date.now();

    expect(invocations.map((call) => call.labels)).toEqual([['0', '1', '2']]);
    expect(handedOver - firstWritten).toBeGreaterThanOrEqual(1_450);
  });
});

describe('stream poller: partial batch responses', () => {
  it('retries from the lowest failed sequence number on, and never hands over again what came before it', async () => {
    const table = await newStream();
    await putNumbered(table, 6);
    const { invocations, handler } = recorder(async (call, index) =>
      // Both the 5th and the 3rd record failed: the 3rd, the lowest, sets the checkpoint.
      index === 0
        ? failuresFor(call.records[4] as DynamoDBRecord, call.records[2] as DynamoDBRecord)
        : undefined,
    );

    const { poller, reports } = start(table, handler, { batchSize: 6 });
    await poller.caughtUp();

    expect(invocations.map((call) => call.labels)).toEqual([
      ['0', '1', '2', '3', '4', '5'],
      ['2', '3', '4', '5'],
    ]);
    expect(reports.map(({ records, retried, failure }) => ({ records, retried, failure }))).toEqual([
      { records: 6, retried: 4, failure: undefined },
      { records: 4, retried: 0, failure: undefined },
    ]);
  });

  it('without bisection, hands the retried records over again together with newer ones', async () => {
    const table = await newStream();
    await putNumbered(table, 4);
    const { invocations, handler } = recorder(async (call, index) => {
      if (index > 0) return undefined;
      await put(table, 'item', '4');
      await put(table, 'item', '5');
      return failuresFor(call.records[1] as DynamoDBRecord);
    });

    const { poller } = start(table, handler, { batchSize: 10, bisectBatchOnError: false });
    await poller.caughtUp();

    expect(invocations.map((call) => call.labels)).toEqual([
      ['0', '1', '2', '3'],
      ['1', '2', '3', '4', '5'],
    ]);
  });

  it('counts a null response, an empty list and a missing list as success', async () => {
    const table = await newStream();
    await putNumbered(table, 3);
    const answers = [null, { batchItemFailures: [] }, {}];
    const handled: string[][] = [];
    const handler: StreamHandler = async (event) => {
      handled.push(event.Records.map(label));
      return answers[handled.length - 1] as DynamoDBBatchResponse;
    };

    const { poller, reports } = start(table, handler, { batchSize: 1 });
    await poller.caughtUp();

    expect(handled).toEqual([['0'], ['1'], ['2']]);
    expect(reports.map((report) => report.retried)).toEqual([0, 0, 0]);
  });

  it('fails the whole batch when an itemIdentifier is empty, not in the batch or under the wrong key', async () => {
    const table = await newStream();
    await putNumbered(table, 3);
    const invalid = [
      { batchItemFailures: [{ itemIdentifier: '' }] },
      { batchItemFailures: [{ itemIdentifier: '000000000000000099999' }] },
      { batchItemFailures: [{ itemId: 'whatever' }] },
    ];
    const { invocations, handler } = recorder(
      async (_, index) => invalid[index] as unknown as DynamoDBBatchResponse | undefined,
    );

    const { poller, reports, errors } = start(table, handler, { bisectBatchOnError: false });
    await poller.caughtUp();

    expect(invocations.map((call) => call.labels)).toEqual(Array.from({ length: 4 }, () => ['0', '1', '2']));
    expect(reports.map((report) => report.retried)).toEqual([3, 3, 3, 0]);
    expect(reports.slice(0, 3).map((report) => report.failure)).toEqual([
      expect.stringMatching(/^InvalidBatchResponseError: /),
      expect.stringMatching(/^InvalidBatchResponseError: .*'000000000000000099999', not in the batch/),
      expect.stringMatching(/^InvalidBatchResponseError: /),
    ]);
    expect(reports[3]?.failure).toBeUndefined();
    expect(errors).toHaveLength(3);
  });
});

describe('stream poller: whole-batch failures', () => {
  it('bisects a throwing batch down to the poison record, delivers the records around it, and everything in order once it heals', async () => {
    const table = await newStream();
    // Four items, eight records; b:3 is the poison.
    await put(table, 'a', 'a', { v: { N: '1' } });
    await put(table, 'b', 'b', { v: { N: '1' } });
    await setVersion(table, 'a', 'a', 2);
    await put(table, 'c', 'c', { v: { N: '1' } });
    await setVersion(table, 'b', 'b', 2);
    await setVersion(table, 'b', 'b', 3, true);
    await setVersion(table, 'c', 'c', 2);
    await put(table, 'd', 'd', { v: { N: '1' } });
    let healed = false;
    const { invocations, handler, succeeded } = recorder(async (call) => {
      if (!healed && call.records.some((record) => record.dynamodb?.NewImage?.poison !== undefined)) {
        throw new Error('poison');
      }
      return undefined;
    });
    const poisonAlone = () => invocations.filter((call) => call.labels.join() === 'b:3').length;

    const { poller, errors } = start(table, handler, { batchSize: 8 });
    await vi.waitFor(() => expect(poisonAlone()).toBeGreaterThanOrEqual(2), {
      timeout: 10_000,
      interval: 20,
    });
    const succeededWhilePoisoned = succeeded();
    healed = true;
    await poller.caughtUp();
    await setVersion(table, 'd', 'd', 2);
    await poller.caughtUp();

    const calls = invocations.map(({ labels, ok }) => ({ labels, ok }));
    expect(calls.slice(0, 6)).toEqual([
      { labels: ['a:1', 'b:1', 'a:2', 'c:1', 'b:2', 'b:3', 'c:2', 'd:1'], ok: false },
      { labels: ['a:1', 'b:1', 'a:2', 'c:1'], ok: true },
      { labels: ['b:2', 'b:3', 'c:2', 'd:1'], ok: false },
      { labels: ['b:2', 'b:3'], ok: false },
      { labels: ['b:2'], ok: true },
      { labels: ['b:3'], ok: false },
    ]);
    const healedAt = calls.findIndex((call, index) => index > 5 && call.ok);
    expect(calls.slice(5, healedAt).every((call) => call.labels.join() === 'b:3' && !call.ok)).toBe(true);
    expect(calls.slice(healedAt)).toEqual([
      { labels: ['b:3'], ok: true },
      { labels: ['c:2', 'd:1'], ok: true },
      { labels: ['d:2'], ok: true },
    ]);
    expect(succeededWhilePoisoned).toEqual(['a:1', 'b:1', 'a:2', 'c:1', 'b:2']);
    // Every record once, in write order: so in order per item too.
    expect(succeeded()).toEqual(['a:1', 'b:1', 'a:2', 'c:1', 'b:2', 'b:3', 'c:2', 'd:1', 'd:2']);
    expect(errors).toHaveLength(healedAt - 2);
    expect(errors.every((error) => error instanceof Error && error.message === 'poison')).toBe(true);
  });

  it('fails a batch whose handler outlives timeoutMs, and hands it over again', async () => {
    const table = await newStream();
    await putNumbered(table, 2);
    const { invocations, handler } = recorder(async (_, index) => {
      if (index === 0) await sleep(400);
      return undefined;
    });

    const { poller, reports } = start(table, handler, { timeoutMs: 150, bisectBatchOnError: false });
    await poller.caughtUp();

    expect(invocations.map((call) => call.labels)).toEqual([
      ['0', '1'],
      ['0', '1'],
    ]);
    expect(reports[0]).toMatchObject({
      retried: 2,
      failure: 'InvocationTimeoutError: Task timed out after 0.15 seconds',
    });
  });
});

describe('stream poller: DynamoDB Local answering a fresh read with TrimmedDataAccessException', () => {
  /** A streams client on DynamoDB Local whose GetRecords calls fail as `trimmed` says, before reaching it. */
  function trimmingStreams(trimmed: (call: number) => boolean) {
    const client = streamsClient();
    let calls = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetRecordsCommand' && trimmed(calls++)) {
          throw Object.assign(
            new Error('The operation attempted to read past the oldest stream record in a shard.'),
            {
              name: 'TrimmedDataAccessException',
            },
          );
        }
        return next(args);
      },
      { step: 'initialize', name: 'trimmedReads' },
    );
    return client;
  }

  it('reads again from a fresh iterator at once, loses nothing and reports nothing', async () => {
    const table = await newStream();
    await putNumbered(table, 3);
    const { handler, succeeded } = recorder();
    const { poller, errors } = start(table, handler, { streams: trimmingStreams((call) => call === 0) });

    await poller.caughtUp();

    expect(succeeded()).toEqual(['0', '1', '2']);
    expect(errors).toEqual([]);
  });

  it('reports it when the fresh iterator is trimmed too, and reads on once it is not', async () => {
    const table = await newStream();
    await putNumbered(table, 3);
    const { handler, succeeded } = recorder();
    const { poller, errors } = start(table, handler, { streams: trimmingStreams((call) => call < 2) });

    await poller.caughtUp();

    expect(succeeded()).toEqual(['0', '1', '2']);
    expect(errors.map((error) => (error as Error).name)).toEqual(['TrimmedDataAccessException']);
  });
});

describe('stream poller: lifecycle', () => {
  it('resolves caughtUp() only after every earlier write was handed over and succeeded', async () => {
    const table = await newStream();
    let failedOnce = false;
    const { handler, succeeded } = recorder(async (call) => {
      await sleep(30);
      const third = call.records.find((record) => label(record) === '2');
      if (third === undefined || failedOnce) return undefined;
      failedOnce = true;
      return failuresFor(third);
    });
    const { poller } = start(table, handler, { batchSize: 2 });

    await putNumbered(table, 6);
    await poller.caughtUp();
    const afterFirstCatchUp = succeeded();
    await put(table, 'item', '6');
    await put(table, 'item', '7');
    await poller.caughtUp();

    expect(failedOnce).toBe(true);
    expect(afterFirstCatchUp).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(succeeded()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  it('keeps caughtUp() waiting while a record is still being retried', async () => {
    const table = await newStream();
    await putNumbered(table, 1);
    let healed = false;
    const { handler, succeeded } = recorder(async () => {
      if (!healed) throw new Error('not yet');
      return undefined;
    });
    const { poller } = start(table, handler);

    const caughtUp = poller.caughtUp().then(() => 'caught up');
    const whileFailing = await Promise.race([caughtUp, sleep(700).then(() => 'waiting')]);
    healed = true;

    expect(whileFailing).toBe('waiting');
    expect(await caughtUp).toBe('caught up');
    expect(succeeded()).toEqual(['0']);
  });

  it('ends promptly on stop(), even in a retry backoff, hands nothing over after it, and stop() is idempotent', async () => {
    const table = await newStream();
    await putNumbered(table, 1);
    const { invocations, handler } = recorder(async () => {
      throw new Error('always');
    });
    const { poller } = start(table, handler);
    // Failures 1-4 back off 100, 200, 400, 800 ms; the 5th starts a 1,600 ms backoff.
    await vi.waitFor(() => expect(invocations.length).toBeGreaterThanOrEqual(5), {
      timeout: 10_000,
      interval: 10,
    });

    const stopping = Date.now();
    const first = poller.stop();
    const second = poller.stop();
    await first;
    const tookMs = Date.now() - stopping;
    const invocationsAtStop = invocations.length;
    await sleep(500);

    expect(tookMs).toBeLessThan(1_000);
    expect(second).toBe(first);
    await expect(poller.stop()).resolves.toBeUndefined();
    expect(invocations).toHaveLength(invocationsAtStop);
    await expect(poller.caughtUp()).rejects.toThrow(/stopped/);
  });

  it('lets the batch in hand finish before stop() resolves', async () => {
    const table = await newStream();
    await putNumbered(table, 1);
    let finished = false;
    const { invocations, handler } = recorder(async () => {
      await sleep(300);
      finished = true;
      return undefined;
    });
    const { poller, reports } = start(table, handler);
    await vi.waitFor(() => expect(invocations).toHaveLength(1), { timeout: 5_000, interval: 10 });

    await poller.stop();

    expect(finished).toBe(true);
    expect(reports).toMatchObject([{ records: 1, retried: 0 }]);
  });

  it('skips the records written before it started when startingPosition is LATEST', async () => {
    const table = await newStream();
    await putNumbered(table, 3, 'old');
    const { handler, succeeded } = recorder();
    const started = Date.now();
    const { poller } = start(table, handler, { startingPosition: 'LATEST' });
    // Once caught up, the poller holds an iterator at the end of the shard: what comes now is new.
    await poller.caughtUp();
    const positionedMs = Date.now() - started;

    await put(table, 'new', 'a');
    await put(table, 'new', 'b');
    await poller.caughtUp();

    expect(succeeded()).toEqual(['a', 'b']);
    // caughtUp() asks for a fresh listing and read rather than waiting for the 10 s listing interval.
    expect(positionedMs).toBeLessThan(5_000);
  });
});

describe('stream poller: shard lineage (a mocked stream; DynamoDB Local never splits its one shard)', () => {
  function streamRecord(sequenceNumber: string): _Record {
    return {
      eventID: `event-${sequenceNumber}`,
      eventName: 'INSERT',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: LOCAL_REGION,
      dynamodb: {
        ApproximateCreationDateTime: new Date(),
        Keys: { pk: { S: 'item' }, sk: { S: sequenceNumber } },
        SequenceNumber: sequenceNumber,
        SizeBytes: 20,
        StreamViewType: 'KEYS_ONLY',
      },
    };
  }

  it('reads a parent shard to its end before its children, and lists the shards again as soon as one closes', async () => {
    const fake = new DynamoDBStreamsClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const mock = mockClient(fake);
    const log: string[] = [];
    const parent = { ShardId: 'shard-parent' };
    const childA = { ShardId: 'shard-a', ParentShardId: 'shard-parent' };
    const childB = { ShardId: 'shard-b', ParentShardId: 'shard-parent' };
    mock
      .on(DescribeStreamCommand)
      // The first listing names a child before its parent; the second, after the parent closed, a new child.
      .resolvesOnce({ StreamDescription: { Shards: [childA, parent] } })
      .resolves({ StreamDescription: { Shards: [parent, childA, childB] } });
    for (const shardId of ['shard-parent', 'shard-a', 'shard-b']) {
      mock.on(GetShardIteratorCommand, { ShardId: shardId }).callsFake(() => {
        log.push(`iterator ${shardId}`);
        return { ShardIterator: `${shardId}/1` };
      });
    }
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-parent/1' })
      .resolves({ Records: [streamRecord('101'), streamRecord('102')], NextShardIterator: 'shard-parent/2' });
    // No NextShardIterator: the parent is closed.
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-parent/2' })
      .resolves({ Records: [streamRecord('103')] });
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-a/1' })
      .resolves({ Records: [streamRecord('201')], NextShardIterator: 'shard-a/2' });
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-a/2' })
      .resolves({ Records: [], NextShardIterator: 'shard-a/2' });
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-b/1' })
      .resolves({ Records: [streamRecord('301')], NextShardIterator: 'shard-b/2' });
    mock
      .on(GetRecordsCommand, { ShardIterator: 'shard-b/2' })
      .resolves({ Records: [], NextShardIterator: 'shard-b/2' });
    const { handler } = recorder(async (call, index) => {
      log.push(`handled ${call.records.map(seq).join(',')}`);
      // The parent's records must all succeed before a child starts, retries included.
      return index === 0 ? failuresFor(call.records[1] as DynamoDBRecord) : undefined;
    });

    const started = Date.now();
    const { poller, errors } = start(
      { streamArn: 'arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x' },
      handler,
      // A wide window: the parent's two reads must make one batch even on a busy machine.
      { streams: fake, batchingWindowMs: 300 },
    );
    await poller.caughtUp();

    expect(log.slice(0, 3)).toEqual(['iterator shard-parent', 'handled 101,102,103', 'handled 102,103']);
    expect(log.slice(3).sort()).toEqual([
      'handled 201',
      'handled 301',
      'iterator shard-a',
      'iterator shard-b',
    ]);
    expect(log.indexOf('handled 201')).toBeGreaterThan(log.indexOf('iterator shard-a'));
    expect(log.indexOf('handled 301')).toBeGreaterThan(log.indexOf('iterator shard-b'));
    // The periodic listing is 10 s apart: shard-b was found because the parent closed.
    expect(mock.commandCalls(DescribeStreamCommand).length).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(errors).toEqual([]);
  });
});
