import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { sleep } from '../../lambdas/core/backoff';
import {
  type InitializeRequest,
  initializeTask,
  subtaskShard,
  type TaskRecord,
} from '../../lambdas/core/task';
import { counterItem, subtaskItem, taskItem } from '../../lambdas/store/task-items';
import type { TaskStore } from '../../lambdas/store/task-store';

/** BatchWriteItem takes 25 items a call. */
const BATCH = 25;
const PARALLEL_BATCHES = 8;

/**
 * A task of many subtasks, ready, in a fraction of the time `initialize` takes on DynamoDB Local (which writes
 * a few hundred conditional puts a second): the very records `initializeTask` makes, written unconditionally in
 * batches, under a task item that says every subtask is written. The store's own `initialize` then resumes it
 * and marks it ready. For tests about what comes after initialization on large tasks; initialization itself is
 * tested through `initialize`.
 */
export async function seedInitializedTask(
  db: DynamoDBDocumentClient,
  store: TaskStore,
  request: InitializeRequest,
  nowMs: number,
): Promise<TaskRecord> {
  const { task, counters, subtasks } = initializeTask(request, nowMs, randomUUID());
  const items = [
    ...counters.map(counterItem),
    ...subtasks.map((subtask) => subtaskItem(subtask, subtaskShard(task, subtask.subtask_id))),
  ];
  const batches = Array.from({ length: Math.ceil(items.length / BATCH) }, (_, index) =>
    items.slice(index * BATCH, (index + 1) * BATCH),
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL_BATCHES }, async () => {
      for (let batch = batches[next++]; batch !== undefined; batch = batches[next++]) {
        await writeAll(db, store.tableName, batch);
      }
    }),
  );
  await db.send(
    new PutCommand({
      TableName: store.tableName,
      Item: taskItem({ ...task, init_written: subtasks.length }),
    }),
  );
  return (await store.initialize(request, nowMs)).task;
}

async function writeAll(
  db: DynamoDBDocumentClient,
  tableName: string,
  items: readonly object[],
): Promise<void> {
  let requests = items.map((item) => ({ PutRequest: { Item: item as Record<string, unknown> } }));
  for (let attempt = 0; requests.length > 0; attempt++) {
    if (attempt === 10)
      throw new Error(`${requests.length} items still unprocessed after ${attempt} batch writes`);
    if (attempt > 0) await sleep(50 * attempt);
    const { UnprocessedItems } = await db.send(
      new BatchWriteCommand({ RequestItems: { [tableName]: requests } }),
    );
    requests = (UnprocessedItems?.[tableName] ?? []).flatMap((request) =>
      request.PutRequest?.Item === undefined ? [] : [{ PutRequest: { Item: request.PutRequest.Item } }],
    );
  }
}
