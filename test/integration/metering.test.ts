/**
 * The bench's metering against DynamoDB Local's ReturnConsumedCapacity on plain PutItem and UpdateItem, where the
 * emulator prices writes as DynamoDB does, due index writes included; and on consistent GetItem, BatchGetItem and
 * Query, whose read units the bench takes from the emulator. (On transactions it does not price as DynamoDB does,
 * which is why the bench meters them.)
 */

import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import {
  batchGetReadUnits,
  indexWriteUnits,
  itemBytes,
  itemReadUnits,
  queryReadUnits,
  singleWriteUnits,
  transactionWriteUnits,
  writeUnitsForBytes,
} from '../support/metering';

let table: TestTable;
const db = () => documentClient(table.client);

beforeAll(async () => {
  table = await newTaskTable();
});

/** An item of every attribute type the service writes, padded with a string to exactly `bytes`. */
function itemOf(bytes: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = {
    pk: `TASK#${uniqueName('metering')}`,
    sk: 'TASK',
    version: 12,
    start_time: 1_764_386_774.123,
    task_output: { action_name: 'emailed', attempted: 110, succeeded: 101, failed: 9, skipped: 0 },
    tags: ['a', 1.5, null, true],
    ...extra,
    pad: '',
  };
  return { ...base, pad: 'x'.repeat(bytes - itemBytes(base)) };
}

async function putUnits(item: Record<string, unknown>): Promise<number | undefined> {
  const { ConsumedCapacity } = await db().send(
    new PutCommand({ TableName: table.tableName, Item: item, ReturnConsumedCapacity: 'TOTAL' }),
  );
  return ConsumedCapacity?.CapacityUnits;
}

