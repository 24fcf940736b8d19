import { describe, expect, it } from 'vitest';
import {
  InvalidBodyError,
  MAX_INITIALIZE_BODY_BYTES,
  parseInitializeBody,
} from '../../lambdas/api/initialize-body';
import { MAX_SUBTASKS } from '../../lambdas/core/contract';

const JOB = { action_name: 'emailed', total: 300 };

function parse(body: unknown) {
  return parseInitializeBody('task-1', JSON.stringify(body));
}

function rejection(body: string | undefined): unknown {
  try {
    parseInitializeBody('task-1', body);
  } catch (error) {
    return error;
  }
  throw new Error(`expected body ${String(body).slice(0, 80)} to be rejected`);
}

describe('parseInitializeBody: what it accepts', () => {
  it('takes listed subtask ids as they are, with the task id from the path', () => {
    const request = parse({ ...JOB, subtask_ids: ['b', 'a', 'c'] });

    expect(request).toEqual({
      taskId: 'task-1',
      actionName: 'emailed',
      total: 300,
      subtaskIds: ['b', 'a', 'c'],
    });
  });

  it('numbers subtask_count subtasks after the prefix, zero-padded to one width', () => {
    const request = parse({ ...JOB, subtask_count: 11, prefix: 'job' });

    expect(request.subtaskIds).toHaveLength(11);
    expect(request.subtaskIds.slice(0, 2)).toEqual(['job-00', 'job-01']);
    expect(request.subtaskIds.at(-1)).toBe('job-10');
  });

  it("numbers them after 'sub' when no prefix is given", () => {
    const request = parse({ ...JOB, subtask_count: 3 });

    expect(request.subtaskIds).toEqual(['sub-0', 'sub-1', 'sub-2']);
  });

  it('maps every option to the core request', () => {
    const request = parse({
      ...JOB,
      subtask_count: 1,
      tolerated_failure_percentage: 2.5,
      subtask_timeout_seconds: 600,
      deadline: '2026-02-01T00:00:00+02:00',
      ttl_days: 30,
    });

    expect(request).toMatchObject({
      toleratedFailurePercentage: 2.5,
      subtaskTimeoutSeconds: 600,
      deadline: '2026-02-01T00:00:00+02:00',
      ttlDays: 30,
    });
  });

  it('leaves out options that were not given', () => {
    const request = parse({ ...JOB, subtask_count: 1 });

    expect(Object.keys(request).sort()).toEqual(['actionName', 'subtaskIds', 'taskId', 'total']);
  });

  it.each(['2026-02-01T00:00:00Z', '2026-02-01T00:00:00.123Z', '2026-02-01T00:00:00-05:30'])(
    'accepts the ISO 8601 deadline %s',
    (deadline) => {
      const request = parse({ ...JOB, subtask_count: 1, deadline });

      expect(request.deadline).toBe(deadline);
    },
  );

  it('leaves the rules that need the clock to the core: a deadline in the past parses', () => {
    const request = parse({ ...JOB, subtask_count: 1, deadline: '2000-01-01T00:00:00Z' });

    expect(request.deadline).toBe('2000-01-01T00:00:00Z');
  });
});

