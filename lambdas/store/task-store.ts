/**
 * The DynamoDB adapter for tasks, their write shards' counters and their subtasks: one object over the parts
 * each caller uses, and the narrow view each caller is given.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { FoldResult } from '../core/fold';
import type { InitializeRequest, ShardCounter, SubtaskRecord, TaskRecord, TaskState } from '../core/task';
import type { TaskListPage, TaskListQuery } from '../core/task-listing';
import { DueIndex, type SweepPosition } from './due-index';
import { type InitializeOptions, InitializeRecords, type InitializeResult } from './initialize-records';
import { PendingEvents } from './pending-events';
import { ShardCounters } from './shard-counters';
import { type RunningPage, SubtaskItems, type SubtaskPage, type SubtaskQuery } from './subtask-items';
import { type ReadOptions, type StoreObserver, Table } from './table';
import type { DueLane } from './task-items';
import { listTasks } from './task-listing';
import { TaskUpdates } from './task-updates';

export type { ShardPosition } from '../core/subtask-listing';
export type { SweepPosition } from './due-index';
export type { InitializeOptions, InitializeResult } from './initialize-records';
export type { RunningPage, SubtaskPage, SubtaskQuery } from './subtask-items';
export type { ItemKind, ReadOptions, StoreObserver } from './table';

export class TaskStore {
  constructor(
    db: DynamoDBDocumentClient,
    readonly tableName: string,
    observer?: StoreObserver,
    random: () => number = Math.random,
  ) {
    this.table = new Table(db, tableName, observer, random);
    this.tasks = new TaskUpdates(this.table);
    this.records = new InitializeRecords(this.table, this.tasks);
    this.subtasks = new SubtaskItems(this.table);
    this.counters = new ShardCounters(this.table);
    this.due = new DueIndex(this.table);
    this.pendingEvents = new PendingEvents(db, tableName);
  }

  private readonly table: Table;
  private readonly tasks: TaskUpdates;
  private readonly records: InitializeRecords;
  private readonly subtasks: SubtaskItems;
  private readonly counters: ShardCounters;
  private readonly due: DueIndex;
  /** Events of a task not yet published, and their marks. */
  readonly pendingEvents: PendingEvents;

  /** See `InitializeRecords.initialize`. */
  initialize(
    request: InitializeRequest,
    nowMs: number,
    options?: InitializeOptions,
  ): Promise<InitializeResult> {
    return this.records.initialize(request, nowMs, options);
  }

  getTask(taskId: string, options?: ReadOptions): Promise<TaskRecord | undefined> {
    return this.tasks.getTask(taskId, options);
  }

  writeFold(read: TaskRecord, result: FoldResult): Promise<boolean> {
    return this.tasks.writeFold(read, result);
  }

  requestCancel(task: TaskRecord, nowMs: number): Promise<boolean> {
    return this.tasks.requestCancel(task, nowMs);
  }

  endIncomplete(task: TaskRecord, state: TaskState, reason: string, nowMs: number): Promise<boolean> {
    return this.tasks.endIncomplete(task, state, reason, nowMs);
  }

  getSubtasks(
    task: TaskRecord,
    ids: readonly string[],
    options?: ReadOptions,
  ): Promise<Map<string, SubtaskRecord>> {
    return this.subtasks.getSubtasks(task, ids, options);
  }

  writeSubtask(task: TaskRecord, subtask: SubtaskRecord, expectedVersion: number): Promise<boolean> {
    return this.subtasks.writeSubtask(task, subtask, expectedVersion);
  }

  readShard(task: TaskRecord, shard: number): Promise<SubtaskRecord[]> {
    return this.subtasks.readShard(task, shard);
  }

  listSubtasks(task: TaskRecord, query: SubtaskQuery): Promise<SubtaskPage> {
    return this.subtasks.listSubtasks(task, query);
  }

  runningSubtasks(
    task: TaskRecord,
    shard: number,
    page: RunningPage,
  ): Promise<{ readonly subtasks: SubtaskRecord[]; readonly next?: string }> {
    return this.subtasks.runningSubtasks(task, shard, page);
  }

  writeCounter(counter: ShardCounter): Promise<boolean> {
    return this.counters.writeCounter(counter);
  }

  getCounters(task: TaskRecord): Promise<ShardCounter[]> {
    return this.counters.getCounters(task);
  }

  /** A page of tasks, newest first (see `task-listing.ts`): at most `readBudget` index entries read. */
  listTasks(query: TaskListQuery): Promise<TaskListPage> {
    return listTasks(
      {
        query: (input) => this.table.query('task', input),
        rows: (keys, attributes) => this.table.batchGet('task', keys, { consistent: false, attributes }),
      },
      query,
    );
  }

  dueTaskIds(nowSeconds: number, limit: number, lane?: DueLane): Promise<string[]> {
    return this.due.dueTaskIds(nowSeconds, limit, lane);
  }

  setDueAt(task: TaskRecord, dueAt: number, sweep?: SweepPosition): Promise<void> {
    return this.due.setDueAt(task, dueAt, sweep);
  }
}

/** What the applier reads and writes: a task and its subtasks. */
export type ApplierStore = Pick<TaskStore, 'getTask' | 'getSubtasks' | 'writeSubtask'>;
/** What the fold reads and writes: shards, their counters, the task's totals and its unpublished events. */
export type FoldStore = Pick<
  TaskStore,
  'getTask' | 'readShard' | 'writeCounter' | 'getCounters' | 'writeFold' | 'pendingEvents'
>;
/** What the API reads and writes. */
export type ApiStore = Pick<
  TaskStore,
  'initialize' | 'getTask' | 'listSubtasks' | 'listTasks' | 'requestCancel'
>;
