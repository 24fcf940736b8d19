/**
 * Events not yet accepted by EventBridge, kept where nothing can lose them. A task's `Task Ended` is marked on
 * the task item by the very write that ends it (`event_pending`, and due on the sparse due index), so neither a
 * lost stream record nor a failed publish can drop it: the aggregator clears the mark once it published, the
 * sweeper publishes whatever is still marked. Other events the aggregator could not publish (`Subtask Timed Out`)
 * are written as items of the task's partition (`EVENT#<event_id>`) before their stream record is checkpointed,
 * with the task marked `outbox_pending`, and marked published once they are; the stream filters never match them.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ServiceEvent } from '../core/events';
import type { TaskRecord } from '../core/task';
import { SWEEPER, TABLE_KEYS } from '../service-settings';
import { attributeNames } from './expressions';
import { DUE_PARTITION, taskKey, taskPartition } from './task-items';

const OUTBOX_PREFIX = 'EVENT#';
const IN_OUTBOX = '#pk = :pk AND begins_with(#sk, :prefix)';
const UNPUBLISHED = 'attribute_not_exists(#published_at)';
const MARK_OUTBOX = 'SET #outbox_pending = :true, #due_pk = :due_pk, #due_at = :due_at';
const MARK_PUBLISHED = 'SET #published_at = :now';

// A mark is cleared, and an outbox entry recorded, only on the task record it belongs to.
const SAME_GENERATION = 'attribute_exists(#pk) AND #generation = :generation';
// Clearing a mark that is already clear would only move the due time: nothing to do.
const MARKED = 'attribute_exists(#event_pending)';
// The outbox mark is cleared once per sweep of the task; a deferral after that sets it again.
const OUTBOX_MARKED = 'attribute_exists(#outbox_pending)';
// An ended task's due time is the sweeper's alone; a task in progress has its own (`TaskStore.setDueAt`).
const ENDED = 'NOT #task_state = :progress';
// An ended task leaves the due index only when nothing of it waits to be published.
const NOTHING_PENDING = `${ENDED} AND attribute_not_exists(#event_pending) AND attribute_not_exists(#outbox_pending)`;
// An event id names one change: an entry already recorded is the same event.
const ENTRY_ABSENT = 'attribute_not_exists(#pk)';
// Marking an entry published never creates one (TTL may have removed it with its task).
const ENTRY_EXISTS = 'attribute_exists(#pk)';
// A deferral never creates a task item: a task removed meanwhile has nobody left to tell.
const TASK_EXISTS = 'attribute_exists(#pk)';

/** When the sweeper first looks at an ended task's `Task Ended` (epoch seconds): after the aggregator's turn. */
export function eventDueAt(endedAtMs: number): number {
  return Math.floor(endedAtMs / 1000) + SWEEPER.eventGraceSeconds;
}

/** Which task record a mark belongs to. */
type TaskIdentity = Pick<TaskRecord, 'task_id' | 'generation'>;

function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

