/** The sparse due index: which tasks the sweeper looks at next, and where their unfinished sweeps resume. */
import type { EndCursor, TaskRecord } from '../core/task';
import { DUE_INDEX, TABLE_KEYS } from '../service-settings';
import { IN_PROGRESS, sameGeneration } from './conditions';
import { all, attributeNames } from './expressions';
import type { Table } from './table';
import { type DueLane, duePartition, taskKey } from './task-items';

/** Where a task waits on the due index, and where its unfinished sweeps resume. */
export interface SweepPosition {
  readonly lane: DueLane;
  readonly endCursor?: EndCursor;
  readonly recountCursor?: number;
}

export class DueIndex {
  constructor(private readonly table: Table) {}

  /** Ids of tasks due by `nowSeconds` in one lane of the sparse due index, earliest first, at most `limit`. */
  async dueTaskIds(nowSeconds: number, limit: number, lane: DueLane = 'urgent'): Promise<string[]> {
    const keyCondition = '#due_pk = :due_pk AND #due_at <= :now';
    const page = await this.table.query('task', {
      IndexName: DUE_INDEX.indexName,
      KeyConditionExpression: keyCondition,
      ExpressionAttributeNames: attributeNames(keyCondition),
      ExpressionAttributeValues: { ':due_pk': duePartition(lane), ':now': nowSeconds },
      Limit: limit,
    });
    return (page.Items ?? []).flatMap((item) => {
      const pk = item[TABLE_KEYS.partitionKey];
      return typeof pk === 'string' && pk.startsWith('TASK#') ? [pk.slice('TASK#'.length)] : [];
    });
  }

  /**
   * Moves a task in progress to its next due time (epoch seconds) in `lane`, with the cursors its unfinished
   * sweeps resume from; a cursor not given is removed (its pass is complete).
   */
  async setDueAt(task: TaskRecord, dueAt: number, sweep: SweepPosition = { lane: 'urgent' }): Promise<void> {
    const cursors = [
      ['end_cursor', sweep.endCursor],
      ['recount_cursor', sweep.recountCursor],
    ] as const;
    const given = cursors.filter(([, value]) => value !== undefined);
    // False when the task ended or was replaced meanwhile: nothing is due any more.
    await this.table.update(taskKey(task.task_id), {
      set: ['#due_pk = :due_pk', '#due_at = :due_at', ...given.map(([name]) => `#${name} = :${name}`)],
      remove: cursors.filter(([, value]) => value === undefined).map(([name]) => `#${name}`),
      values: {
        ':due_pk': duePartition(sweep.lane),
        ':due_at': dueAt,
        ...Object.fromEntries(given.map(([name, value]) => [`:${name}`, value])),
      },
      when: all(sameGeneration(task.generation), IN_PROGRESS),
    });
  }
}
