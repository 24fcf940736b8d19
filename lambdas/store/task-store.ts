import {
  type CancellationReason,
  ConditionalCheckFailedException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { InitializeConflictError, StoreUnavailableError } from '../core/errors';
import type { SubtaskState } from '../core/subtask-status';
import {
  type InitializedTask,
  type InitializeRequest,
  initializationDigest,
  initializeTask,
  type SubtaskRecord,
  type TaskRecord,
} from '../core/task';
import { TABLE_KEYS } from '../service-settings';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, sleep } from './backoff';
import {
  SUBTASK_SORT_KEY_PREFIX,
  type SubtaskItem,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
  type TaskItem,
  taskFromItem,
  taskItem,
  taskKey,
  taskPartition,
} from './task-items';

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_GET_LIMIT = 100;
/** Subtask items are put this many at a time during initialization. */
const INITIALIZE_PARALLELISM = 16;

// Only a writer that read version N may write N+1: anyone who committed in between made our computation stale.
const VERSION_MATCHES = '#version = :expected';
// Second guard on each subtask: it is still the status our computation started from. With the task read first
// this always holds when VERSION_MATCHES does; it keeps a terminal subtask safe if the read path ever changes.
const SUBTASK_UNCHANGED = '#updated_version = :read_version';
// Initialization never overwrites: a subtask a status already reached, or a task already committed, stays.
const ITEM_ABSENT = 'attribute_not_exists(#pk)';

/** One item a transaction writes, as the metering in `bench/` prices it. */
export interface WrittenItem {
  readonly kind: 'task' | 'subtask';
  readonly item: TaskItem | SubtaskItem;
}

/** What one commit attempt sent, whether DynamoDB committed it or canceled it. */
export interface TransactionWrite {
  readonly items: readonly WrittenItem[];
  readonly committed: boolean;
}

export interface SubtaskPage {
  readonly subtasks: readonly SubtaskRecord[];
  /** The last subtask id of this page when more may follow. */
  readonly lastSubtaskId?: string;
}

export interface SubtaskQuery {
  readonly state?: SubtaskState;
  readonly limit: number;
  /** Continue after this subtask id. */
  readonly after?: string;
}

function isConflict(reason: CancellationReason): boolean {
  return reason.Code === 'ConditionalCheckFailed' || reason.Code === 'TransactionConflict';
}

function isThrottle(reason: CancellationReason): boolean {
  return reason.Code === 'ThrottlingError' || reason.Code === 'ProvisionedThroughputExceeded';
}

