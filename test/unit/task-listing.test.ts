import { describe, expect, it } from 'vitest';
import { InvalidCursorError } from '../../lambdas/api/cursor';
import { InvalidBodyError, parseInitializeBody } from '../../lambdas/api/initialize-body';
import { decodeListCursor, encodeListCursor } from '../../lambdas/api/task-list-cursor';
import { differingFields, initializeTask } from '../../lambdas/core/task';
import { listPlan } from '../../lambdas/core/task-listing';
import { initializeRequest, T0 } from '../support/factories';

const KEY = { createdAt: '2026-01-01T00:00:00.000Z', taskId: 'task-1' };
const AT = KEY.createdAt;
const encodeJson = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

describe('listPlan', () => {
  it('answers one state from its own partition of the state index', () => {
    expect(listPlan('SUCCESS', undefined)).toEqual({ index: 'byState', partition: 'SUCCESS' });
    expect(listPlan('running', undefined)).toEqual({ index: 'byState', partition: 'PROGRESS' });
  });

  it('answers "ended" and no state from the index of all tasks', () => {
    expect(listPlan('ended', undefined)).toEqual({ index: 'all', filter: { op: '<>', state: 'PROGRESS' } });
    expect(listPlan(undefined, undefined)).toEqual({ index: 'all' });
  });

  it("filters a group's partition by state", () => {
    expect(listPlan(undefined, 'g')).toEqual({ index: 'byGroup', partition: 'g' });
    expect(listPlan('CANCELED', 'g')).toEqual({
      index: 'byGroup',
      partition: 'g',
      filter: { op: '=', state: 'CANCELED' },
    });
  });
});

describe('list cursor', () => {
  it('round-trips the sort key with the filter it was issued for', () => {
    const filter = { state: 'ended' as const, group: 'course-v1:X' };
    expect(decodeListCursor(encodeListCursor(KEY, filter), filter)).toEqual(KEY);
    expect(decodeListCursor(encodeListCursor(KEY, {}), {})).toEqual(KEY);
  });

  it('refuses a cursor issued for another state or group', () => {
    const cursor = encodeListCursor(KEY, { state: 'SUCCESS' });
    expect(() => decodeListCursor(cursor, {})).toThrow(InvalidCursorError);
    expect(() => decodeListCursor(cursor, { state: 'FAILURE' })).toThrow(InvalidCursorError);
    expect(() => decodeListCursor(cursor, { state: 'SUCCESS', group: 'g' })).toThrow(InvalidCursorError);
  });

  it.each([
    ['not base64url', '!!!'],
    ['not JSON', Buffer.from('{k:', 'utf8').toString('base64url')],
    ['an unknown field', encodeJson({ c: AT, t: 'task-1', s: 'ended', x: 1 })],
    ['no task id', encodeJson({ c: AT, s: 'ended' })],
    [
      'a time not as toISOString writes it',
      encodeJson({ c: '2026-01-01T00:00:00Z', t: 'task-1', s: 'ended' }),
    ],
    ['a task id outside the id alphabet', encodeJson({ c: AT, t: 'a b', s: 'ended' })],
    ['a task id over 128 characters', encodeJson({ c: AT, t: 'a'.repeat(129), s: 'ended' })],
    ['fields in another order', encodeJson({ t: 'task-1', c: AT, s: 'ended' })],
    ['padding', `${encodeListCursor(KEY, { state: 'ended' })}==`],
    ['over 1,024 characters', 'A'.repeat(1_025)],
  ])('refuses %s', (_, cursor) => {
    expect(() => decodeListCursor(cursor, { state: 'ended' })).toThrow(InvalidCursorError);
  });
});

describe('group at initialize', () => {
  const body = (group: unknown) =>
    JSON.stringify({ action_name: 'emailed', total: 1, subtask_count: 1, group });

  it('takes an optional group of up to 200 id characters and keeps it on the task', () => {
    const request = parseInitializeBody('t', body('course-v1:edX.Demo'));
    expect(initializeTask(request, T0, 'gen').task.group).toBe('course-v1:edX.Demo');
    expect(initializeTask(initializeRequest('t', 1), T0, 'gen').task).not.toHaveProperty('group');
    expect(parseInitializeBody('t', body('g'.repeat(200))).group).toHaveLength(200);
  });

  it.each([['g'.repeat(201)], ['a b'], [''], [7]])('refuses the group %j', (group) => {
    expect(() => parseInitializeBody('t', body(group))).toThrow(InvalidBodyError);
  });

  it('names the group when a repeat initialize gives another one', () => {
    const { task } = initializeTask(initializeRequest('t', 1, { group: 'a' }), T0, 'gen');
    expect(differingFields(task, initializeRequest('t', 1, { group: 'b' }))).toEqual(['group']);
    expect(differingFields(task, initializeRequest('t', 1))).toEqual(['group']);
    expect(differingFields(task, initializeRequest('t', 1, { group: 'a' }))).toEqual([]);
  });
});