describe('metering against DynamoDB Local', () => {
  it.each([512, 1_000, 1_536, 3_072])(
    'prices a new item of about %d bytes like PutItem does',
    async (bytes) => {
      const item = itemOf(bytes);

      const reported = await putUnits(item);

      expect(itemBytes(item)).toBe(bytes);
      expect(reported).toBe(singleWriteUnits({ after: item }));
    },
  );

  it.each([
    ['plain attributes', {}],
    ['numbers whose digits pair differently', { a: 110, b: 1.5, c: -5, d: 0.05, e: 12.5 }],
    ['nested maps and lists', { m: { s: { a: 1 }, l: [[2], 'é✓'] } }],
  ])('agrees to the byte on the 1 KB boundary with %s', async (_label, extra) => {
    const atBoundary = itemOf(1_024, extra);
    const justOver = itemOf(1_025, extra);

    const [reportedAt, reportedOver] = [await putUnits(atBoundary), await putUnits(justOver)];

    expect([reportedAt, reportedOver]).toEqual([1, 2]);
    expect([writeUnitsForBytes(itemBytes(atBoundary)), writeUnitsForBytes(itemBytes(justOver))]).toEqual([
      1, 2,
    ]);
  });

  it('prices an UpdateItem that grows the item on the item after the update', async () => {
    const before = itemOf(512);
    await putUnits(before);
    const after = itemOf(3_000, { pk: before.pk });

    const { ConsumedCapacity } = await db().send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { pk: before.pk, sk: before.sk },
        UpdateExpression: 'SET #pad = :pad',
        ExpressionAttributeNames: { '#pad': 'pad' },
        ExpressionAttributeValues: { ':pad': after.pad },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );

    expect(ConsumedCapacity?.CapacityUnits).toBe(singleWriteUnits({ before, after }));
    expect(ConsumedCapacity?.CapacityUnits).toBe(3);
  });

  it('prices an UpdateItem that shrinks the item on the item before the update', async () => {
    const before = itemOf(3_000);
    await putUnits(before);
    const after = itemOf(512, { pk: before.pk });

    const { ConsumedCapacity } = await db().send(
      new UpdateCommand({
        TableName: table.tableName,
        Key: { pk: before.pk, sk: before.sk },
        UpdateExpression: 'SET #pad = :pad',
        ExpressionAttributeNames: { '#pad': 'pad' },
        ExpressionAttributeValues: { ':pad': after.pad },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );

    expect(ConsumedCapacity?.CapacityUnits).toBe(singleWriteUnits({ before, after }));
    expect(ConsumedCapacity?.CapacityUnits).toBe(3);
  });

  it('prices a PutItem over an existing item on the larger of the two', async () => {
    const before = itemOf(2_100);
    await putUnits(before);
    const after = itemOf(700, { pk: before.pk });

    const reported = await putUnits(after);

    expect(reported).toBe(singleWriteUnits({ before, after }));
    expect(reported).toBe(3);
  });

  it('under-reports transactions, which is why the bench meters them itself', async () => {
    const items = [itemOf(500), itemOf(500), itemOf(500)];

    const { ConsumedCapacity } = await db().send(
      new TransactWriteCommand({
        TransactItems: items.map((item) => ({ Put: { TableName: table.tableName, Item: item } })),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );

    const reported = ConsumedCapacity?.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
    expect(transactionWriteUnits(items.map((item) => ({ after: item })))).toBe(6);
    expect(reported).toBeLessThan(6);
  });
});

describe('due index writes against DynamoDB Local', () => {
  it('prices entering, keeping, moving and leaving the sparse index as the guide does', async () => {
    const pk = `TASK#${uniqueName('due')}`;
    const key = { pk, sk: 'TASK' };
    const update = async (expression: string, values: Record<string, unknown> = {}) => {
      const { ConsumedCapacity } = await db().send(
        new UpdateCommand({
          TableName: table.tableName,
          Key: key,
          UpdateExpression: expression,
          ...(Object.keys(values).length === 0 ? {} : { ExpressionAttributeValues: values }),
          ReturnConsumedCapacity: 'INDEXES',
        }),
      );
      return ConsumedCapacity?.GlobalSecondaryIndexes?.due?.CapacityUnits ?? 0;
    };
    await putUnits({ ...key, version: 1 });

    const entering = await update('SET due_pk = :pk, due_at = :at', { ':pk': 'DUE', ':at': 100 });
    const keeping = await update('SET due_at = :at, version = :v', { ':at': 100, ':v': 2 });
    const moving = await update('SET due_at = :at', { ':at': 160 });
    const leaving = await update('REMOVE due_pk, due_at');

    expect([entering, keeping, moving, leaving]).toEqual([
      indexWriteUnits(undefined, 'DUE|100'),
      indexWriteUnits('DUE|100', 'DUE|100'),
      indexWriteUnits('DUE|100', 'DUE|160'),
      indexWriteUnits('DUE|160', undefined),
    ]);
    expect([entering, keeping, moving, leaving]).toEqual([1, 0, 2, 1]);
  });
});

describe('read units against DynamoDB Local', () => {
  it('prices a consistent GetItem by the 4 KB rule', async () => {
    const items = [itemOf(4_096), itemOf(4_097)];
    for (const item of items) await putUnits(item);

    const reported = [];
    for (const item of items) {
      const { ConsumedCapacity } = await db().send(
        new GetCommand({
          TableName: table.tableName,
          Key: { pk: item.pk, sk: item.sk },
          ConsistentRead: true,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      reported.push(ConsumedCapacity?.CapacityUnits);
    }

    expect(reported).toEqual(items.map((item) => itemReadUnits(itemBytes(item))));
    expect(reported).toEqual([1, 2]);
  });

  it('prices a consistent Query on the sum of the items, and a BatchGetItem item by item', async () => {
    const pk = `TASK#${uniqueName('reads')}#0`;
    const items = Array.from({ length: 40 }, (_, index) => ({
      ...itemOf(300 + index * 7, { pk }),
      sk: `SUB#${String(index).padStart(3, '0')}`,
    }));
    await Promise.all(items.map(putUnits));
    const sizes = items.map(itemBytes);

    const query = await db().send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': pk },
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const batch = await db().send(
      new BatchGetCommand({
        RequestItems: {
          [table.tableName]: { Keys: items.map((item) => ({ pk, sk: item.sk })), ConsistentRead: true },
        },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );

    expect(query.ConsumedCapacity?.CapacityUnits).toBe(queryReadUnits(sizes));
    expect(batch.ConsumedCapacity?.[0]?.CapacityUnits).toBe(batchGetReadUnits(sizes));
    expect(batchGetReadUnits(sizes)).toBe(40);
  });
});
