import { describe, expect, it } from 'vitest';
import {
  counterItem,
  counterKey,
  parseKey,
  subtaskFromItem,
  subtaskItem,
  subtaskKey,
  taskFromItem,
  taskItem,
  taskKey,
} from '../../lambdas/store/task-items';
import { readyTask, shardCounter, status, subtaskRecord } from '../support/factories';

describe('the item keys', () => {
  it('keeps the task and its counters in TASK#<id>, and a subtask in its write shard TASK#<id>#<n>', () => {
    const keys = [taskKey('task-1'), counterKey('task-1', 3), subtaskKey('task-1', 3, 'sub-7')];

    expect(keys).toEqual([
      { pk: 'TASK#task-1', sk: 'TASK' },
      { pk: 'TASK#task-1', sk: 'SHARD#3' },
      { pk: 'TASK#task-1#3', sk: 'SUB#sub-7' },
    ]);
  });
});

describe('parseKey', () => {
  it.each([
    ['a task', taskKey('task-1'), { kind: 'task', taskId: 'task-1' }],
    ['a counter', counterKey('task-1', 12), { kind: 'counter', taskId: 'task-1', shard: 12 }],
    [
      'a subtask',
      subtaskKey('task-1', 4, 'sub-7'),
      { kind: 'subtask', taskId: 'task-1', shard: 4, subtaskId: 'sub-7' },
    ],
    [
      'a subtask of ids using the whole alphabet',
      subtaskKey('a.b:c-d_e', 0, 'x.y:z-w_v'),
      { kind: 'subtask', taskId: 'a.b:c-d_e', shard: 0, subtaskId: 'x.y:z-w_v' },
    ],
  ])('reads back the key of %s', (_, key, parsed) => {
    expect(parseKey(key.pk, key.sk)).toEqual(parsed);
  });

  it.each([
    ['an unknown partition', 'DUE', 'TASK'],
    ['an unknown sort key in a task partition', 'TASK#task-1', 'OTHER'],
    ['a counter sort key without a number', 'TASK#task-1', 'SHARD#x'],
    ['a shard partition with a non-subtask sort key', 'TASK#task-1#2', 'TASK'],
    ['a shard number of seven digits', 'TASK#task-1#1234567', 'SUB#a'],
    ['an empty task id', 'TASK#', 'TASK'],
    ['a task id over 128 characters', `TASK#${'t'.repeat(129)}`, 'TASK'],
  ])('calls %s other', (_, pk, sk) => {
    expect(parseKey(pk, sk)).toEqual({ kind: 'other' });
  });
});

describe('records and items', () => {
  it('gives a task back without its keys or its due-index attributes', () => {
    const task = readyTask();

    const record = taskFromItem({ ...taskItem(task, 1_767_226_560) });

    expect(taskItem(task, 1_767_226_560)).toMatchObject({ due_pk: 'DUE', due_at: 1_767_226_560 });
    expect(record).toEqual(task);
  });

  it('puts a task in the due index only when it is due', () => {
    const item = taskItem(readyTask());

    expect(item).not.toHaveProperty('due_pk');
    expect(item).not.toHaveProperty('due_at');
  });

  it('gives a subtask back without its keys', () => {
    const subtask = subtaskRecord(status('sub-7', { succeeded: 3, state: 'PROGRESS' }));

    const item = subtaskItem(subtask, 2);

    expect(item).toMatchObject({ pk: 'TASK#task-1#2', sk: 'SUB#sub-7' });
    expect(subtaskFromItem({ ...item })).toEqual(subtask);
  });

  it('keys a counter by its task and shard', () => {
    const counter = shardCounter(readyTask(), 1, { vsum: 5 });

    const item = counterItem(counter);

    expect(item).toEqual({ ...counter, pk: 'TASK#task-1', sk: 'SHARD#1' });
  });
});
