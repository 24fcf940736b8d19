/**
 * Creates a task's records (DESIGN §2 initialize): the task item, its write shards' counters and its subtask
 * items, written page by page so that a repeat of the request resumes where an earlier one stopped.
 */
import { randomUUID } from 'node:crypto';
import { InitializeConflictError, StoreUnavailableError } from '../core/errors';
import { nextDueAt } from '../core/fold';
import {
  type CheckedRequest,
  checkRequest,
  differingFields,
  type InitializeRequest,
  initialCounters,
  newTaskRecord,
  queuedSubtasks,
  subtaskShard,
  type TaskRecord,
} from '../core/task';
import { SWEEPER } from '../service-settings';
import {
  absentOrOtherGeneration,
  IN_PROGRESS,
  ITEM_ABSENT,
  NOT_READY,
  notYetWritten,
  sameGeneration,
} from './conditions';
import { all } from './expressions';
import { type ItemKind, inParallel, type Table } from './table';
import { counterItem, DUE_PARTITION, subtaskItem, taskItem, taskKey } from './task-items';
import type { TaskUpdates } from './task-updates';

/** Single puts in flight at once while a task is initialized (the fallback when a transaction is canceled). */
const INITIALIZE_PARALLELISM = 32;
/**
 * One transaction at a time. On DynamoDB a transaction of 100 puts takes tens of milliseconds, which keeps pace
 * with the CPU a 256 MB function has to build them. DynamoDB Local serializes transactions: measured there, 5,000
 * items took 5.2 s one transaction at a time, 15 s four at a time and 22 s thirty-two at a time, and concurrent
 * writers of the same emulator waited up to its 20 s lock timeout.
 */
const TRANSACTIONS_IN_FLIGHT = 1;
/**
 * Initialize's puts go 100 to a `TransactWriteItems` (its limit), each with its own condition: measured, a
 * transaction of 100 costs the function about a twentieth of the CPU of 100 single puts (0.03-0.06 ms an item
 * against 0.7-1.0 ms), which is what lets a million subtasks initialize at 256 MB. DynamoDB bills a
 * transactional put twice; initialize writes each item once.
 */
const TRANSACTION_LIMIT = 100;
/** Subtask puts between two saves of how far an initialization got, so a resumed one skips what is done. */
const INITIALIZE_PAGE = 1_000;

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

export class InitializeRecords {
  constructor(
    private readonly table: Table,
    private readonly tasks: TaskUpdates,
  ) {}

  /**
   * Creates the task's records: the task item first, not ready, with a fresh generation; then each counter and
   * subtask item where absent or of another generation; then `ready`. The same request again resumes or returns
   * the task, whatever the time; another request under the same id fails with `InitializeConflictError` naming
   * what differs. A lost race or a crash never leaves subtask items that a task treats as its own. A resume reads
   * the task first and writes only what is not yet written, page by page in id order, each page built when it is
   * written.
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
    const existing = await this.tasks.getTask(request.taskId);
    if (existing !== undefined) return this.carryOn(existing, checked, nowMs, paging);
    const task = newTaskRecord(checked, nowMs, options.generation ?? randomUUID(), options.writeShards);
    if (!(await this.table.put('task', taskItem(task, graceEnd(nowMs)), ITEM_ABSENT))) {
      const raced = await this.tasks.getTask(request.taskId);
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
    return { task: (await this.tasks.getTask(task.task_id)) ?? task, created };
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
    const when = absentOrOtherGeneration(generation);
    const chunks: (readonly object[])[] = [];
    for (let start = 0; start < items.length; start += TRANSACTION_LIMIT) {
      chunks.push(items.slice(start, start + TRANSACTION_LIMIT));
    }
    const putChunk = async (chunk: readonly object[]) => {
      if (await this.table.putAll(kind, chunk, when)) return;
      // One item already written (a resume over what a killed request wrote) or a throttled one cancels them
      // all: each on its own then, with the SDK's retries.
      await inParallel(chunk, INITIALIZE_PARALLELISM, (item) => this.table.put(kind, item, when));
    };
    const done = await inParallel(chunks, TRANSACTIONS_IN_FLIGHT, putChunk, more);
    return Math.min(done * TRANSACTION_LIMIT, items.length);
  }

  /**
   * Records how far the initialization got and pushes its due time a grace away: an initialization still
   * advancing is never given up. False when the task ended or was replaced meanwhile.
   */
  private async saveProgress(task: TaskRecord, written: number, nowMs: number): Promise<boolean> {
    const saved = await this.table.update(taskKey(task.task_id), {
      set: ['#init_written = :written', '#updated_at = :now', '#due_pk = :due_pk', '#due_at = :due_at'],
      values: { ':now': new Date(nowMs).toISOString(), ':due_pk': DUE_PARTITION, ':due_at': graceEnd(nowMs) },
      when: all(sameGeneration(task.generation), IN_PROGRESS, notYetWritten(written)),
    });
    if (saved) return true;
    // Another resumer got further (carry on), or the task ended or was replaced (stop).
    const now = await this.tasks.getTask(task.task_id);
    return now?.generation === task.generation && now.task_state === 'PROGRESS';
  }

  private async markReady(task: TaskRecord, nowMs: number): Promise<void> {
    // False when another resumer marked it ready first, or the sweeper ended it meanwhile: either way it stays.
    await this.table.update(taskKey(task.task_id), {
      set: ['#ready = :true', '#version = #version + :one', '#updated_at = :now', '#due_at = :due'],
      values: {
        ':true': true,
        ':one': 1,
        ':now': new Date(nowMs).toISOString(),
        // Every subtask is waiting from now on: due at its deadline, its first timeout, or the idle recount.
        ':due': nextDueAt(task, nowMs, nowMs),
      },
      when: all(sameGeneration(task.generation), IN_PROGRESS, NOT_READY),
    });
  }
}
