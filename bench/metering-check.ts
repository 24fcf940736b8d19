/**
 * Before the runs, the metering prices the exact item shapes the runs write, and DynamoDB Local prices the same
 * items on plain `PutItem` and `UpdateItem`, where its `ConsumedCapacity` follows DynamoDB's rules, due index
 * writes included (an item entering the sparse index, its key moving, leaving it); then the three consistent
 * reads the service makes (GetItem of the task, BatchGetItem of subtasks, Query of a shard) are priced by the 4 KB
 * rule and compared with what DynamoDB Local reports, which is what the runs count.
 */

import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { recountShard } from '../lambdas/core/fold';
import { createSubtaskStatus } from '../lambdas/core/subtask-status';
import { initializeTask, type SubtaskRecord } from '../lambdas/core/task';
import { DUE_INDEX, TABLE_KEYS } from '../lambdas/service-settings';
import {
  counterItem,
  SUBTASK_SORT_KEY_PREFIX,
  shardPartition,
  subtaskItem,
  taskItem,
} from '../lambdas/store/task-items';
import {
  batchGetReadUnits,
  indexEntries,
  itemBytes,
  itemReadUnits,
  queryReadUnits,
  singleWriteUnits,
  tableIndexWriteUnits,
  writeUnitsForBytes,
} from '../test/support/metering';
import { subtaskIdsFor } from '../test/support/workload';
import { MODEL_SUBTASKS } from './model';

export interface MeteringCheck {
  readonly item: string;
  readonly bytes: number;
  readonly meteredUnits: number;
  readonly reportedUnits: number | undefined;
  readonly agrees: boolean;
}

export interface ReadCheck {
  readonly read: string;
  readonly items: number;
  readonly bytes: number;
  readonly meteredUnits: number;
  readonly reportedUnits: number | undefined;
  readonly agrees: boolean;
}

/** Subtasks of the sample shard read back by Query and BatchGetItem. */
const SAMPLE_SUBTASKS = 150;

/** A subtask as it ends: a terminal status with realistic counts, written a few times. */
function finished(subtask: SubtaskRecord, index: number): SubtaskRecord {
  return {
    ...subtask,
    status: createSubtaskStatus(subtask.subtask_id, {
      succeeded: 40 + (index % 60),
      failed: index % 7,
      skipped: index % 3,
      retried_withmax: index % 2,
      state: index % 9 === 0 ? 'FAILURE' : 'SUCCESS',
    }),
    version: 3,
    updated_at: new Date().toISOString(),
  };
}

