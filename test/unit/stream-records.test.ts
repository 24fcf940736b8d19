/**
 * Stream records exactly as Lambda hands them over: keys and images in DynamoDB's JSON wire form (`{S}`, `{N}` as
 * a string, `{M}`, `{L}`, `{BOOL}`), written here by hand rather than by the SDK's marshaller.
 */

import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { changesOf } from '../../lambdas/aggregator/stream-records';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { type StreamImage, streamRecord } from '../support/factories';

const SUBTASK_PK = 'TASK#task-1#2';
const SUBTASK_SK = 'SUB#sub-7';

function statusImage(state: string, succeeded: number, failed: number): StreamImage {
  return {
    task_id: { S: 'sub-7' },
    attempted: { N: String(succeeded + failed) },
    succeeded: { N: String(succeeded) },
    failed: { N: String(failed) },
    skipped: { N: '0' },
    retried_nomax: { N: '0' },
    retried_withmax: { N: '1' },
    state: { S: state },
  };
}

function subtaskImage(state: string, version: number, extra: StreamImage = {}): StreamImage {
  return {
    pk: { S: SUBTASK_PK },
    sk: { S: SUBTASK_SK },
    task_id: { S: 'task-1' },
    subtask_id: { S: 'sub-7' },
    status: { M: statusImage(state, 5, 1) },
    version: { N: String(version) },
    generation: { S: 'gen-1' },
    updated_at: { S: `2026-01-01T00:0${version}:00.000Z` },
    expires_at: { N: '1770000000' },
    ...extra,
  };
}

function counts(attempted: number, succeeded: number): StreamImage {
  return {
    attempted: { N: String(attempted) },
    succeeded: { N: String(succeeded) },
    failed: { N: String(attempted - succeeded) },
    skipped: { N: '0' },
  };
}

function taskImage(state: string, version: number): StreamImage {
  const ended = state !== 'PROGRESS';
  return {
    pk: { S: 'TASK#task-1' },
    sk: { S: 'TASK' },
    task_id: { S: 'task-1' },
    generation: { S: 'gen-1' },
    digest: { S: 'digest' },
    subtask_digest: { S: 'subtask-digest' },
    ready: { BOOL: true },
    version: { N: String(version) },
    task_state: { S: state },
    task_output: {
      M: {
        action_name: { S: 'emailed' },
        ...counts(200, 190),
        total: { N: '200' },
        duration_ms: { N: '5000' },
        start_time: { N: '1767225600.5' },
      },
    },
    in_flight: { M: counts(0, 0) },
    subtasks: { M: { total: { N: '2' }, succeeded: { N: '2' }, failed: { N: '0' } } },
    write_shards: { N: '1' },
    shard_sizes: { L: [{ N: '2' }] },
    counters_vsum: { N: '4' },
    options: { M: { tolerated_failure_bp: { N: '500' } } },
    created_at: { S: '2026-01-01T00:00:00.500Z' },
    updated_at: { S: '2026-01-01T00:00:05.500Z' },
    ...(ended
      ? { ended_at: { S: '2026-01-01T00:00:05.500Z' } }
      : { due_pk: { S: 'DUE' }, due_at: { N: '1767226560' } }),
  };
}

function subtaskRecordOf(
  eventName: DynamoDBRecord['eventName'] & string,
  images: { old?: StreamImage; new?: StreamImage },
) {
  return streamRecord({
    eventName,
    pk: SUBTASK_PK,
    sk: SUBTASK_SK,
    ...(images.old === undefined ? {} : { oldImage: images.old }),
    ...(images.new === undefined ? {} : { newImage: images.new }),
  });
}

function taskRecordOf(eventName: DynamoDBRecord['eventName'] & string, oldState?: string, newState?: string) {
  return streamRecord({
    eventName,
    pk: 'TASK#task-1',
    sk: 'TASK',
    ...(oldState === undefined ? {} : { oldImage: taskImage(oldState, 5) }),
    ...(newState === undefined ? {} : { newImage: taskImage(newState, 6) }),
  });
}

