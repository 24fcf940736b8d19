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
import { backoffDelayMs, DEFAULT_RETRY_POLICY, sleep } from '../core/backoff';
import { InitializeConflictError, StoreUnavailableError } from '../core/errors';
import { type FoldResult, nextDueAt } from '../core/fold';
import { listPage, type ShardPosition } from '../core/subtask-listing';
import type { SubtaskState } from '../core/subtask-status';
import {
  type CheckedRequest,
  checkRequest,
  differingFields,
  type EndCursor,
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
import type { TaskListPage, TaskListQuery } from '../core/task-listing';
import { DUE_INDEX, SWEEPER, TABLE_KEYS } from '../service-settings';
import { eventDueAt, PendingEvents } from './pending-events';
import {
  COUNTER_SORT_KEY_PREFIX,
  counterFromItem,
  counterItem,
  DUE_PARTITION,
  type DueLane,
  duePartition,
  type ItemKey,
  SUBTASK_SORT_KEY_PREFIX,
  shardPartition,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
  taskFromItem,
  taskItem,
  taskKey,
  taskPartition,
} from './task-items';
import { listTasks } from './task-listing';

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

export interface ReadOptions {
  /**
   * False for an eventually consistent read: half the read units, possibly missing the latest writes, for a
   * caller whose conditional write catches what the read missed. @default true
   */
  readonly consistent?: boolean;
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

export type { ShardPosition } from '../core/subtask-listing';

type Paging = Required<Pick<InitializeOptions, 'mayContinue' | 'withinTime' | 'pageSize'>>;

/** Epoch seconds at which an initialization that makes no more progress is given up. */
function graceEnd(nowMs: number): number {
  return Math.floor(nowMs / 1000) + SWEEPER.initializeGraceMinutes * 60;
}

export interface SubtaskQuery {
  readonly state?: SubtaskState;
  readonly limit: number;
  /** Items one request may read at most, matching or not: a filtered page may come back short. */
  readonly readBudget: number;
  readonly from?: ShardPosition;
}

/** Where a task waits on the due index, and where its unfinished sweeps resume. */
export interface SweepPosition {
  readonly lane: DueLane;
  readonly endCursor?: EndCursor;
  readonly recountCursor?: number;
}

/** Which page of a shard's running subtasks to read. */
export interface RunningPage {
  readonly readItems: number;
  readonly after?: string;
  /** Only subtasks last heard from at or before this time (epoch ms). */
  readonly heardBefore?: number;
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
  ) {
    this.pendingEvents = new PendingEvents(db, tableName);
  }

  /** Events of a task not yet published, and their marks. */
  readonly pendingEvents: PendingEvents;

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

  /**
   * The task as last written (a consistent read unless asked otherwise), or undefined when it was never
   * initialized.
   */
  async getTask(taskId: string, { consistent = true }: ReadOptions = {}): Promise<TaskRecord | undefined> {
    const { Item, ConsumedCapacity } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: taskKey(taskId),
        ConsistentRead: consistent,
        ...this.capacity,
      }),
    );
    this.observer?.read('task', ConsumedCapacity?.CapacityUnits ?? 0);
    return Item === undefined ? undefined : taskFromItem(Item);
  }

  /** Whole items, unless `attributes` asks for a projection; consistent unless asked otherwise. */
  private async batchGet(
    kind: ItemKind,
    keys: readonly ItemKey[],
    {
      consistent = true,
      attributes,
    }: { readonly consistent?: boolean; readonly attributes?: readonly string[] } = {},
  ): Promise<Record<string, unknown>[]> {
    const read = {
      ConsistentRead: consistent,
      ...(attributes === undefined
        ? {}
        : {
            ProjectionExpression: attributes.map((_, index) => `#a${index}`).join(', '),
            ExpressionAttributeNames: Object.fromEntries(
              attributes.map((name, index) => [`#a${index}`, name]),
            ),
          }),
    };
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
            RequestItems: { [this.tableName]: { Keys: pending, ...read } },
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
    for (const item of await this.batchGet('subtask', keys, { consistent })) {
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

  /**
   * Every write shard's counter of `task`, read consistently, of its generation only: one query of the task's
   * partition, billed by the size read (100 counters ≈ 30 KB ≈ 8 read units) rather than per item.
   */
  async getCounters(task: TaskRecord): Promise<ShardCounter[]> {
    const counters: ShardCounter[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query('counter', {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ConsistentRead: true,
        ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey },
        ExpressionAttributeValues: { ':pk': taskPartition(task.task_id), ':prefix': COUNTER_SORT_KEY_PREFIX },
        ExclusiveStartKey: startKey,
      });
      counters.push(...(page.Items ?? []).map(counterFromItem));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return counters.filter((counter) => counter.generation === task.generation);
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
      '#task_output = :task_output',
      '#in_flight = :in_flight',
      '#subtasks = :subtasks',
      '#counters_vsum = :vsum',
      '#updated_at = :updated_at',
      // The state changes here, once, and only here: a fold that does not end the task writes no key or
      // projected attribute of the listing indexes (DESIGN §0), so it costs them nothing. An ending marks its
      // `Task Ended` unpublished and leaves the task due for it (see pending-events.ts).
      ...(ending ? ['#task_state = :task_state', '#ended_at = :ended_at', '#event_pending = :true'] : []),
      '#due_pk = :due_pk',
      '#due_at = :due_at',
    ];
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(read.task_id),
          UpdateExpression: `SET ${set.join(', ')}`,
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
                  '#event_pending': 'event_pending',
                  ...(cancelAsRead ? { '#cancel_requested': 'cancel_requested' } : {}),
                }
              : {}),
          },
          ExpressionAttributeValues: {
            ':generation': read.generation,
            ':progress': 'PROGRESS',
            ':one': 1,
            ':task_output': task.task_output,
            ':in_flight': task.in_flight,
            ':subtasks': task.subtasks,
            ':vsum': task.counters_vsum,
            ':updated_at': task.updated_at,
            ':due_pk': DUE_PARTITION,
            ':due_at': ending ? eventDueAt(Date.parse(task.ended_at ?? task.updated_at)) : dueAt,
            ...(ending ? { ':task_state': task.task_state, ':ended_at': task.ended_at, ':true': true } : {}),
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
    const page = await listPage(
      {
        writeShards: task.write_shards,
        limit: query.limit,
        readBudget: query.readBudget,
        filtered: query.state !== undefined,
        ...(query.from === undefined ? {} : { from: query.from }),
      },
      async ({ shard, after, limit }) => {
        const read = await this.query('subtask', {
          ...this.shardQuery(task, shard, query.state),
          ConsistentRead: false,
          Limit: limit,
          ...(after === undefined ? {} : { ExclusiveStartKey: subtaskKey(task.task_id, shard, after) }),
        });
        const lastKey = read.LastEvaluatedKey?.[TABLE_KEYS.sortKey];
        return {
          items: (read.Items ?? [])
            .map(subtaskFromItem)
            .filter((subtask) => subtask.generation === task.generation),
          scanned: read.ScannedCount ?? limit,
          ...(typeof lastKey === 'string'
            ? { lastReadId: lastKey.slice(SUBTASK_SORT_KEY_PREFIX.length) }
            : {}),
        };
      },
    );
    return { subtasks: page.items, ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /** A page of tasks, newest first (see `task-listing.ts`): at most `readBudget` index entries read. */
  listTasks(query: TaskListQuery): Promise<TaskListPage> {
    return listTasks(
      {
        query: (input) => this.query('task', input),
        rows: (keys, attributes) => this.batchGet('task', keys, { consistent: false, attributes }),
      },
      query,
    );
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

  /** Ids of tasks due by `nowSeconds` in one lane of the sparse due index, earliest first, at most `limit`. */
  async dueTaskIds(nowSeconds: number, limit: number, lane: DueLane = 'urgent'): Promise<string[]> {
    const page = await this.query('task', {
      IndexName: DUE_INDEX.indexName,
      KeyConditionExpression: '#due_pk = :due_pk AND #due_at <= :now',
      ExpressionAttributeNames: { '#due_pk': DUE_INDEX.partitionKey, '#due_at': DUE_INDEX.sortKey },
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
    const set = ['#due_pk = :due_pk', '#due_at = :due_at'];
    const remove: string[] = [];
    const values: Record<string, unknown> = {
      ':generation': task.generation,
      ':due_pk': duePartition(sweep.lane),
      ':due_at': dueAt,
      ':progress': 'PROGRESS',
    };
    if (sweep.endCursor === undefined) remove.push('#end_cursor');
    else {
      set.push('#end_cursor = :end_cursor');
      values[':end_cursor'] = sweep.endCursor;
    }
    if (sweep.recountCursor === undefined) remove.push('#recount_cursor');
    else {
      set.push('#recount_cursor = :recount_cursor');
      values[':recount_cursor'] = sweep.recountCursor;
    }
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
          ConditionExpression: `${SAME_GENERATION} AND ${IN_PROGRESS}`,
          ExpressionAttributeNames: {
            ...NAMES,
            '#due_pk': DUE_INDEX.partitionKey,
            '#due_at': DUE_INDEX.sortKey,
            '#task_state': 'task_state',
            '#end_cursor': 'end_cursor',
            '#recount_cursor': 'recount_cursor',
          },
          ExpressionAttributeValues: values,
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
            '#version = #version + :one, #event_pending = :true, #due_pk = :due_pk, #due_at = :event_due',
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
            '#event_pending': 'event_pending',
          },
          ExpressionAttributeValues: {
            ':generation': task.generation,
            ':state': state,
            ':reason': reason,
            ':now': now,
            ':one': 1,
            ':progress': 'PROGRESS',
            ':false': false,
            ':true': true,
            ':due_pk': DUE_PARTITION,
            ':event_due': eventDueAt(nowMs),
          },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
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
    const result = await this.query('subtask', {
      ...this.shardQuery(task, shard),
      FilterExpression: `NOT #status.#state IN (:success, :failure, :revoked) AND #generation = :generation${heard}`,
      ExpressionAttributeNames: {
        '#pk': TABLE_KEYS.partitionKey,
        '#sk': TABLE_KEYS.sortKey,
        '#status': 'status',
        '#state': 'state',
        '#generation': 'generation',
        ...(page.heardBefore === undefined ? {} : { '#updated_at': 'updated_at' }),
      },
      ExpressionAttributeValues: {
        ':pk': shardPartition(task.task_id, shard),
        ':prefix': SUBTASK_SORT_KEY_PREFIX,
        ':success': 'SUCCESS',
        ':failure': 'FAILURE',
        ':revoked': 'REVOKED',
        ':generation': task.generation,
        // ISO 8601 times of one format and zone compare as strings.
        ...(page.heardBefore === undefined
          ? {}
          : { ':heard_before': new Date(page.heardBefore).toISOString() }),
      },
      Limit: page.readItems,
      ...(page.after === undefined ? {} : { ExclusiveStartKey: subtaskKey(task.task_id, shard, page.after) }),
    });
    const subtasks = (result.Items ?? []).map(subtaskFromItem);
    const lastKey = result.LastEvaluatedKey?.[TABLE_KEYS.sortKey];
    return typeof lastKey === 'string'
      ? { subtasks, next: lastKey.slice(SUBTASK_SORT_KEY_PREFIX.length) }
      : { subtasks };
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
