import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SubtaskRecord, TaskRecord } from '../lambdas/core/task';
import { subtaskItem, taskItem } from '../lambdas/store/task-items';
import { TaskStore, type TransactionWrite } from '../lambdas/store/task-store';
import { billedBytes, type ItemWrite, transactionWriteUnits } from './metering';
import type { WriteTally } from './write-tally';

/**
 * The service's own store, unchanged, with every commit attempt priced on the way out. Metering here rather than
 * from `ApplyReport.transactions` has two reasons: `commit` sees the items as they were read, so an update is
 * priced on the larger of its before and after images as DynamoDB prices it; and the transactions of a cycle that
 * ends in `RetriesExhaustedError` never reach a report, yet DynamoDB billed them.
 */
export class MeteredTaskStore extends TaskStore {
  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    private readonly tally: WriteTally,
  ) {
    super(db, tableName);
  }

  override async commit(
    read: TaskRecord,
    next: TaskRecord,
    changed: readonly SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, SubtaskRecord>,
  ): Promise<TransactionWrite> {
    const write = await super.commit(read, next, changed, readSubtasks);
    const writes: ItemWrite[] = [
      { before: taskItem(read), after: taskItem(next) },
      ...changed.map((subtask): ItemWrite => {
        const before = readSubtasks.get(subtask.subtask_id);
        return {
          after: subtaskItem(subtask),
          ...(before === undefined ? {} : { before: subtaskItem(before) }),
        };
      }),
    ];
    this.tally.record({
      units: transactionWriteUnits(writes),
      committed: write.committed,
      transaction: true,
      largestItemBytes: Math.max(...writes.map((item) => billedBytes(item))),
    });
    return write;
  }
}