describe('changesOf: subtask records', () => {
  it('reads a MODIFY as a change of the write shard named by its partition key', () => {
    const record = subtaskRecordOf('MODIFY', {
      old: subtaskImage('QUEUING', 0),
      new: subtaskImage('PROGRESS', 1),
    });

    const changes = changesOf(record);

    expect(changes).toEqual([{ kind: 'shard-changed', taskId: 'task-1', shard: 2 }]);
  });

  it('reads a REMOVE (TTL, or an operator) as a change of the shard too', () => {
    const record = subtaskRecordOf('REMOVE', { old: subtaskImage('PROGRESS', 3) });

    const changes = changesOf(record);

    expect(changes).toEqual([{ kind: 'shard-changed', taskId: 'task-1', shard: 2 }]);
  });

  it("ignores an INSERT: initialize's items change no counter", () => {
    const record = subtaskRecordOf('INSERT', { new: subtaskImage('QUEUING', 0) });

    const changes = changesOf(record);

    expect(changes).toEqual([]);
  });

  it('parses task ids of the whole id alphabet and multi-digit shards', () => {
    const record = streamRecord({
      eventName: 'MODIFY',
      pk: 'TASK#bulk.email:42-a_b#123',
      sk: 'SUB#x',
      oldImage: subtaskImage('QUEUING', 0),
      newImage: subtaskImage('PROGRESS', 1),
    });

    const changes = changesOf(record);

    expect(changes).toEqual([{ kind: 'shard-changed', taskId: 'bulk.email:42-a_b', shard: 123 }]);
  });

  it('adds a subtask-timed-out change, with the subtask as its new image holds it, when the sweeper times it out', () => {
    const timedOut = subtaskImage('FAILURE', 2, { reason: { S: 'TIMED_OUT' } });
    const record = subtaskRecordOf('MODIFY', { old: subtaskImage('PROGRESS', 1), new: timedOut });

    const changes = changesOf(record);

    const subtask: SubtaskRecord = {
      task_id: 'task-1',
      subtask_id: 'sub-7',
      status: {
        task_id: 'sub-7',
        attempted: 6,
        succeeded: 5,
        failed: 1,
        skipped: 0,
        retried_nomax: 0,
        retried_withmax: 1,
        state: 'FAILURE',
      },
      version: 2,
      generation: 'gen-1',
      updated_at: '2026-01-01T00:02:00.000Z',
      expires_at: 1_770_000_000,
      reason: 'TIMED_OUT',
    };
    expect(changes).toEqual([
      { kind: 'shard-changed', taskId: 'task-1', shard: 2 },
      { kind: 'subtask-timed-out', subtask },
    ]);
  });

  it('adds no timeout for a subtask the service ended for another reason', () => {
    const canceled = subtaskImage('REVOKED', 2, { reason: { S: 'CANCELED' } });
    const record = subtaskRecordOf('MODIFY', { old: subtaskImage('PROGRESS', 1), new: canceled });

    const changes = changesOf(record);

    expect(changes.map((change) => change.kind)).toEqual(['shard-changed']);
  });

  it('adds no timeout when the old image already had one (a record that changed nothing new)', () => {
    const timedOut = subtaskImage('FAILURE', 2, { reason: { S: 'TIMED_OUT' } });
    const record = subtaskRecordOf('MODIFY', { old: timedOut, new: timedOut });

    const changes = changesOf(record);

    expect(changes.map((change) => change.kind)).toEqual(['shard-changed']);
  });
});

describe('changesOf: task records', () => {
  it.each(['SUCCESS', 'FAILURE', 'CANCELED'])(
    'reads PROGRESS → %s as task-ended, with the task its new image holds',
    (state) => {
      const record = taskRecordOf('MODIFY', 'PROGRESS', state);

      const changes = changesOf(record);

      const task: TaskRecord = {
        task_id: 'task-1',
        generation: 'gen-1',
        digest: 'digest',
        subtask_digest: 'subtask-digest',
        ready: true,
        version: 6,
        task_state: state as TaskRecord['task_state'],
        task_output: {
          action_name: 'emailed',
          attempted: 200,
          succeeded: 190,
          failed: 10,
          skipped: 0,
          total: 200,
          duration_ms: 5_000,
          start_time: 1_767_225_600.5,
        },
        in_flight: { attempted: 0, succeeded: 0, failed: 0, skipped: 0 },
        subtasks: { total: 2, succeeded: 2, failed: 0 },
        write_shards: 1,
        shard_sizes: [2],
        counters_vsum: 4,
        options: { tolerated_failure_bp: 500 },
        created_at: '2026-01-01T00:00:00.500Z',
        updated_at: '2026-01-01T00:00:05.500Z',
        ended_at: '2026-01-01T00:00:05.500Z',
      };
      expect(changes).toEqual([{ kind: 'task-ended', task }]);
    },
  );

  it('ignores PROGRESS → PROGRESS: a fold of counts, not an ending', () => {
    const record = taskRecordOf('MODIFY', 'PROGRESS', 'PROGRESS');

    const changes = changesOf(record);

    expect(changes).toEqual([]);
  });

  it.each<[string, DynamoDBRecord]>([
    ['the INSERT of a new task', taskRecordOf('INSERT', undefined, 'PROGRESS')],
    ['the REMOVE of an ended task', taskRecordOf('REMOVE', 'SUCCESS')],
    ['a MODIFY of an already ended task', taskRecordOf('MODIFY', 'SUCCESS', 'SUCCESS')],
  ])('ignores %s', (_, record) => {
    const changes = changesOf(record);

    expect(changes).toEqual([]);
  });
});

describe('changesOf: everything else', () => {
  const counter = (vsum: number): StreamImage => ({
    pk: { S: 'TASK#task-1' },
    sk: { S: 'SHARD#0' },
    task_id: { S: 'task-1' },
    shard: { N: '0' },
    generation: { S: 'gen-1' },
    vsum: { N: String(vsum) },
  });

  it.each<[string, DynamoDBRecord]>([
    [
      'a counter MODIFY (the fold itself writing)',
      streamRecord({
        eventName: 'MODIFY',
        pk: 'TASK#task-1',
        sk: 'SHARD#0',
        oldImage: counter(3),
        newImage: counter(4),
      }),
    ],
    [
      'a counter INSERT (initialize)',
      streamRecord({ eventName: 'INSERT', pk: 'TASK#task-1', sk: 'SHARD#0', newImage: counter(0) }),
    ],
    ['an item of an unknown kind', streamRecord({ eventName: 'MODIFY', pk: 'OTHER#x', sk: 'SUB#y' })],
    [
      'a shard number too long to be one',
      streamRecord({ eventName: 'MODIFY', pk: 'TASK#t#1234567', sk: 'SUB#y' }),
    ],
  ])('ignores %s', (_, record) => {
    const changes = changesOf(record);

    expect(changes).toEqual([]);
  });

  it('ignores a record without keys', () => {
    const record: DynamoDBRecord = { eventName: 'MODIFY', eventID: '1', dynamodb: {} };

    const changes = changesOf(record);

    expect(changes).toEqual([]);
  });
});