/** Events of a task waiting to be published, and the marks that say so. */
export class PendingEvents {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private async update(input: {
    readonly task: TaskIdentity;
    readonly expression: string;
    /** Beside SAME_GENERATION, which every mark write has. */
    readonly condition?: string;
    readonly values?: Record<string, unknown>;
  }): Promise<boolean> {
    const condition =
      input.condition === undefined ? SAME_GENERATION : `${SAME_GENERATION} AND ${input.condition}`;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(input.task.task_id),
          UpdateExpression: input.expression,
          ConditionExpression: condition,
          ExpressionAttributeNames: attributeNames(input.expression, condition),
          ExpressionAttributeValues: { ':generation': input.task.generation, ...input.values },
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  /**
   * The task's `Task Ended` went out: clears its mark, and takes the task off the due index when nothing else
   * of it waits. False when the mark was already clear.
   */
  async clearTaskEnded(task: TaskIdentity): Promise<boolean> {
    const settled = await this.update({
      task,
      expression: 'REMOVE #event_pending, #due_pk, #due_at',
      condition: `${MARKED} AND ${ENDED} AND attribute_not_exists(#outbox_pending)`,
      values: { ':progress': 'PROGRESS' },
    });
    if (settled) return true;
    // Deferred events wait too: the task stays due for them.
    return this.update({
      task,
      expression: 'REMOVE #event_pending',
      condition: MARKED,
    });
  }

  /**
   * Records events the aggregator could not publish, then marks the task (due now) so that the sweeper
   * publishes them: entries first, so a sweeper that clears the mark and then reads the entries misses none.
   */
  async defer(
    task: Pick<TaskRecord, 'task_id' | 'expires_at'>,
    events: readonly ServiceEvent[],
  ): Promise<void> {
    const update = `SET #detail_type = :detail_type, #detail = :detail${task.expires_at === undefined ? '' : ', #expires_at = :expires_at'}`;
    await Promise.all(
      events.map(async (event) => {
        try {
          // An update that creates the entry: the aggregator's grants have no PutItem, and need none.
          await this.db.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: {
                [TABLE_KEYS.partitionKey]: taskPartition(task.task_id),
                [TABLE_KEYS.sortKey]: `${OUTBOX_PREFIX}${event.detail.event_id}`,
              },
              UpdateExpression: update,
              ConditionExpression: ENTRY_ABSENT,
              ExpressionAttributeNames: attributeNames(update, ENTRY_ABSENT),
              ExpressionAttributeValues: {
                ':detail_type': event.detailType,
                ':detail': event.detail,
                ...(task.expires_at === undefined ? {} : { ':expires_at': task.expires_at }),
              },
            }),
          );
        } catch (error) {
          if (!isConditionFailure(error)) throw error;
        }
      }),
    );
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: taskKey(task.task_id),
          UpdateExpression: MARK_OUTBOX,
          ConditionExpression: TASK_EXISTS,
          ExpressionAttributeNames: attributeNames(MARK_OUTBOX, TASK_EXISTS),
          // Due at once: the sweeper's next run publishes them.
          ExpressionAttributeValues: { ':true': true, ':due_pk': DUE_PARTITION, ':due_at': 0 },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailure(error)) throw error;
      });
  }

  /** Clears the outbox mark before its entries are read: a deferral after this sets it again. */
  clearOutboxMark(task: TaskRecord): Promise<boolean> {
    return this.update({
      task,
      expression: 'REMOVE #outbox_pending',
      condition: OUTBOX_MARKED,
    });
  }

  /** Sets the outbox mark again: some entries are still not published. */
  async markOutbox(task: TaskRecord): Promise<void> {
    await this.update({
      task,
      expression: 'SET #outbox_pending = :true',
      values: { ':true': true },
    });
  }

  /**
   * Deferred events of the task not yet published, at most `limit`, read consistently; `more` when others may
   * follow. Published entries are marked, not deleted (nothing of ours deletes items; TTL removes them with the
   * task), and skipped by the filter.
   */
  async deferred(taskId: string, limit: number): Promise<{ events: ServiceEvent[]; more: boolean }> {
    const events: ServiceEvent[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: IN_OUTBOX,
          FilterExpression: UNPUBLISHED,
          ExpressionAttributeNames: attributeNames(IN_OUTBOX, UNPUBLISHED),
          ExpressionAttributeValues: { ':pk': taskPartition(taskId), ':prefix': OUTBOX_PREFIX },
          ConsistentRead: true,
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        events.push({ detailType: String(item.detail_type), detail: item.detail as ServiceEvent['detail'] });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined && events.length < limit);
    return { events: events.slice(0, limit), more: startKey !== undefined || events.length > limit };
  }

  /** Marks a deferred event published: it is never read again. */
  async published(taskId: string, event: ServiceEvent, nowMs: number): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: {
            [TABLE_KEYS.partitionKey]: taskPartition(taskId),
            [TABLE_KEYS.sortKey]: `${OUTBOX_PREFIX}${event.detail.event_id}`,
          },
          UpdateExpression: MARK_PUBLISHED,
          ConditionExpression: ENTRY_EXISTS,
          ExpressionAttributeNames: attributeNames(MARK_PUBLISHED, ENTRY_EXISTS),
          ExpressionAttributeValues: { ':now': new Date(nowMs).toISOString() },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailure(error)) throw error;
      });
  }

  /**
   * Moves an ended task's due time (events still to publish), or takes it off the due index when nothing of it
   * waits any more.
   */
  async settleEnded(task: TaskRecord, dueAt: number | undefined): Promise<void> {
    if (dueAt === undefined) {
      await this.update({
        task,
        expression: 'REMOVE #due_pk, #due_at',
        condition: NOTHING_PENDING,
        values: { ':progress': 'PROGRESS' },
      });
      return;
    }
    await this.update({
      task,
      expression: 'SET #due_pk = :due_pk, #due_at = :due_at',
      condition: ENDED,
      values: { ':progress': 'PROGRESS', ':due_pk': DUE_PARTITION, ':due_at': dueAt },
    });
  }
}
