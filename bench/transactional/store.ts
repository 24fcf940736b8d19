/**
 * Round 1's DynamoDB adapter (`lambdas/store/task-store.ts` at b7f12fc), trimmed to what the bench row needs, with
 * the metering the bench used to add in a subclass built in: every commit attempt priced on the items as read and
 * written (2 units per KB of each, committed or canceled), every read's units as DynamoDB Local reports them.
 */

import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { backoffDelayMs, sleep } from '../../lambdas/core/backoff';
import { TABLE_KEYS } from '../../lambdas/service-settings';
import { billedBytes, type ItemWrite, transactionWriteUnits } from '../../test/support/metering';
import { ROUND1_RETRY_POLICY } from './pacing';
import {
  ROUND1_SUBTASK_SORT_KEY_PREFIX,
  type Round1InitializeRequest,
  type Round1SubtaskRecord,
  type Round1TaskRecord,
  round1InitializeTask,
  round1SubtaskFromItem,
  round1SubtaskItem,
  round1SubtaskKey,
  round1TaskFromItem,
  round1TaskItem,
  round1TaskKey,
  round1TaskPartition,
} from './records';
import type { TransactionTally } from './tally';

const ROUND1_BATCH_GET_LIMIT = 100;
const ROUND1_INITIALIZE_PARALLELISM = 16;

// Only a writer that read version N may write N+1: anyone who committed in between made our computation stale.
const ROUND1_VERSION_MATCHES = '#version = :expected';
// Second guard on each subtask: it is still the status our computation started from.
const ROUND1_SUBTASK_UNCHANGED = '#updated_version = :read_version';
const ROUND1_ITEM_ABSENT = 'attribute_not_exists(#pk)';

export class Round1StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Round1StoreUnavailableError';
  }
}

export class TransactionalStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly tally: TransactionTally,
  ) {}

  /** Subtask items first, then the task item: the task item is the commit point. */
  async initialize(request: Round1InitializeRequest, nowMs: number): Promise<void> {
    const { task, subtasks } = round1InitializeTask(request, nowMs);
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < subtasks.length; index = next++) {
        await this.putIfAbsent(round1SubtaskItem(subtasks[index] as Round1SubtaskRecord));
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(ROUND1_INITIALIZE_PARALLELISM, subtasks.length) }, worker),
    );
    await this.putIfAbsent(round1TaskItem(task));
  }

  private async putIfAbsent(item: object): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item as Record<string, unknown>,
          ConditionExpression: ROUND1_ITEM_ABSENT,
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The task as last committed (consistent read). */
  async getTask(taskId: string): Promise<Round1TaskRecord | undefined> {
    const { Item, ConsumedCapacity } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: round1TaskKey(taskId),
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.tally.taskReadUnits += ConsumedCapacity?.CapacityUnits ?? 0;
    return Item === undefined ? undefined : round1TaskFromItem(Item);
  }

  /** The named subtasks, read consistently after the task item (that order makes the version check whole). */
  async getSubtasks(
    taskId: string,
    subtaskIds: readonly string[],
  ): Promise<Map<string, Round1SubtaskRecord>> {
    const found = new Map<string, Round1SubtaskRecord>();
    for (let start = 0; start < subtaskIds.length; start += ROUND1_BATCH_GET_LIMIT) {
      let keys = subtaskIds
        .slice(start, start + ROUND1_BATCH_GET_LIMIT)
        .map((id) => round1SubtaskKey(taskId, id));
      for (let attempt = 1; keys.length > 0; attempt++) {
        if (attempt > ROUND1_RETRY_POLICY.maxAttempts) {
          throw new Round1StoreUnavailableError(`${keys.length} subtask reads stayed unprocessed`);
        }
        if (attempt > 1) await sleep(backoffDelayMs(ROUND1_RETRY_POLICY, attempt - 1, Math.random));
        const { Responses, UnprocessedKeys, ConsumedCapacity } = await this.db.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.tally.subtaskReadUnits += ConsumedCapacity?.[0]?.CapacityUnits ?? 0;
        for (const item of Responses?.[this.tableName] ?? []) {
          const subtask = round1SubtaskFromItem(item);
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
    read: Round1TaskRecord,
    next: Round1TaskRecord,
    changed: readonly Round1SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, Round1SubtaskRecord>,
  ): Promise<boolean> {
    const writes: ItemWrite[] = [
      { before: round1TaskItem(read), after: round1TaskItem(next) },
      ...changed.map((subtask): ItemWrite => {
        const before = readSubtasks.get(subtask.subtask_id);
        return {
          after: round1SubtaskItem(subtask),
          ...(before === undefined ? {} : { before: round1SubtaskItem(before) }),
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
                Key: round1TaskKey(read.task_id),
                UpdateExpression:
                  'SET #version = :next, #task_state = :task_state, #task_output = :task_output, ' +
                  '#subtasks = :subtasks, #updated_at = :updated_at',
                ConditionExpression: ROUND1_VERSION_MATCHES,
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
                Item: round1SubtaskItem(subtask),
                ConditionExpression: ROUND1_SUBTASK_UNCHANGED,
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
  async allSubtasks(taskId: string): Promise<Round1SubtaskRecord[]> {
    const subtasks: Round1SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
          ExpressionAttributeValues: {
            ':pk': round1TaskPartition(taskId),
            ':prefix': ROUND1_SUBTASK_SORT_KEY_PREFIX,
          },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      subtasks.push(...(page.Items ?? []).map(round1SubtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return subtasks;
  }
}