export async function checkMetering(
  db: DynamoDBDocumentClient,
  tableName: string,
): Promise<{ writes: MeteringCheck[]; reads: ReadCheck[] }> {
  const nowMs = Date.now();
  const sample = initializeTask(
    {
      taskId: 'metering-check',
      actionName: 'emailed',
      total: SAMPLE_SUBTASKS * 100,
      subtaskIds: subtaskIdsFor(SAMPLE_SUBTASKS),
    },
    nowMs,
    randomUUID(),
  );
  const large = initializeTask(
    {
      taskId: 'metering-check-large',
      actionName: 'emailed',
      total: MODEL_SUBTASKS * 100,
      subtaskIds: subtaskIdsFor(MODEL_SUBTASKS),
    },
    nowMs,
    randomUUID(),
  );
  const subtasks = sample.subtasks.map(finished);
  const counter = recountShard(sample.task, 0, subtasks);
  const dueAt = Math.floor(nowMs / 1000) + 900;
  const midRun = {
    ...sample.task,
    ready: true,
    version: 1_234,
    init_written: SAMPLE_SUBTASKS,
    task_output: { ...sample.task.task_output, ...counter.counts, duration_ms: 123_456 },
    in_flight: { attempted: 1_234, succeeded: 1_200, failed: 34, skipped: 12 },
    subtasks: {
      total: SAMPLE_SUBTASKS,
      succeeded: counter.subtasks_succeeded,
      failed: counter.subtasks_failed,
    },
    counters_vsum: counter.vsum,
  };
  const samples: [string, object][] = [
    ['PutItem of a task item (ready, mid-run; enters the due index)', taskItem(midRun, dueAt)],
    [
      `PutItem of a task item of ${MODEL_SUBTASKS.toLocaleString('en-US')} subtasks (the model's; due index)`,
      taskItem({ ...large.task, ready: true }, dueAt),
    ],
    ['PutItem of a shard counter item', counterItem(counter)],
    ...subtasks.map((subtask): [string, object] => [
      'PutItem of a subtask item (terminal)',
      subtaskItem(subtask, 0),
    ]),
  ];
  const writes: MeteringCheck[] = [];
  // A few at a time: hundreds of puts at once make DynamoDB Local time out on its locks.
  let next = 0;
  const putNext = async () => {
    for (let index = next++; index < samples.length; index = next++) {
      const [item, value] = samples[index] as [string, object];
      const { ConsumedCapacity } = await db.send(
        new PutCommand({
          TableName: tableName,
          Item: value as Record<string, unknown>,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      // One line per shape: the first subtask stands for all of them.
      if (index > 3) continue;
      const bytes = itemBytes(value);
      const meteredUnits = writeUnitsForBytes(bytes) + tableIndexWriteUnits(undefined, indexEntries(value));
      const reportedUnits = ConsumedCapacity?.CapacityUnits;
      writes[index] = { item, bytes, meteredUnits, reportedUnits, agrees: reportedUnits === meteredUnits };
    }
  };
  await Promise.all(Array.from({ length: 8 }, putNext));

  // The fold's task writes, as UpdateItem: the due index key kept, moved, removed.
  const taskBefore = samples[0]?.[1] as Record<string, unknown>;
  const updates: [string, string, Record<string, unknown>, string | undefined][] = [
    ['UpdateItem of the task, due_at kept', 'SET #v = :v, #due_at = :due', { ':due': dueAt }, `DUE|${dueAt}`],
    [
      'UpdateItem of the task, due_at moved',
      'SET #v = :v, #due_at = :due',
      { ':due': dueAt + 60 },
      `DUE|${dueAt + 60}`,
    ],
    [
      // Out of the due index, and into another partition of the state index (the listing indexes' one change).
      'UpdateItem of the task, ending (due entry removed, state entries moved)',
      'SET #v = :v, #task_state = :ended REMOVE #due_pk, #due_at',
      { ':ended': 'SUCCESS' },
      undefined,
    ],
  ];
  let before = taskBefore;
  for (const [item, expression, values, afterDue] of updates) {
    const { Attributes, ConsumedCapacity } = await db.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { [TABLE_KEYS.partitionKey]: taskBefore.pk, [TABLE_KEYS.sortKey]: taskBefore.sk },
        UpdateExpression: expression,
        ExpressionAttributeNames: {
          '#v': 'version',
          '#due_at': DUE_INDEX.sortKey,
          ...(afterDue === undefined
            ? { '#due_pk': DUE_INDEX.partitionKey, '#task_state': 'task_state' }
            : {}),
        },
        ExpressionAttributeValues: { ':v': 1_235, ...values },
        ReturnValues: 'ALL_NEW',
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const after = Attributes ?? {};
    const meteredUnits =
      singleWriteUnits({ before, after }) + tableIndexWriteUnits(indexEntries(before), indexEntries(after));
    const reportedUnits = ConsumedCapacity?.CapacityUnits;
    writes.push({
      item,
      bytes: itemBytes(after),
      meteredUnits,
      reportedUnits,
      agrees: reportedUnits === meteredUnits,
    });
    before = after;
  }

  const reads: ReadCheck[] = [];
  const check = (read: string, sizes: readonly number[], metered: number, reported: number | undefined) =>
    reads.push({
      read,
      items: sizes.length,
      bytes: sizes.reduce((sum, bytes) => sum + bytes, 0),
      meteredUnits: metered,
      reportedUnits: reported,
      agrees: reported === metered,
    });

  const largeItem = samples[1]?.[1] as Record<string, unknown>;
  const get = await db.send(
    new GetCommand({
      TableName: tableName,
      Key: { [TABLE_KEYS.partitionKey]: largeItem.pk, [TABLE_KEYS.sortKey]: largeItem.sk },
      ConsistentRead: true,
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  const getSize = get.Item === undefined ? 0 : itemBytes(get.Item);
  check('GetItem (task item)', [getSize], itemReadUnits(getSize), get.ConsumedCapacity?.CapacityUnits);

  const keys = subtasks.slice(0, 100).map((subtask) => {
    const { pk, sk } = subtaskItem(subtask, 0);
    return { pk, sk };
  });
  const batch = await db.send(
    new BatchGetCommand({
      RequestItems: { [tableName]: { Keys: keys, ConsistentRead: true } },
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  const batchSizes = (batch.Responses?.[tableName] ?? []).map(itemBytes);
  check(
    'BatchGetItem (100 subtasks)',
    batchSizes,
    batchGetReadUnits(batchSizes),
    batch.ConsumedCapacity?.[0]?.CapacityUnits,
  );

  const query = await db.send(
    new QueryCommand({
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
      ExpressionAttributeValues: {
        ':pk': shardPartition('metering-check', 0),
        ':prefix': SUBTASK_SORT_KEY_PREFIX,
      },
      ConsistentRead: true,
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  const querySizes = (query.Items ?? []).map(itemBytes);
  check(
    `Query (a shard of ${SAMPLE_SUBTASKS} subtasks)`,
    querySizes,
    queryReadUnits(querySizes),
    query.ConsumedCapacity?.CapacityUnits,
  );
  return { writes, reads };
}
