import { ConditionalCheckFailedException, DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { applyStatuses, type Outcome, type StatusUpdate } from '../lambdas/core/apply-statuses';
import { RetriesExhaustedError, TaskNotFoundError } from '../lambdas/core/errors';
import type { SubtaskStatus } from '../lambdas/core/subtask-status';
import {
  type InitializeRequest,
  initializeTask,
  type SubtaskCounters,
  type SubtaskRecord,
  type TaskRecord,
} from '../lambdas/core/task';
import { TABLE_KEYS } from '../lambdas/service-settings';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy, sleep } from '../lambdas/store/backoff';
import { type ItemKey, taskKey } from '../lambdas/store/task-items';
import { billedBytes, itemBytes, singleWriteUnits } from './metering';
import type { WriteTally } from './write-tally';

/**
 * The alternative a team porting the reference naively would build: the task and every subtask status in one
 * item, read whole and written whole with `PutItem` under a version condition, once per status. The reference
 * keeps its `subtasks` column as JSON text (counters plus a `status` object keyed by subtask id), and so does this
 * port: one string attribute. (As a Map of Maps the same data is ~20% smaller, but DynamoDB Local then spends
 * 0.1–0.5 s on every PutItem of a 1,000-subtask item, and the rows would measure the emulator's document parsing
 * rather than the layout.) The rules are the service's own (`applyStatuses`), so only the layout differs;
 * conflicts back off with the service's own policy.
 */

/** The reference's `subtasks` JSON: counters and every subtask's latest status. */
interface SubtasksJson extends SubtaskCounters {
  readonly status: Readonly<Record<string, SubtaskStatus>>;
}

/** The task's fields as the service keeps them, except `subtasks`: the reference's JSON text. */
export type SingleTaskItem = Omit<TaskRecord, 'subtasks'> & ItemKey & { readonly subtasks: string };

// Only a writer that read version N may write N+1, exactly as for the service's task item.
const VERSION_MATCHES = '#version = :expected';
const ITEM_ABSENT = 'attribute_not_exists(#pk)';

/** DynamoDB refused the item: it would exceed 400 KB. A finding about the layout, not a bench failure. */
export class ItemTooLargeError extends Error {
  constructor(
    readonly itemBytes: number,
    options?: { cause?: unknown },
  ) {
    super(`The single item would be ${itemBytes} bytes, over DynamoDB's 400 KB item limit`, options);
    this.name = 'ItemTooLargeError';
  }
}

function isItemTooLarge(error: unknown): boolean {
  return (
    error instanceof DynamoDBServiceException &&
    error.name === 'ValidationException' &&
    /item size has exceeded/i.test(error.message)
  );
}

function toItem(task: TaskRecord, statuses: Readonly<Record<string, SubtaskStatus>>): SingleTaskItem {
  const subtasks: SubtasksJson = { ...task.subtasks, status: statuses };
  return { ...task, ...taskKey(task.task_id), subtasks: JSON.stringify(subtasks) };
}

/** The item as the service's records, so that the service's pure core can judge and apply a status. */
function toRecords(item: SingleTaskItem): {
  task: TaskRecord;
  subtasks: Map<string, SubtaskRecord>;
  statuses: Record<string, SubtaskStatus>;
} {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, subtasks, ...fields } = item;
  // Our own writes: the JSON is trusted as the shape `toItem` gave it.
  const { status: statuses, ...counters } = JSON.parse(subtasks) as SubtasksJson;
  const task: TaskRecord = { ...fields, subtasks: counters };
  const records = new Map<string, SubtaskRecord>();
  for (const [subtaskId, status] of Object.entries(statuses)) {
    // The layout keeps no per-subtask version or time; the core does not judge by them.
    records.set(subtaskId, {
      task_id: task.task_id,
      subtask_id: subtaskId,
      status,
      updated_version: task.version,
      updated_at: task.updated_at,
    });
  }
  return { task, subtasks: records, statuses };
}