/** The DynamoDB adapter for task and subtask records. */
export class TaskStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Creates the task's records: subtask items first, each only where absent, then the task item, also only where
   * absent; the task item is the commit point. Re-running with the same request returns the existing task
   * unchanged; another request under the same task id fails with `InitializeConflictError`.
   */
  async initialize(request: InitializeRequest, nowMs: number): Promise<TaskRecord> {
    const fresh = initializeTask(request, nowMs);
    const existing = await this.getTask(request.taskId);
    if (existing !== undefined) return this.sameOrConflict(existing, request);
    await this.putSubtasksIfAbsent(fresh);
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: taskItem(fresh.task),
          ConditionExpression: ITEM_ABSENT,
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        }),
      );
      return fresh.task;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const winner = await this.getTask(request.taskId);
      if (winner === undefined) throw error;
      return this.sameOrConflict(winner, request);
    }
  }

  private sameOrConflict(existing: TaskRecord, request: InitializeRequest): TaskRecord {
    if (existing.init_digest !== initializationDigest(request))
      throw new InitializeConflictError(request.taskId);
    return existing;
  }

  private async putSubtasksIfAbsent({ subtasks }: InitializedTask): Promise<void> {
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < subtasks.length; index = next++) {
        const subtask = subtasks[index];
        if (subtask === undefined) return;
        try {
          await this.db.send(
            new PutCommand({
              TableName: this.tableName,
              Item: subtaskItem(subtask),
              ConditionExpression: ITEM_ABSENT,
              ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
            }),
          );
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(INITIALIZE_PARALLELISM, subtasks.length) }, worker));
  }

  /** The task as last committed (consistent read), or undefined when it was never initialized. */
  async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: taskKey(taskId), ConsistentRead: true }),
    );
    return Item === undefined ? undefined : taskFromItem(Item);
  }

  /**
   * The named subtasks, read consistently; an id with no item is simply absent from the map. Must be called
   * after the task item was read: that order is what makes the version check catch every concurrent commit.
   */
  async getSubtasks(taskId: string, subtaskIds: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    const found = new Map<string, SubtaskRecord>();
    for (let start = 0; start < subtaskIds.length; start += BATCH_GET_LIMIT) {
      let keys = subtaskIds.slice(start, start + BATCH_GET_LIMIT).map((id) => subtaskKey(taskId, id));
      for (let attempt = 1; keys.length > 0; attempt++) {
        if (attempt > DEFAULT_RETRY_POLICY.maxAttempts) {
          throw new StoreUnavailableError(`${keys.length} subtask reads stayed unprocessed`);
        }
        if (attempt > 1) await sleep(backoffDelayMs(DEFAULT_RETRY_POLICY, attempt - 1, this.random));
        const { Responses, UnprocessedKeys } = await this.db.send(
          new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }),
        );
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
   * Commits `next` (computed from `read`) and the changed subtasks in one transaction, conditioned on nobody
   * having written since. When somebody did, DynamoDB cancels it and this returns `committed: false`: an
   * expected outcome under concurrency, on which the caller re-reads and re-applies.
   */
  async commit(
    read: TaskRecord,
    next: TaskRecord,
    changed: readonly SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, SubtaskRecord>,
  ): Promise<TransactionWrite> {
    const items: WrittenItem[] = [
      { kind: 'task', item: taskItem(next) },
      ...changed.map((subtask): WrittenItem => ({ kind: 'subtask', item: subtaskItem(subtask) })),
    ];
    const subtaskPuts = changed.map((subtask) => ({
      Put: {
        TableName: this.tableName,
        Item: subtaskItem(subtask),
        ConditionExpression: SUBTASK_UNCHANGED,
        ExpressionAttributeNames: { '#updated_version': 'updated_version' },
        ExpressionAttributeValues: {
          ':read_version': readSubtasks.get(subtask.subtask_id)?.updated_version ?? 0,
        },
      },
    }));
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
            ...subtaskPuts,
          ],
        }),
      );
      return { items, committed: true };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      if (reasons.some(isThrottle)) {
        throw new StoreUnavailableError('The task write was throttled', { cause: error });
      }
      if (reasons.some(isConflict)) {
        return { items, committed: false };
      }
      throw error;
    }
  }

  /** One page of a task's subtasks in id order, optionally only those in `state`. */
  async listSubtasks(taskId: string, query: SubtaskQuery): Promise<SubtaskPage> {
    const subtasks: SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined =
      query.after === undefined ? undefined : subtaskKey(taskId, query.after);
    // A state filter is applied after DynamoDB reads a page, so a page may come back short; keep reading.
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          ...(query.state === undefined ? {} : { FilterExpression: '#status.#state = :state' }),
          ExpressionAttributeNames: {
            '#pk': TABLE_KEYS.partitionKey,
            '#sk': TABLE_KEYS.sortKey,
            ...(query.state === undefined ? {} : { '#status': 'status', '#state': 'state' }),
          },
          ExpressionAttributeValues: {
            ':pk': taskPartition(taskId),
            ':prefix': SUBTASK_SORT_KEY_PREFIX,
            ...(query.state === undefined ? {} : { ':state': query.state }),
          },
          Limit: query.limit - subtasks.length,
          ExclusiveStartKey: startKey,
        }),
      );
      subtasks.push(...(page.Items ?? []).map(subtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && subtasks.length < query.limit);
    const last = subtasks.at(-1);
    return startKey === undefined || last === undefined
      ? { subtasks }
      : { subtasks, lastSubtaskId: last.subtask_id };
  }
}
