import { randomUUID } from 'node:crypto';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { InitializeConflictError, StoreUnavailableError } from '../core/errors';
import { type FoldResult, nextDueAt } from '../core/fold';
import type { SubtaskState } from '../core/subtask-status';
import {
  type CheckedRequest,
  checkRequest,
  differingFields,
  type InitializeRequest,
  initialCounters,
  newTaskRecord,
  queuedSubtasks,
  type ShardCounter,
  type SubtaskRecord,
  subtaskShard,
  type TaskRecord,
  type TaskState,
} from '../core/task';
import { DUE_INDEX, SWEEPER, TABLE_KEYS } from '../service-settings';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, sleep } from './backoff';
import {
  counterFromItem,
  counterItem,
  counterKey,
  DUE_PARTITION,
  type ItemKey,
  SUBTASK_SORT_KEY_PREFIX,
  shardPartition,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
  taskFromItem,
  taskItem,
  taskKey,
} from './task-items';

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_GET_LIMIT = 100;
/** Writes in flight at once while a task is initialized. */
const INITIALIZE_PARALLELISM = 32;
/**
 * Initialize's puts go 100 to a `TransactWriteItems` (its limit), each with its own condition: measured, a
 * transaction of 100 costs the function about a twentieth of the CPU of 100 single puts (0.03-0.06 ms an item
 * against 0.7-1.0 ms), which is what lets a million subtasks initialize at 256 MB. DynamoDB bills a
 * transactional put twice; initialize writes each item once.
 */
const TRANSACTION_LIMIT = 100;
/** Subtask puts between two saves of how far an initialization got, so a resumed one skips what is done. */
const INITIALIZE_PAGE = 1_000;

// Initialization never overwrites a task record: the first one wins, later ones compare their request with it.
const ITEM_ABSENT = 'attribute_not_exists(#pk)';
// A subtask or counter item of another generation is a leftover of an earlier task record (removed by TTL or an
// operator before its subtasks): replace it, never count it.
const ABSENT_OR_OTHER_GENERATION = 'attribute_not_exists(#pk) OR #generation <> :generation';
// Only a writer that read version N may write N+1, and only into the generation it read.
const SUBTASK_UNCHANGED = '#version = :expected AND #generation = :generation';
// A fold never creates an item, and writes only into the generation it read.
const SAME_GENERATION = 'attribute_exists(#pk) AND #generation = :generation';
// The newest recount wins: versions only grow, so a recount that saw more changes has a larger sum.
const NEWER_RECOUNT = '#vsum < :vsum';
const NEWER_TOTALS = '#counters_vsum < :vsum';
// An ended task never changes again.
const IN_PROGRESS = '#task_state = :progress';
// How far an initialization got only moves forward: a slower resumer never takes back a faster one's page.
const NOT_YET_WRITTEN = '(attribute_not_exists(#init_written) OR #init_written < :written)';

/** The kinds of item the store reads and writes, as the bench meters them. */
export type ItemKind = 'task' | 'counter' | 'subtask';

/** Sees every write attempt and read, for metering; the service itself runs without one. */
export interface StoreObserver {
  /** A write sent: `applied` false when its condition failed (it is billed all the same). */
  write(kind: ItemKind, item: object, applied: boolean): void;
  /** Read units DynamoDB reported for a read. */
  read(kind: ItemKind, capacityUnits: number): void;
}

export interface InitializeResult {
  readonly task: TaskRecord;
  /** False when the same request had already created the task: an idempotent repeat or a resume. */
  readonly created: boolean;
}

export interface InitializeOptions {
  /** @default a fresh random id */
  readonly generation?: string;
  /** Checked before each page: when false, the task stays not ready and a repeat resumes. */
  readonly mayContinue?: () => boolean;
  /** Checked before every put: false once the request must stop to answer in time; a repeat resumes. */
  readonly withinTime?: () => boolean;
  /** Write shards of a new task; a resumed one keeps its own. @default one per `SUBTASKS_PER_SHARD` subtasks */
  readonly writeShards?: number;
  /** Subtask puts between two saves of how far the initialization got. @default 1,000 */
  readonly pageSize?: number;
}

type Paging = Required<Pick<InitializeOptions, 'mayContinue' | 'withinTime' | 'pageSize'>>;

