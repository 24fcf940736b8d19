/**
 * The task item after initialize: its reads, the fold's totals, a cancel, and the end of an initialization that
 * never completed.
 */
import type { FoldResult } from '../core/fold';
import type { TaskRecord, TaskState } from '../core/task';
import {
  IN_PROGRESS,
  NOT_CANCELED,
  NOT_READY,
  newerTotals,
  READY,
  sameGeneration,
  unchangedSince,
} from './conditions';
import { all } from './expressions';
import { eventDueAt } from './pending-events';
import type { ReadOptions, Table } from './table';
import { DUE_PARTITION, taskFromItem, taskItem, taskKey } from './task-items';

export class TaskUpdates {
  constructor(private readonly table: Table) {}

  /**
   * The task as last written (a consistent read unless asked otherwise), or undefined when it was never
   * initialized.
   */
  async getTask(taskId: string, options: ReadOptions = {}): Promise<TaskRecord | undefined> {
    const item = await this.table.get('task', taskKey(taskId), options);
    return item === undefined ? undefined : taskFromItem(item);
  }

  /**
   * Writes the fold's totals into the task read as `read`, unless newer totals are stored, the task was replaced
   * or it ended. An ending write also requires the cancel flag as read, so a concurrent cancel makes the caller
   * re-read and end `CANCELED`. False when a condition failed.
   */
  writeFold(read: TaskRecord, { task, dueAt }: FoldResult): Promise<boolean> {
    const ending = task.task_state !== 'PROGRESS';
    const stored = [sameGeneration(read.generation), IN_PROGRESS, newerTotals(task.counters_vsum)];
    return this.table.update(
      taskKey(read.task_id),
      {
        set: [
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
        ],
        values: {
          ':one': 1,
          ':task_output': task.task_output,
          ':in_flight': task.in_flight,
          ':subtasks': task.subtasks,
          ':updated_at': task.updated_at,
          ':due_pk': DUE_PARTITION,
          ':due_at': ending ? eventDueAt(Date.parse(task.ended_at ?? task.updated_at)) : dueAt,
          ...(ending ? { ':task_state': task.task_state, ':ended_at': task.ended_at, ':true': true } : {}),
        },
        when: all(...stored, ...(ending && read.cancel_requested !== true ? [NOT_CANCELED] : [])),
      },
      { kind: 'task', item: taskItem(task, dueAt) },
    );
  }

  /**
   * Sets `cancel_requested` on a ready task in progress and makes it due now, so the sweeper revokes its
   * subtasks. False when the condition failed (the caller re-reads to say why). Idempotent: a second cancel
   * writes the flag again.
   */
  requestCancel(task: TaskRecord, nowMs: number): Promise<boolean> {
    return this.table.update(taskKey(task.task_id), {
      set: [
        '#cancel_requested = :true',
        '#version = #version + :one',
        '#updated_at = :now',
        '#due_pk = :due_pk',
        '#due_at = :due_at',
      ],
      values: {
        ':true': true,
        ':one': 1,
        ':now': new Date(nowMs).toISOString(),
        ':due_pk': DUE_PARTITION,
        ':due_at': Math.floor(nowMs / 1000),
      },
      when: all(sameGeneration(task.generation), IN_PROGRESS, READY),
    });
  }

  /**
   * Ends a task that never became ready (`INITIALIZE_INCOMPLETE`): no subtask of it can be trusted to exist, so
   * it ends `FAILURE` without a fold. False when it became ready, ended or saved a page since `task` was read.
   */
  endIncomplete(task: TaskRecord, state: TaskState, reason: string, nowMs: number): Promise<boolean> {
    return this.table.update(taskKey(task.task_id), {
      set: [
        '#task_state = :state',
        '#end_reason = :reason',
        '#ended_at = :now',
        '#updated_at = :now',
        '#version = #version + :one',
        '#event_pending = :true',
        '#due_pk = :due_pk',
        '#due_at = :event_due',
      ],
      values: {
        ':state': state,
        ':reason': reason,
        ':now': new Date(nowMs).toISOString(),
        ':one': 1,
        ':true': true,
        ':due_pk': DUE_PARTITION,
        ':event_due': eventDueAt(nowMs),
      },
      when: all(sameGeneration(task.generation), IN_PROGRESS, NOT_READY, unchangedSince(task.updated_at)),
    });
  }
}
