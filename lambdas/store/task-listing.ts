/**
 * `GET /tasks` on the sparse listing indexes: one `Query` newest first (more only when a filter skips entries),
 * then one `BatchGetItem` of the listed task items for the rows, so a page of 50 is two calls. The indexes hold
 * keys and the state only, written at initialize and at the end: the rows' live counts come from the task items.
 */
import type { QueryCommandInput, QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import {
  LIST_ROW_ATTRIBUTES,
  type ListedTask,
  type ListPosition,
  listPlan,
  type TaskListPage,
  type TaskListQuery,
} from '../core/task-listing';
import { LIST_INDEXES, TABLE_KEYS } from '../service-settings';
import { type ItemKey, LIST_PARTITION, parseKey, taskFromItem, taskKey } from './task-items';

/** The position of an index entry: its creation time and, from its table key, the task id. */
function positionOf(key: Record<string, unknown>, sortKey: string): ListPosition | undefined {
  const createdAt = key[sortKey];
  const pk = key[TABLE_KEYS.partitionKey];
  const sk = key[TABLE_KEYS.sortKey];
  if (typeof createdAt !== 'string' || typeof pk !== 'string' || typeof sk !== 'string') return undefined;
  const parsed = parseKey(pk, sk);
  return parsed.kind === 'task' ? { createdAt, taskId: parsed.taskId } : undefined;
}

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
  const listed: string[] = [];
  let after = query.after;
  let budget = query.readBudget;
  let more = true;
  while (more && listed.length < query.limit && budget > 0) {
    const limit = Math.min(query.limit - listed.length, budget);
    const page = await reads.query({
      IndexName: index.indexName,
      KeyConditionExpression: '#partition = :partition',
      ScanIndexForward: false,
      Limit: limit,
      ...(plan.filter === undefined ? {} : { FilterExpression: `#state ${plan.filter.op} :state` }),
      ExpressionAttributeNames: {
        '#partition': index.partitionKey,
        ...(plan.filter === undefined ? {} : { '#state': LIST_INDEXES.stateAttribute }),
      },
      ExpressionAttributeValues: {
        ':partition': partition,
        ...(plan.filter === undefined ? {} : { ':state': plan.filter.state }),
      },
      ...(after === undefined
        ? {}
        : {
            ExclusiveStartKey: {
              ...taskKey(after.taskId),
              [index.partitionKey]: partition,
              [index.sortKey]: after.createdAt,
            },
          }),
    });
    budget -= page.ScannedCount ?? limit;
    listed.push(...(page.Items ?? []).flatMap((item) => positionOf(item, index.sortKey)?.taskId ?? []));
    const last =
      page.LastEvaluatedKey === undefined ? undefined : positionOf(page.LastEvaluatedKey, index.sortKey);
    more = last !== undefined;
    if (last !== undefined) after = last;
  }
  const items = await reads.rows(listed.map(taskKey), LIST_ROW_ATTRIBUTES);
  const byId = new Map(
    items.map((item): [string, ListedTask] => {
      const task = taskFromItem(item);
      return [task.task_id, task];
    }),
  );
  // In index order; a task removed (TTL) between the two reads is left out.
  const tasks = listed.flatMap((id) => byId.get(id) ?? []);
  return more && after !== undefined ? { tasks, next: after } : { tasks };
}