/** The item a task starts as: every subtask `QUEUING`. */
export function singleItemFor(request: InitializeRequest, nowMs: number): SingleTaskItem {
  const { task, subtasks } = initializeTask(request, nowMs);
  return toItem(task, Object.fromEntries(subtasks.map((record) => [record.subtask_id, record.status])));
}

export interface SingleItemState {
  readonly task: TaskRecord;
  readonly statuses: ReadonlyMap<string, SubtaskStatus>;
}

export class SingleItemStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly tally: WriteTally,
    private readonly random: () => number = Math.random,
  ) {}

  /** Writes the task with every subtask `QUEUING`; throws `ItemTooLargeError` when that is already over 400 KB. */
  async initialize(request: InitializeRequest, nowMs: number): Promise<void> {
    const item = singleItemFor(request, nowMs);
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: ITEM_ABSENT,
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        }),
      );
    } catch (error) {
      if (isItemTooLarge(error)) throw new ItemTooLargeError(itemBytes(item), { cause: error });
      throw error;
    }
  }

  private async read(taskId: string): Promise<SingleTaskItem | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: taskKey(taskId), ConsistentRead: true }),
    );
    // Items come from our own writes; the table is not an external input.
    return Item as SingleTaskItem | undefined;
  }

  /** The task and every subtask's status as last committed. */
  async state(taskId: string): Promise<SingleItemState | undefined> {
    const item = await this.read(taskId);
    if (item === undefined) return undefined;
    const { task, subtasks } = toRecords(item);
    return { task, statuses: new Map([...subtasks].map(([id, record]) => [id, record.status])) };
  }

  /**
   * Applies one status: read the whole item, apply with the core, write the whole item back if nobody wrote
   * since; on a conflict back off and start again, at most `policy.maxAttempts` times.
   */
  async apply(
    taskId: string,
    update: StatusUpdate,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  ): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      const read = await this.read(taskId);
      if (read === undefined) throw new TaskNotFoundError(taskId);
      const { task, subtasks, statuses } = toRecords(read);
      const result = applyStatuses(task, subtasks, [update], Date.now());
      const [outcome] = result.outcomes;
      if (outcome === undefined) throw new RangeError('applyStatuses returns one outcome per update');
      if (result.changed.length === 0) return outcome;
      for (const record of result.changed) statuses[record.subtask_id] = record.status;
      if (await this.write(read, toItem(result.task, statuses))) return outcome;
      if (attempt >= policy.maxAttempts) {
        throw new RetriesExhaustedError(`Task '${taskId}' kept changing: ${attempt} attempts`);
      }
      await sleep(backoffDelayMs(policy, attempt, this.random));
    }
  }

  /** Puts `next` if the stored version is still the one read; false when another writer got there first. */
  private async write(read: SingleTaskItem, next: SingleTaskItem): Promise<boolean> {
    // A put over an existing item bills the larger of the two; a refused one bills the same.
    const priced = { before: read, after: next };
    const metered = {
      units: singleWriteUnits(priced),
      transaction: false,
      largestItemBytes: billedBytes(priced),
    };
    try {
      const { ConsumedCapacity } = await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: next,
          ConditionExpression: VERSION_MATCHES,
          ExpressionAttributeNames: { '#version': 'version' },
          ExpressionAttributeValues: { ':expected': read.version },
          // On a plain PutItem DynamoDB Local reports units as DynamoDB does: a live check of the metering.
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.tally.record({ ...metered, committed: true });
      if (ConsumedCapacity?.CapacityUnits !== undefined) {
        this.tally.recordEmulatorUnits(ConsumedCapacity.CapacityUnits);
      }
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        this.tally.record({ ...metered, committed: false });
        return false;
      }
      if (isItemTooLarge(error)) throw new ItemTooLargeError(itemBytes(next), { cause: error });
      throw error;
    }
  }
}
