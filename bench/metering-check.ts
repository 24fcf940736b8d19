import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { createSubtaskStatus } from '../lambdas/core/subtask-status';
import { initializeTask } from '../lambdas/core/task';
import { subtaskItem, taskItem } from '../lambdas/store/task-items';
import { itemBytes, writeUnitsForBytes } from './metering';
import { singleItemFor } from './single-item-store';
import { subtaskIdsFor } from './workload';

/**
 * Before the runs, the metering prices the exact item shapes the runs write and DynamoDB Local prices the same
 * items on plain `PutItem`, where its `ConsumedCapacity` follows DynamoDB's rules. They must agree; transactions
 * are then priced from these item sizes (×2), where DynamoDB Local's own figure is not DynamoDB's.
 */

export interface MeteringCheck {
  readonly item: string;
  readonly bytes: number;
  readonly meteredUnits: number;
  readonly reportedUnits: number | undefined;
  readonly agrees: boolean;
}

/** Subtasks in the single item priced here; small enough to put quickly, large enough to span many KB. */
const SAMPLE_FAN_OUT = 100;

export async function checkMetering(db: DynamoDBDocumentClient, tableName: string): Promise<MeteringCheck[]> {
  const request = {
    taskId: 'metering-check',
    actionName: 'emailed',
    total: SAMPLE_FAN_OUT * 100,
    subtaskIds: subtaskIdsFor(SAMPLE_FAN_OUT),
  };
  const nowMs = Date.now();
  const { task, subtasks } = initializeTask(request, nowMs);
  const [first] = subtasks;
  if (first === undefined) throw new RangeError('the sample task has subtasks');
  const finished = {
    ...first,
    status: createSubtaskStatus(first.subtask_id, { succeeded: 97, failed: 3, skipped: 2, state: 'SUCCESS' }),
    updated_version: 2,
  };
  const samples: [string, object][] = [
    ['task item', taskItem(task)],
    ['subtask item (terminal)', subtaskItem(finished)],
    [`single item (${SAMPLE_FAN_OUT} subtasks)`, singleItemFor(request, nowMs)],
  ];
  const checks: MeteringCheck[] = [];
  for (const [item, sample] of samples) {
    const bytes = itemBytes(sample);
    const { ConsumedCapacity } = await db.send(
      new PutCommand({ TableName: tableName, Item: sample, ReturnConsumedCapacity: 'TOTAL' }),
    );
    const meteredUnits = writeUnitsForBytes(bytes);
    const reportedUnits = ConsumedCapacity?.CapacityUnits;
    checks.push({ item, bytes, meteredUnits, reportedUnits, agrees: reportedUnits === meteredUnits });
  }
  return checks;
}
