/**
 * `GET /tasks` on the sparse listing indexes: one `Query` newest first (more only when a filter skips entries),
 * then one `BatchGetItem` of the listed task items for the rows, so a page of 50 is two calls. The indexes hold
 * keys and the state only, both written at initialize and at the end: the rows' live counts come from the task
 * items themselves.
 */
import type { QueryCommandInput, QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import {
  LIST_ROW_ATTRIBUTES,
  type ListedTask,
  listPlan,
  type TaskListPage,
  type TaskListQuery,
} from '../core/task-listing';
import { LIST_INDEXES } from '../service-settings';
import { type ItemKey, LIST_PARTITION, listedTaskId, taskFromItem, taskKey } from './task-items';

/** The two reads a listing makes, as the store sends them (metered, retried on unprocessed keys). */
export interface ListingReads {
  query(input: Omit<QueryCommandInput, 'TableName'>): Promise<QueryCommandOutput>;
  /** Eventually consistent, like the index itself: a list row is a snapshot. */
  rows(keys: readonly ItemKey[], attributes: readonly string[]): Promise<Record<string, unknown>[]>;
}

export async function listTasks(reads: ListingReads, query: TaskListQuery): Promise<TaskListPage> {
  const plan = listPlan(query.state, query.group);
  const index = LIST_INDEXES[plan.index];
  const partition = plan.partition ?? LIST_PARTITION;
  const listKeys: string[] = [];
  let after = query.after;
  let budget = query.readBudget;
  let more = true;
  while (more && listKeys.length < query.limit && budget > 0) {
    const limit = Math.min(query.limit - listKeys.length, budget);
    const page = await reads.query({
      IndexName: index.indexName,
      KeyConditionExpression: '#list_pk = :partition',
      ScanIndexForward: false,
      Limit: limit,
      ...(plan.filter === undefined ? {} : { FilterExpression: `#list_state ${plan.filter.op} :state` }),
      ExpressionAttributeNames: {
        '#list_pk': index.partitionKey,
        ...(plan.filter === undefined ? {} : { '#list_state': LIST_INDEXES.stateAttribute }),
      },
      ExpressionAttributeValues: {
        ':partition': partition,
        ...(plan.filter === undefined ? {} : { ':state': plan.filter.state }),
      },
      ...(after === undefined
        ? {}
        : {
            ExclusiveStartKey: {
              ...taskKey(listedTaskId(after)),
              [index.partitionKey]: partition,
              [index.sortKey]: after,
            },
          }),
    });
    budget -= page.ScannedCount ?? limit;
    for (const item of page.Items ?? []) {
      const listKey = item[index.sortKey];
      if (typeof listKey === 'string') listKeys.push(listKey);
    }
    const lastKey = page.LastEvaluatedKey?.[index.sortKey];
    more = typeof lastKey === 'string';
    if (typeof lastKey === 'string') after = lastKey;
  }
  const ids = listKeys.map(listedTaskId);
  const items = await reads.rows(ids.map(taskKey), LIST_ROW_ATTRIBUTES);
  const byId = new Map(
    items.map((item): [string, ListedTask] => {
      const task = taskFromItem(item);
      return [task.task_id, task];
    }),
  );
  // In index order; a task removed (TTL) between the two reads is left out.
  const tasks = ids.flatMap((id) => byId.get(id) ?? []);
  return more && after !== undefined ? { tasks, next: after } : { tasks };
}
