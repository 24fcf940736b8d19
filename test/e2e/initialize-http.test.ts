/** `PUT /tasks/{task_id}` over real HTTP, and every answer it gives but 202 (see `large-task.test.ts`). */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/aws';
import { type HttpAnswer, http, isRecord, put, startTestStack, type TestStack } from './stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

function get(path: string): Promise<HttpAnswer> {
  return http(`${stack.httpUrl}${path}`);
}

function body(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { action_name: 'emailed', total: 300, subtask_ids: ['a', 'b', 'c'], ...extra };
}

describe('PUT /tasks/{task_id}', () => {
  it('answers 201 with the new task, ready, every subtask QUEUING', async () => {
    const taskId = uniqueName('task');

    const answer = await put(stack, taskId, body({ tolerated_failure_percentage: 2.5 }));
    const listing = await get(`/tasks/${taskId}/subtasks`);

    expect(answer.status).toBe(201);
    expect(answer.headers.get('etag')).toMatch(/^"[^".]+\.\d+"$/);
    expect(answer.json).toMatchObject({
      task_id: taskId,
      task_state: 'PROGRESS',
      in_progress: true,
      task_progress: { action_name: 'emailed', attempted: 0, total: 300 },
      subtasks: { total: 3, succeeded: 0, failed: 0, remaining: 3 },
      cancel_requested: false,
      generation: expect.any(String),
    });
    expect(listing.json).toMatchObject({
      subtasks: ['a', 'b', 'c'].map((id) => ({
        subtask_id: id,
        task_id: id,
        state: 'QUEUING',
        attempted: 0,
      })),
      next_cursor: null,
    });
  });

  it('answers 200 with the same task to the same request again, whatever the order of its subtasks', async () => {
    const taskId = uniqueName('task');
    const created = await put(stack, taskId, body());

    const again = await put(stack, taskId, body({ subtask_ids: ['c', 'a', 'b'] }));

    expect(created.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(created.json);
  });

  it('answers 409 naming the fields that differ, and leaves the task as it was', async () => {
    const taskId = uniqueName('task');
    const created = await put(stack, taskId, body());

    const conflicts = await Promise.all([
      put(stack, taskId, body({ total: 301 })),
      put(stack, taskId, body({ subtask_ids: ['a', 'b', 'd'], subtask_timeout_seconds: 60 })),
      put(stack, taskId, body({ action_name: 'printed' })),
    ]);
    const after = await get(`/tasks/${taskId}`);

    for (const conflict of conflicts) {
      expect(conflict.status).toBe(409);
      expect(conflict.json).toMatchObject({ error: 'Conflict' });
    }
    expect(conflicts.map((conflict) => isRecord(conflict.json) && conflict.json.message)).toEqual([
      expect.stringMatching(/different total$/),
      expect.stringMatching(/different subtask set, options$/),
      expect.stringMatching(/different action_name$/),
    ]);
    expect(after.json).toEqual(created.json);
  });

  it('answers 400 to a body that is not a valid initialization, and creates nothing', async () => {
    const invalid: Record<string, unknown> = {
      'not-json': '{"action_name": "emailed",',
      'no-action': { total: 1, subtask_ids: ['a'] },
      'ids-and-count': body({ subtask_count: 3 }),
      'prefix-alone': body({ prefix: 'part' }),
      'no-subtasks': body({ subtask_ids: [] }),
      'same-id-twice': body({ subtask_ids: ['a', 'a'] }),
      'bad-id': body({ subtask_ids: ['a b'] }),
      'past-deadline': body({ deadline: '2020-01-01T00:00:00Z' }),
      'three-decimals': body({ tolerated_failure_percentage: 1.125 }),
      'unknown-field': body({ color: 'blue' }),
    };
    const prefix = uniqueName('bad');

    const answers = await Promise.all(
      Object.entries(invalid).map(([name, value]) => put(stack, `${prefix}-${name}`, value)),
    );
    const afterwards = await Promise.all(Object.keys(invalid).map((name) => get(`/tasks/${prefix}-${name}`)));

    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ error: 'BadRequest', message: expect.any(String) });
    }
    expect(afterwards.map((answer) => answer.status)).toEqual(afterwards.map(() => 404));
  });

  it('answers 400 to an empty body, and to one that is not UTF-8 text', async () => {
    const taskId = uniqueName('task');

    const empty = await http(`${stack.httpUrl}/tasks/${taskId}`, { method: 'PUT' });
    // Not a text type: the gateway hands it over base64-encoded, and the API decodes it before parsing.
    const octets = await http(`${stack.httpUrl}/tasks/${taskId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from(JSON.stringify(body({ total: -1 }))),
    });

    expect(empty.status).toBe(400);
    expect(octets.status).toBe(400);
    expect(octets.json).toMatchObject({ message: expect.stringContaining('total') });
  });
});

describe('the local stack', () => {
  it('reported no errors while serving the tests above', () => {
    expect(stack.errorLines()).toEqual([]);
  });
});
