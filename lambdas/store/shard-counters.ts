/** The write shards' counters of a task: the recounts the fold writes and the totals it reads. */
import type { ShardCounter, TaskRecord } from '../core/task';
import { newerRecount, sameGeneration } from './conditions';
import { all, attributeNames } from './expressions';
import type { Table } from './table';
import { COUNTER_SORT_KEY_PREFIX, counterFromItem, counterItem, taskPartition } from './task-items';

const COUNTERS = '#pk = :pk AND begins_with(#sk, :prefix)';

export class ShardCounters {
  constructor(private readonly table: Table) {}

  /** Writes a recount unless a newer or equal one is stored; false when it was dropped. */
  writeCounter(counter: ShardCounter): Promise<boolean> {
    return this.table.put(
      'counter',
      counterItem(counter),
      all(sameGeneration(counter.generation), newerRecount(counter.vsum)),
    );
  }

  /**
   * Every write shard's counter of `task`, read consistently, of its generation only: one query of the task's
   * partition, billed by the size read (100 counters ≈ 30 KB ≈ 8 read units) rather than per item.
   */
  async getCounters(task: TaskRecord): Promise<ShardCounter[]> {
    const counters: ShardCounter[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.table.query('counter', {
        KeyConditionExpression: COUNTERS,
        ConsistentRead: true,
        ExpressionAttributeNames: attributeNames(COUNTERS),
        ExpressionAttributeValues: { ':pk': taskPartition(task.task_id), ':prefix': COUNTER_SORT_KEY_PREFIX },
        ExclusiveStartKey: startKey,
      });
      counters.push(...(page.Items ?? []).map(counterFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return counters.filter((counter) => counter.generation === task.generation);
  }
}