describe('parseInitializeBody: what it rejects, naming the field', () => {
  it.each<[string, unknown, string]>([
    [
      'both subtask_ids and subtask_count',
      { ...JOB, subtask_ids: ['a'], subtask_count: 1 },
      'body.subtask_ids',
    ],
    ['neither subtask_ids nor subtask_count', JOB, 'body.subtask_ids'],
    ['a prefix with subtask_ids', { ...JOB, subtask_ids: ['a'], prefix: 'job' }, 'body.prefix'],
    ['an unknown field', { ...JOB, subtask_count: 1, subtask_total: 1 }, 'body'],
    ['a missing action_name', { total: 1, subtask_count: 1 }, 'body.action_name'],
    ['an empty action_name', { ...JOB, action_name: '', subtask_count: 1 }, 'body.action_name'],
    [
      'an action_name over 256 characters',
      { ...JOB, action_name: 'a'.repeat(257), subtask_count: 1 },
      'body.action_name',
    ],
    ['a missing total', { action_name: 'emailed', subtask_count: 1 }, 'body.total'],
    ['a negative total', { ...JOB, total: -1, subtask_count: 1 }, 'body.total'],
    ['a fractional total', { ...JOB, total: 1.5, subtask_count: 1 }, 'body.total'],
    ['a total as a string', { ...JOB, total: '300', subtask_count: 1 }, 'body.total'],
    ['an empty subtask_ids', { ...JOB, subtask_ids: [] }, 'body.subtask_ids'],
    ['a subtask id with a slash', { ...JOB, subtask_ids: ['a', 'b/c'] }, 'body.subtask_ids.1'],
    ['a subtask_count of 0', { ...JOB, subtask_count: 0 }, 'body.subtask_count'],
    ['a fractional subtask_count', { ...JOB, subtask_count: 2.5 }, 'body.subtask_count'],
    ['a subtask_count over the maximum', { ...JOB, subtask_count: MAX_SUBTASKS + 1 }, 'body.subtask_count'],
    ['a prefix with a #', { ...JOB, subtask_count: 1, prefix: 'a#b' }, 'body.prefix'],
    ['a prefix over 100 characters', { ...JOB, subtask_count: 1, prefix: 'p'.repeat(101) }, 'body.prefix'],
    [
      'a null tolerance',
      { ...JOB, subtask_count: 1, tolerated_failure_percentage: null },
      'body.tolerated_failure_percentage',
    ],
    [
      'a tolerance as a string',
      { ...JOB, subtask_count: 1, tolerated_failure_percentage: '10' },
      'body.tolerated_failure_percentage',
    ],
    [
      'a negative tolerance',
      { ...JOB, subtask_count: 1, tolerated_failure_percentage: -1 },
      'body.tolerated_failure_percentage',
    ],
    [
      'a tolerance over 100',
      { ...JOB, subtask_count: 1, tolerated_failure_percentage: 100.5 },
      'body.tolerated_failure_percentage',
    ],
    [
      'a subtask timeout of 0',
      { ...JOB, subtask_count: 1, subtask_timeout_seconds: 0 },
      'body.subtask_timeout_seconds',
    ],
    ['a ttl_days of 0', { ...JOB, subtask_count: 1, ttl_days: 0 }, 'body.ttl_days'],
    [
      'a date without a time as deadline',
      { ...JOB, subtask_count: 1, deadline: '2026-02-01' },
      'body.deadline',
    ],
    [
      'a deadline without a time zone',
      { ...JOB, subtask_count: 1, deadline: '2026-02-01T00:00:00' },
      'body.deadline',
    ],
    ['a deadline in words', { ...JOB, subtask_count: 1, deadline: 'tomorrow' }, 'body.deadline'],
    ['a deadline in epoch ms', { ...JOB, subtask_count: 1, deadline: 1_769_904_000_000 }, 'body.deadline'],
    ['a JSON array', [JOB], 'body'],
    ['JSON null', null, 'body'],
  ])('%s', (_, body, where) => {
    const error = rejection(JSON.stringify(body));

    expect(error).toBeInstanceOf(InvalidBodyError);
    expect((error as Error).message.startsWith(`${where}:`)).toBe(true);
  });

  it.each<[string, string | undefined]>([
    ['no body', undefined],
    ['an empty body', ''],
    ['a body that is not JSON', '{"action_name":'],
  ])('rejects %s', (_, body) => {
    const error = rejection(body);

    expect(error).toBeInstanceOf(InvalidBodyError);
  });

  it(`rejects a body over ${MAX_INITIALIZE_BODY_BYTES} bytes before parsing it`, () => {
    const body = JSON.stringify({ ...JOB, subtask_count: 1 }) + ' '.repeat(MAX_INITIALIZE_BODY_BYTES);

    const error = rejection(body);

    expect(error).toBeInstanceOf(InvalidBodyError);
    expect((error as Error).message).toContain('bytes');
  });

  it('counts the cap in UTF-8 bytes, not characters', () => {
    const name = 'é'.repeat(MAX_INITIALIZE_BODY_BYTES / 2);
    const body = JSON.stringify({ ...JOB, action_name: name, subtask_count: 1 });

    const error = rejection(body);

    expect(body.length).toBeLessThan(MAX_INITIALIZE_BODY_BYTES);
    expect((error as Error).message).toContain('bytes');
  });

  it('accepts a body just under the cap', () => {
    const json = JSON.stringify({ ...JOB, subtask_count: 1 });
    const body = json + ' '.repeat(MAX_INITIALIZE_BODY_BYTES - json.length);

    const request = parseInitializeBody('task-1', body);

    expect(request.subtaskIds).toEqual(['sub-0']);
  });
});
