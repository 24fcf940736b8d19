import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { TABLE_KEYS } from '../../lambdas/service-settings';
import { billedBytes, type ItemWrite, transactionWriteUnits } from '../metering';
import { backoffDelayMs, RETRY_POLICY, sleep } from './pacing';
import {
  type InitializeRequest,
  initializeTask,
  SUBTASK_SORT_KEY_PREFIX,
  type SubtaskRecord,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
  type TaskRecord,
  taskFromItem,
  taskItem,
  taskKey,
  taskPartition,
} from './records';
import type { TransactionTally } from './tally';

/**
 * Round 1's DynamoDB adapter (`lambdas/store/task-store.ts` at b7f12fc), trimmed to what the bench row needs, with
 * the metering the bench used to add in a subclass built in: every commit attempt priced on the items as read and
 * written (2 units per KB of each, committed or canceled), every read's units as DynamoDB Local reports them.
 */

const BATCH_GET_LIMIT = 100;
const INITIALIZE_PARALLELISM = 16;

// Only a writer that read version N may write N+1: anyone who committed in between made our computation stale.
const VERSION_MATCHES = '#version = :expected';
// Second guard on each subtask: it is still the status our computation started from.
const SUBTASK_UNCHANGED = '#updated_version = :read_version';
const ITEM_ABSENT = 'attribute_not_exists(#pk)';

export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export class TransactionalStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly tally: TransactionTally,
  ) {}

  /** Subtask items first, then the task item: the task item is the commit point. */
  async initialize(request: InitializeRequest, nowMs: number): Promise<void> {
    const { task, subtasks } = initializeTask(request, nowMs);
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < subtasks.length; index = next++) {
        await this.putIfAbsent(subtaskItem(subtasks[index] as SubtaskRecord));
      }
    };
    await Promise.all(Array.from({ length: Math.min(INITIALIZE_PARALLELISM, subtasks.length) }, worker));
    await this.putIfAbsent(taskItem(task));
  }

  private async putIfAbsent(item: object): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item as Record<string, unknown>,
          ConditionExpression: ITEM_ABSENT,
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The task as last committed (consistent read). */
  async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const { Item, ConsumedCapacity } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: taskKey(taskId),
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.tally.taskReadUnits += ConsumedCapacity?.CapacityUnits ?? 0;
    return Item === undefined ? undefined : taskFromItem(Item);
  }

  /** The named subtasks, read consistently after the task item (that order makes the version check whole). */
  async getSubtasks(taskId: string, subtaskIds: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    const found = new Map<string, SubtaskRecord>();
    for (let start = 0; start < subtaskIds.length; start += BATCH_GET_LIMIT) {
      let keys = subtaskIds.slice(start, start + BATCH_GET_LIMIT).map((id) => subtaskKey(taskId, id));
      for (let attempt = 1; keys.length > 0; attempt++) {
        if (attempt > RETRY_POLICY.maxAttempts) {
          throw new StoreUnavailableError(`${keys.length} subtask reads stayed unprocessed`);
        }
        if (attempt > 1) await sleep(backoffDelayMs(attempt - 1, Math.random));
        const { Responses, UnprocessedKeys, ConsumedCapacity } = await this.db.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.tally.subtaskReadUnits += ConsumedCapacity?.[0]?.CapacityUnits ?? 0;
        for (const item of Responses?.[this.tableName] ?? []) {
          const subtask = subtaskFromItem(item);
          found.set(subtask.subtask_id, subtask);
        }
        keys = (UnprocessedKeys?.[this.tableName]?.Keys ?? []) as typeof keys;
      }
    }
    return found;
  }

  /**
   * Commits `next` (computed from `read`) and the changed subtasks in one transaction conditioned on nobody
   * having committed since; false when DynamoDB canceled it on that condition.
   */
  async commit(
    read: TaskRecord,
    next: TaskRecord,
    changed: readonly SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, SubtaskRecord>,
  ): Promise<boolean> {
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
    const metered = {
      units: transactionWriteUnits(writes),
      largestItemBytes: Math.max(...writes.map((item) => billedBytes(item))),
    };
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: taskKey(read.task_id),
                UpdateExpression:
                  'SET #version = :next, #task_state = :task_state, #task_output = :task_output, ' +
                  '#subtasks = :subtasks, #updated_at = :updated_at',
                ConditionExpression: VERSION_MATCHES,
                ExpressionAttributeNames: {
                  '#version': 'version',
                  '#task_state': 'task_state',
                  '#task_output': 'task_output',
                  '#subtasks': 'subtasks',
                  '#updated_at': 'updated_at',
                },
                ExpressionAttributeValues: {
                  ':expected': read.version,
                  ':next': next.version,
                  ':task_state': next.task_state,
                  ':task_output': next.task_output,
                  ':subtasks': next.subtasks,
                  ':updated_at': next.updated_at,
                },
              },
            },
            ...changed.map((subtask) => ({
              Put: {
                TableName: this.tableName,
                Item: subtaskItem(subtask),
                ConditionExpression: SUBTASK_UNCHANGED,
                ExpressionAttributeNames: { '#updated_version': 'updated_version' },
                ExpressionAttributeValues: {
                  ':read_version': readSubtasks.get(subtask.subtask_id)?.updated_version ?? 0,
                },
              },
            })),
          ],
        }),
      );
      this.tally.recordTransaction({ ...metered, committed: true });
      return true;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      if (!reasons.some((reason) => reason.Code === 'ConditionalCheckFailed')) throw error;
      this.tally.recordTransaction({ ...metered, committed: false });
      return false;
    }
  }

  /** Every subtask of the task, to check the run against the ground truth (not metered). */
  async allSubtasks(taskId: string): Promise<SubtaskRecord[]> {
    const subtasks: SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ':pk': taskPartition(taskId), ':prefix': SUBTASK_SORT_KEY_PREFIX },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      subtasks.push(...(page.Items ?? []).map(subtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return subtasks;
  }
}
