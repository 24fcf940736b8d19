/**
 * Subtask items: the applier's reads and versioned writes, a shard's recount input, the API's listing and the
 * sweeper's pages of running subtasks.
 */
import { listPage, type ShardPosition } from '../core/subtask-listing';
import type { SubtaskState } from '../core/subtask-status';
import { type SubtaskRecord, subtaskShard, type TaskRecord } from '../core/task';
import { TABLE_KEYS } from '../service-settings';
import { subtaskUnchanged } from './conditions';
import { attributeNames } from './expressions';
import type { ReadOptions, Table } from './table';
import {
  SUBTASK_SORT_KEY_PREFIX,
  shardPartition,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
} from './task-items';

export interface SubtaskQuery {
  readonly state?: SubtaskState;
  readonly limit: number;
  /** Items one request may read at most, matching or not: a filtered page may come back short. */
  readonly readBudget: number;
  readonly from?: ShardPosition;
}

export interface SubtaskPage {
  readonly subtasks: readonly SubtaskRecord[];
  /** Where the next page starts, when more may follow. */
  readonly next?: ShardPosition;
}

/** Which page of a shard's running subtasks to read. */
export interface RunningPage {
  readonly readItems: number;
  readonly after?: string;
  /** Only subtasks last heard from at or before this time (epoch ms). */
  readonly heardBefore?: number;
}

const IN_SHARD = '#pk = :pk AND begins_with(#sk, :prefix)';

/** The subtask id after which the shard continues, when the page did not read it to its end. */
function lastReadId(lastKey: Record<string, unknown> | undefined): string | undefined {
  const sortKey = lastKey?.[TABLE_KEYS.sortKey];
  return typeof sortKey === 'string' ? sortKey.slice(SUBTASK_SORT_KEY_PREFIX.length) : undefined;
}

export class SubtaskItems {
  constructor(private readonly table: Table) {}

  /**
   * The named subtasks of `task` (a consistent read unless asked otherwise); an id with no item of the task's
   * generation is simply absent from the map.
   */
  async getSubtasks(
    task: TaskRecord,
    subtaskIds: readonly string[],
    { consistent = true }: ReadOptions = {},
  ): Promise<Map<string, SubtaskRecord>> {
    const keys = subtaskIds.map((id) => subtaskKey(task.task_id, subtaskShard(task, id), id));
    const found = new Map<string, SubtaskRecord>();
    for (const item of await this.table.batchGet('subtask', keys, { consistent })) {
      const subtask = subtaskFromItem(item);
      if (subtask.generation === task.generation) found.set(subtask.subtask_id, subtask);
    }
    return found;
  }

  /**
   * Writes `subtask` (at `expectedVersion + 1`) if its item is still at `expectedVersion` in the same generation.
   * False on a conflict: another status of this subtask got there first, or the task was initialized again.
   */
  writeSubtask(task: TaskRecord, subtask: SubtaskRecord, expectedVersion: number): Promise<boolean> {
    return this.table.put(
      'subtask',
      subtaskItem(subtask, subtaskShard(task, subtask.subtask_id)),
      subtaskUnchanged(expectedVersion, task.generation),
    );
  }

  /** A query of shard `shard`'s subtask items, filtered by `filter` over `values` when given. */
  private shardQuery(task: TaskRecord, shard: number, filter?: string, values: Record<string, unknown> = {}) {
    return {
      KeyConditionExpression: IN_SHARD,
      ConsistentRead: true,
      ...(filter === undefined ? {} : { FilterExpression: filter }),
      ExpressionAttributeNames: attributeNames(IN_SHARD, filter ?? ''),
      ExpressionAttributeValues: {
        ':pk': shardPartition(task.task_id, shard),
        ':prefix': SUBTASK_SORT_KEY_PREFIX,
        ...values,
      },
    };
  }

  /** Every item in write shard `shard` of `task`, whatever its generation, read consistently: the recount's input. */
  async readShard(task: TaskRecord, shard: number): Promise<SubtaskRecord[]> {
    const items: SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.table.query('subtask', {
        ...this.shardQuery(task, shard),
        ExclusiveStartKey: startKey,
      });
      items.push(...(page.Items ?? []).map(subtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  /**
   * One page of a task's subtasks, shard by shard in id order within a shard, optionally only those in `state`.
   * Reads at most `readBudget` items, so a filter that matches little still answers promptly, with a cursor.
   */
  async listSubtasks(task: TaskRecord, query: SubtaskQuery): Promise<SubtaskPage> {
    const { state } = query;
    const page = await listPage(
      {
        writeShards: task.write_shards,
        limit: query.limit,
        readBudget: query.readBudget,
        filtered: state !== undefined,
        ...(query.from === undefined ? {} : { from: query.from }),
      },
      async ({ shard, after, limit }) => {
        const read = await this.table.query('subtask', {
          ...(state === undefined
            ? this.shardQuery(task, shard)
            : this.shardQuery(task, shard, '#status.#state = :state', { ':state': state })),
          ConsistentRead: false,
          Limit: limit,
          ...(after === undefined ? {} : { ExclusiveStartKey: subtaskKey(task.task_id, shard, after) }),
        });
        const lastRead = lastReadId(read.LastEvaluatedKey);
        return {
          items: (read.Items ?? [])
            .map(subtaskFromItem)
            .filter((subtask) => subtask.generation === task.generation),
          scanned: read.ScannedCount ?? limit,
          ...(lastRead === undefined ? {} : { lastReadId: lastRead }),
        };
      },
    );
    return { subtasks: page.items, ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /**
   * One page of the subtasks of one shard not yet ended (of the task's generation), optionally only those not
   * heard from since `heardBefore`: reads at most `readItems` items from after `after`, so a page that matches
   * little still answers promptly. `next` is where the shard continues, absent when it was read to its end.
   */
  async runningSubtasks(
    task: TaskRecord,
    shard: number,
    page: RunningPage,
  ): Promise<{ readonly subtasks: SubtaskRecord[]; readonly next?: string }> {
    const heard = page.heardBefore === undefined ? '' : ' AND #updated_at <= :heard_before';
    const result = await this.table.query('subtask', {
      ...this.shardQuery(
        task,
        shard,
        `NOT #status.#state IN (:success, :failure, :revoked) AND #generation = :generation${heard}`,
        {
          ':success': 'SUCCESS',
          ':failure': 'FAILURE',
          ':revoked': 'REVOKED',
          ':generation': task.generation,
          // ISO 8601 times of one format and zone compare as strings.
          ...(page.heardBefore === undefined
            ? {}
            : { ':heard_before': new Date(page.heardBefore).toISOString() }),
        },
      ),
      Limit: page.readItems,
      ...(page.after === undefined ? {} : { ExclusiveStartKey: subtaskKey(task.task_id, shard, page.after) }),
    });
    const subtasks = (result.Items ?? []).map(subtaskFromItem);
    const next = lastReadId(result.LastEvaluatedKey);
    return next === undefined ? { subtasks } : { subtasks, next };
  }
}