/** Epoch seconds at which an initialization that makes no more progress is given up. */
function graceEnd(nowMs: number): number {
  return Math.floor(nowMs / 1000) + SWEEPER.initializeGraceMinutes * 60;
}

export interface ShardPosition {
  readonly shard: number;
  /** Continue after this subtask id within the shard. */
  readonly after?: string;
}

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

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

const NAMES = {
  '#pk': TABLE_KEYS.partitionKey,
  '#generation': 'generation',
} as const;

/** The DynamoDB adapter for tasks, their write shards' counters and their subtasks. */
export class TaskStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly observer?: StoreObserver,
    private readonly random: () => number = Math.random,
  ) {}

  private get capacity() {
    return this.observer === undefined ? {} : { ReturnConsumedCapacity: 'TOTAL' as const };
  }

  /** A conditional put; false when its condition failed. */
  private async put(
    kind: ItemKind,
    item: object,
    condition: string,
    names: Record<string, string>,
    values?: Record<string, unknown>,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item as Record<string, unknown>,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(values === undefined ? {} : { ExpressionAttributeValues: values }),
        }),
      );
      this.observer?.write(kind, item, true);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.observer?.write(kind, item, false);
      return false;
    }
  }

  /**
   * Creates the task's records (DESIGN §2 initialize): the task item first, not ready, with a fresh generation;
   * then each counter and subtask item where absent or of another generation; then `ready`. The same request
   * again resumes or returns the task, whatever the time; another request under the same id fails with
   * `InitializeConflictError` naming what differs. A lost race or a crash never leaves subtask items that a task
   * treats as its own. A resume reads the task first and writes only what is not yet written, page by page in id
   * order, each page built when it is written.
   */
  async initialize(
    request: InitializeRequest,
    nowMs: number,
    options: InitializeOptions = {},
  ): Promise<InitializeResult> {
    const checked = checkRequest(request);
    const paging: Paging = {
      mayContinue: options.mayContinue ?? (() => true),
      withinTime: options.withinTime ?? (() => true),
      pageSize: options.pageSize ?? INITIALIZE_PAGE,
    };
    const existing = await this.getTask(request.taskId);
    if (existing !== undefined) return this.carryOn(existing, checked, nowMs, paging);
    const task = newTaskRecord(checked, nowMs, options.generation ?? randomUUID(), options.writeShards);
    if (!(await this.put('task', taskItem(task, graceEnd(nowMs)), ITEM_ABSENT, { '#pk': NAMES['#pk'] }))) {
      const raced = await this.getTask(request.taskId);
      if (raced === undefined) throw new StoreUnavailableError(`Task '${request.taskId}' vanished`);
      return this.carryOn(raced, checked, nowMs, paging);
    }
    return this.complete(task, checked, nowMs, paging, true);
  }

  /** The same request again: a conflict, the task as it is (ready or ended), or a resume. */
  private async carryOn(
    existing: TaskRecord,
    checked: CheckedRequest,
    nowMs: number,
    paging: Paging,
  ): Promise<InitializeResult> {
    const fields = differingFields(existing, checked.request, checked);
    if (fields.length > 0) throw new InitializeConflictError(existing.task_id, fields);
    if (existing.ready || existing.task_state !== 'PROGRESS') return { task: existing, created: false };
    return this.complete(existing, checked, nowMs, paging, false);
  }

  private async complete(
    task: TaskRecord,
    checked: CheckedRequest,
    nowMs: number,
    paging: Paging,
    created: boolean,
  ): Promise<InitializeResult> {
    if (await this.writeRecords(task, checked.orderedIds, nowMs, paging)) await this.markReady(task, nowMs);
    return { task: (await this.getTask(task.task_id)) ?? task, created };
  }

  /**
   * Counters (unless a page was saved, which comes after them), then subtask items from where an earlier run got
   * to; false when stopped before the end, or when the task ended or was replaced meanwhile.
   */
  private async writeRecords(
    task: TaskRecord,
    orderedIds: readonly string[],
    nowMs: number,
    { mayContinue, withinTime, pageSize }: Paging,
  ): Promise<boolean> {
    const putAll = (kind: ItemKind, items: readonly object[], more: () => boolean) =>
      this.putNew(kind, task.generation, items, more);
    if (task.init_written === undefined) {
      await putAll(
        'counter',
        initialCounters(task, Date.parse(task.created_at)).map(counterItem),
        () => true,
      );
    }
    for (let start = task.init_written ?? 0; start < orderedIds.length; ) {
      if (!mayContinue() || !withinTime()) return false;
      const page = queuedSubtasks(task, orderedIds.slice(start, start + pageSize)).map((subtask) =>
        subtaskItem(subtask, subtaskShard(task, subtask.subtask_id)),
      );
      // Checked before every put, so a request near its timeout stops within a page and saves what it wrote.
      const written = await putAll('subtask', page, withinTime);
      if (written > 0 && !(await this.saveProgress(task, start + written, nowMs))) return false;
      start += written;
      if (written < page.length) return false;
    }
    return true;
  }

  /**
   * Puts `items` where absent or of another generation, a transaction of up to 100 at a time, starting each only
   * while `more()` holds; returns how many were written, always the first ones.
   */
  private async putNew(
    kind: ItemKind,
    generation: string,
    items: readonly object[],
    more: () => boolean,
  ): Promise<number> {
    const condition = {
      ConditionExpression: ABSENT_OR_OTHER_GENERATION,
      ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#generation': NAMES['#generation'] },
      ExpressionAttributeValues: { ':generation': generation },
    };
    const chunks: (readonly object[])[] = [];
    for (let start = 0; start < items.length; start += TRANSACTION_LIMIT) {
      chunks.push(items.slice(start, start + TRANSACTION_LIMIT));
    }
    const putChunk = async (chunk: readonly object[]) => {
      try {
        await this.db.send(
          new TransactWriteCommand({
            TransactItems: chunk.map((item) => ({
              Put: { TableName: this.tableName, Item: item as Record<string, unknown>, ...condition },
            })),
          }),
        );
        for (const item of chunk) this.observer?.write(kind, item, true);
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        // One item already written (a resume over what a killed request wrote) or a throttled one cancels them
        // all: each on its own then, with the SDK's retries.
        await inParallel(chunk, INITIALIZE_PARALLELISM, (item) =>
          this.put(
            kind,
            item,
            ABSENT_OR_OTHER_GENERATION,
            condition.ExpressionAttributeNames,
            condition.ExpressionAttributeValues,
          ),
        );
      }
    };
    const done = await inParallel(chunks, INITIALIZE_PARALLELISM, putChunk, more);
    return Math.min(done * TRANSACTION_LIMIT, items.length);
  }

  /**
   * Records how far the initialization got and pushes its due time a grace away: an initialization still
   * advancing is never given up. False when the task ended or was replaced meanwhile.
   */
  private async saveProgress(task: TaskRecord, written: number, nowMs: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression:
            'SET #init_written = :written, #updated_at = :now, #due_pk = :due_pk, #due_at = :due_at',
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS} AND ${NOT_YET_WRITTEN}`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#init_written': 'init_written',
            '#updated_at': 'updated_at',
            '#task_state': 'task_state',
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':progress': 'PROGRESS',
            ':written': written,
            ':now': new Date(nowMs).toISOString(),
            ':due_pk': DUE_PARTITION,
            ':due_at': graceEnd(nowMs),
          },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Another resumer got further (carry on), or the task ended or was replaced (stop).
      const now = await this.getTask(task.task_id);
      return now?.generation === task.generation && now.task_state === 'PROGRESS';
    }
  }

  private async markReady(task: TaskRecord, nowMs: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression:
            'SET #ready = :true, #version = #version + :one, #updated_at = :now, #due_at = :due',
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS} AND #ready = :false`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#ready': 'ready',
            '#version': 'version',
            '#updated_at': 'updated_at',
            '#due_at': DUE_INDEX.sortKey,
            '#task_state': 'task_state',
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':true': true,
            ':false': false,
            ':one': 1,
            ':progress': 'PROGRESS',
            ':now': new Date(nowMs).toISOString(),
            // Every subtask is waiting from now on: due at its deadline, its first timeout, or the idle recount.
            ':due': nextDueAt(task, nowMs, nowMs),
          },
        }),
      );
    } catch (error) {
      // Another resumer marked it ready first, or the sweeper ended it meanwhile: either way it stays as it is.
      if (!isConditionFailure(error)) throw error;
    }
  }

  /** The task as last written (consistent read), or undefined when it was never initialized. */
  async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const { Item, ConsumedCapacity } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: taskKey(taskId),
        ConsistentRead: true,
        ...this.capacity,
      }),
    );
    this.observer?.read('task', ConsumedCapacity?.CapacityUnits ?? 0);
    return Item === undefined ? undefined : taskFromItem(Item);
  }

  private async batchGet(kind: ItemKind, keys: readonly ItemKey[]): Promise<Record<string, unknown>[]> {
    const found: Record<string, unknown>[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let pending = keys.slice(start, start + BATCH_GET_LIMIT);
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > DEFAULT_RETRY_POLICY.maxAttempts) {
          throw new StoreUnavailableError(`${pending.length} reads stayed unprocessed`);
        }
        if (attempt > 1) await sleep(backoffDelayMs(DEFAULT_RETRY_POLICY, attempt - 1, this.random));
        const { Responses, UnprocessedKeys, ConsumedCapacity } = await this.db.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ConsistentRead: true } },
            ...this.capacity,
          }),
        );
        this.observer?.read(kind, ConsumedCapacity?.[0]?.CapacityUnits ?? 0);
        found.push(...(Responses?.[this.tableName] ?? []));
        pending = (UnprocessedKeys?.[this.tableName]?.Keys ?? []) as ItemKey[];
      }
    }
    return found;
  }

  /**
   * The named subtasks of `task`, read consistently; an id with no item of the task's generation is simply
   * absent from the map.
   */
  async getSubtasks(task: TaskRecord, subtaskIds: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    const keys = subtaskIds.map((id) => subtaskKey(task.task_id, subtaskShard(task, id), id));
    const found = new Map<string, SubtaskRecord>();
    for (const item of await this.batchGet('subtask', keys)) {
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
    return this.put(
      'subtask',
      subtaskItem(subtask, subtaskShard(task, subtask.subtask_id)),
      SUBTASK_UNCHANGED,
      { '#version': 'version', '#generation': 'generation' },
      { ':expected': expectedVersion, ':generation': task.generation },
    );
  }

  private async query(kind: ItemKind, input: Omit<QueryCommandInput, 'TableName'>) {
    const page = await this.db.send(
      new QueryCommand({ TableName: this.tableName, ...input, ...this.capacity }),
    );
    this.observer?.read(kind, page.ConsumedCapacity?.CapacityUnits ?? 0);
    return page;
  }

  private shardQuery(task: TaskRecord, shard: number, state?: SubtaskState) {
    return {
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ConsistentRead: true,
      ...(state === undefined ? {} : { FilterExpression: '#status.#state = :state' }),
      ExpressionAttributeNames: {
        '#pk': TABLE_KEYS.partitionKey,
        '#sk': TABLE_KEYS.sortKey,
        ...(state === undefined ? {} : { '#status': 'status', '#state': 'state' }),
      },
      ExpressionAttributeValues: {
        ':pk': shardPartition(task.task_id, shard),
        ':prefix': SUBTASK_SORT_KEY_PREFIX,
        ...(state === undefined ? {} : { ':state': state }),
      },
    };
  }

  /** Every item in write shard `shard` of `task`, whatever its generation, read consistently: the recount's input. */
  async readShard(task: TaskRecord, shard: number): Promise<SubtaskRecord[]> {
    const items: SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query('subtask', {
        ...this.shardQuery(task, shard),
        ExclusiveStartKey: startKey,
      });
      items.push(...(page.Items ?? []).map(subtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  /** Writes a recount unless a newer or equal one is stored; false when it was dropped. */
  writeCounter(counter: ShardCounter): Promise<boolean> {
    return this.put(
      'counter',
      counterItem(counter),
      `${SAME_GENERATION} AND ${NEWER_RECOUNT}`,
      { ...NAMES, '#vsum': 'vsum' },
      { ':generation': counter.generation, ':vsum': counter.vsum },
    );
  }

  /** Every write shard's counter of `task`, read consistently, of its generation only. */
  async getCounters(task: TaskRecord): Promise<ShardCounter[]> {
    const keys = Array.from({ length: task.write_shards }, (_, shard) => counterKey(task.task_id, shard));
    return (await this.batchGet('counter', keys))
      .map(counterFromItem)
      .filter((counter) => counter.generation === task.generation);
  }

  /**
   * Writes the fold's totals into the task read as `read`, unless newer totals are stored, the task was replaced
   * or it ended. An ending write also requires the cancel flag as read, so a concurrent cancel makes the caller
   * re-read and end `CANCELED`. False when a condition failed.
   */
  async writeFold(read: TaskRecord, { task, dueAt }: FoldResult): Promise<boolean> {
    const ending = task.task_state !== 'PROGRESS';
    const cancelAsRead = read.cancel_requested === true ? '' : ' AND attribute_not_exists(#cancel_requested)';
    const set = [
      '#version = #version + :one',
      '#task_state = :task_state',
      '#task_output = :task_output',
      '#in_flight = :in_flight',
      '#subtasks = :subtasks',
      '#counters_vsum = :vsum',
      '#updated_at = :updated_at',
      ...(ending ? ['#ended_at = :ended_at'] : ['#due_pk = :due_pk', '#due_at = :due_at']),
    ];
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(read.task_id),
          UpdateExpression: `SET ${set.join(', ')}${ending ? ' REMOVE #due_pk, #due_at' : ''}`,
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS} AND ${NEWER_TOTALS}${ending ? cancelAsRead : ''}`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#version': 'version',
            '#task_state': 'task_state',
            '#task_output': 'task_output',
            '#in_flight': 'in_flight',
            '#subtasks': 'subtasks',
            '#counters_vsum': 'counters_vsum',
            '#updated_at': 'updated_at',
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
            ...(ending
              ? {
                  '#ended_at': 'ended_at',
                  ...(cancelAsRead ? { '#cancel_requested': 'cancel_requested' } : {}),
                }
              : {}),
          },
          ExpressionAttributeValues: {
            ':generation': read.generation,
            ':progress': 'PROGRESS',
            ':one': 1,
            ':task_state': task.task_state,
            ':task_output': task.task_output,
            ':in_flight': task.in_flight,
            ':subtasks': task.subtasks,
            ':vsum': task.counters_vsum,
            ':updated_at': task.updated_at,
            ...(ending ? { ':ended_at': task.ended_at } : { ':due_pk': DUE_PARTITION, ':due_at': dueAt }),
          },
        }),
      );
      this.observer?.write('task', taskItem(task, dueAt), true);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.observer?.write('task', taskItem(task, dueAt), false);
      return false;
    }
  }

  /**
   * One page of a task's subtasks, shard by shard in id order within a shard, optionally only those in `state`.
   * Reads at most `readBudget` items, so a filter that matches little still answers promptly, with a cursor.
   */
  async listSubtasks(task: TaskRecord, query: SubtaskQuery): Promise<SubtaskPage> {
    const subtasks: SubtaskRecord[] = [];
    let shard = query.from?.shard ?? 0;
    let after = query.from?.after;
    let budget = query.readBudget;
    while (shard < task.write_shards && subtasks.length < query.limit && budget > 0) {
      const limit = Math.min(query.limit - subtasks.length, budget);
      const page = await this.query('subtask', {
        ...this.shardQuery(task, shard, query.state),
        ConsistentRead: false,
        Limit: limit,
        ...(after === undefined ? {} : { ExclusiveStartKey: subtaskKey(task.task_id, shard, after) }),
      });
      budget -= page.ScannedCount ?? limit;
      const items = (page.Items ?? [])
        .map(subtaskFromItem)
        .filter((subtask) => subtask.generation === task.generation);
      subtasks.push(...items);
      const lastKey = page.LastEvaluatedKey?.[TABLE_KEYS.sortKey];
      if (typeof lastKey === 'string') {
        after = lastKey.slice(SUBTASK_SORT_KEY_PREFIX.length);
      } else {
        shard += 1;
        after = undefined;
      }
    }
    if (shard >= task.write_shards) return { subtasks };
    return { subtasks, next: after === undefined ? { shard } : { shard, after } };
  }

  /**
   * Sets `cancel_requested` on a ready task in progress and makes it due now, so the sweeper revokes its
   * subtasks. Returns the task after the write, or undefined when the condition failed (the caller re-reads to
   * say why). Idempotent: a second cancel writes the flag again.
   */
  async requestCancel(task: TaskRecord, nowMs: number): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression:
            'SET #cancel_requested = :true, #version = #version + :one, #updated_at = :now, ' +
            '#due_pk = :due_pk, #due_at = :due_at',
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS} AND #ready = :true`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#cancel_requested': 'cancel_requested',
            '#version': 'version',
            '#updated_at': 'updated_at',
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
            '#task_state': 'task_state',
            '#ready': 'ready',
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':true': true,
            ':one': 1,
            ':now': new Date(nowMs).toISOString(),
            ':due_pk': DUE_PARTITION,
            ':due_at': Math.floor(nowMs / 1000),
            ':progress': 'PROGRESS',
          },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  /** Ids of tasks due by `nowSeconds` on the sparse due index, earliest first, at most `limit`. */
  async dueTaskIds(nowSeconds: number, limit: number): Promise<string[]> {
    const page = await this.query('task', {
      IndexName: DUE_INDEX.indexName,
      KeyConditionExpression: '#due_pk = :due_pk AND #due_at <= :now',
      ExpressionAttributeNames: { '#due_pk': DUE_INDEX.partitionKey, '#due_at': DUE_INDEX.sortKey },
      ExpressionAttributeValues: { ':due_pk': DUE_PARTITION, ':now': nowSeconds },
      Limit: limit,
    });
    return (page.Items ?? []).flatMap((item) => {
      const pk = item[TABLE_KEYS.partitionKey];
      return typeof pk === 'string' && pk.startsWith('TASK#') ? [pk.slice('TASK#'.length)] : [];
    });
  }

  /** Moves a task in progress to its next due time (epoch seconds). */
  async setDueAt(task: TaskRecord, dueAt: number): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression: 'SET #due_pk = :due_pk, #due_at = :due_at',
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS}`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
            '#task_state': 'task_state',
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':due_pk': DUE_PARTITION,
            ':due_at': dueAt,
            ':progress': 'PROGRESS',
          },
        }),
      )
      .catch((error: unknown) => {
        // Ended or replaced meanwhile: nothing is due any more.
        if (!isConditionFailure(error)) throw error;
      });
  }

  /**
   * Ends a task that never became ready (`INITIALIZE_INCOMPLETE`): no subtask of it can be trusted to exist, so
   * it ends `FAILURE` without a fold. False when it became ready or ended meanwhile.
   */
  async endIncomplete(task: TaskRecord, state: TaskState, reason: string, nowMs: number): Promise<boolean> {
    const now = new Date(nowMs).toISOString();
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression:
            'SET #task_state = :state, #end_reason = :reason, #ended_at = :now, #updated_at = :now, ' +
            '#version = #version + :one REMOVE #due_pk, #due_at',
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS} AND #ready = :false`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#task_state': 'task_state',
            '#end_reason': 'end_reason',
            '#ended_at': 'ended_at',
            '#updated_at': 'updated_at',
            '#version': 'version',
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
            '#ready': 'ready',
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':state': state,
            ':reason': reason,
            ':now': now,
            ':one': 1,
            ':progress': 'PROGRESS',
            ':false': false,
          },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  /** Subtasks of one shard not yet ended, at most `limit`: what a deadline or a cancel still has to end. */
  async runningSubtasks(task: TaskRecord, shard: number, limit: number): Promise<SubtaskRecord[]> {
    const running: SubtaskRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query('subtask', {
        ...this.shardQuery(task, shard),
        FilterExpression:
          'NOT #status.#state IN (:success, :failure, :revoked) AND #generation = :generation',
        ExpressionAttributeNames: {
          '#pk': TABLE_KEYS.partitionKey,
          '#sk': TABLE_KEYS.sortKey,
          '#status': 'status',
          '#state': 'state',
          '#generation': 'generation',
        },
        ExpressionAttributeValues: {
          ':pk': shardPartition(task.task_id, shard),
          ':prefix': SUBTASK_SORT_KEY_PREFIX,
          ':success': 'SUCCESS',
          ':failure': 'FAILURE',
          ':revoked': 'REVOKED',
          ':generation': task.generation,
        },
        ExclusiveStartKey: startKey,
      });
      running.push(...(page.Items ?? []).map(subtaskFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && running.length < limit);
    return running.slice(0, limit);
  }
}

/**
 * Runs `work` over `items` in order with at most `parallelism` in flight, starting each only while `more()`
 * holds; returns how many ran, always the first ones.
 */
async function inParallel<T>(
  items: readonly T[],
  parallelism: number,
  work: (item: T) => Promise<unknown>,
  more: () => boolean = () => true,
): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && more()) {
      await work(items[next++] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
  return next;
}
