/**
 * What a stream record means to the aggregator. The same predicate as the event source's filters (which the
 * local poller and tests do not have): subtask changes and removals, and a task item's `PROGRESS → ended`. Any
 * other record — initialize's inserts, counter and task writes of the fold itself — means nothing, so the
 * fold's own writes never feed back into it.
 */

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import type { SubtaskRecord, TaskRecord } from '../core/task';
import { TABLE_KEYS } from '../service-settings';
import { parseKey, subtaskFromItem, taskFromItem } from '../store/task-items';

export type StreamChange =
  | { readonly kind: 'shard-changed'; readonly taskId: string; readonly shard: number }
  | { readonly kind: 'task-ended'; readonly task: TaskRecord }
  | { readonly kind: 'subtask-timed-out'; readonly subtask: SubtaskRecord };

type Image = NonNullable<NonNullable<DynamoDBRecord['dynamodb']>['NewImage']>;

function plain(image: Image | undefined): Record<string, unknown> | undefined {
  // Lambda's images are DynamoDB's JSON wire form, the very shape the SDK's unmarshall reads.
  return image === undefined ? undefined : unmarshall(image as Record<string, AttributeValue>);
}

function stringKey(record: DynamoDBRecord, name: string): string | undefined {
  return record.dynamodb?.Keys?.[name]?.S;
}

/** The changes one record carries, none for a record the aggregator has no business with. */
export function changesOf(record: DynamoDBRecord): StreamChange[] {
  const pk = stringKey(record, TABLE_KEYS.partitionKey);
  const sk = stringKey(record, TABLE_KEYS.sortKey);
  if (pk === undefined || sk === undefined) return [];
  const key = parseKey(pk, sk);
  const oldImage = plain(record.dynamodb?.OldImage);
  const newImage = plain(record.dynamodb?.NewImage);

  if (key.kind === 'subtask') {
    if (record.eventName !== 'MODIFY' && record.eventName !== 'REMOVE') return [];
    const changes: StreamChange[] = [{ kind: 'shard-changed', taskId: key.taskId, shard: key.shard }];
    if (
      record.eventName === 'MODIFY' &&
      newImage?.reason === 'TIMED_OUT' &&
      oldImage !== undefined &&
      oldImage.reason === undefined
    ) {
      changes.push({ kind: 'subtask-timed-out', subtask: subtaskFromItem(newImage) });
    }
    return changes;
  }
  if (
    key.kind === 'task' &&
    record.eventName === 'MODIFY' &&
    oldImage?.task_state === 'PROGRESS' &&
    newImage !== undefined &&
    newImage.task_state !== 'PROGRESS'
  ) {
    return [{ kind: 'task-ended', task: taskFromItem(newImage) }];
  }
  return [];
}
