/** The API over real HTTP: its error answers, its listing, and the local gateway's own behaviour. */

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES, type RunningHttpGateway, startHttpGateway } from '../../local/http-gateway';
import { uniqueName } from '../support/aws';
import { type HttpAnswer, http, initialize, isRecord, startTestStack, type TestStack } from './stack';

let stack: TestStack;
let taskId: string;

beforeAll(async () => {
  stack = await startTestStack();
  taskId = uniqueName('task');
  await initialize(stack, taskId, ['s-1', 's-2', 's-3', 's-4', 's-5']);
});

afterAll(async () => {
  await stack?.stop();
});

function get(path: string, init?: RequestInit): Promise<HttpAnswer> {
  return http(`${stack.httpUrl}${path}`, init);
}

function expectJsonError(answer: HttpAnswer, status: number, error: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.json).toEqual({ error, message: expect.any(String) });
}

describe('progress API errors over HTTP', () => {
  it('answers 400 BadRequest to a malformed task id', async () => {
    const answer = await get('/tasks/not%20an%20id');

    expectJsonError(answer, 400, 'BadRequest');
    expect(answer.json).toMatchObject({ message: expect.stringContaining('task_id') });
  });

  it('answers 400 BadRequest to query parameters it cannot parse', async () => {
    const answers = await Promise.all([
      get(`/tasks/${taskId}/subtasks?limit=0`),
      get(`/tasks/${taskId}/subtasks?state=DONE`),
      get(`/tasks/${taskId}/subtasks?cursor=forged`),
      // API Gateway joins a repeated key with commas: "5,6" is no page size.
      get(`/tasks/${taskId}/subtasks?limit=5&limit=6`),
    ]);

    for (const answer of answers) expectJsonError(answer, 400, 'BadRequest');
  });

  it('answers 404 NotFound for a task that was never initialized, on both routes', async () => {
    const answers = await Promise.all([get('/tasks/never-created'), get('/tasks/never-created/subtasks')]);

    for (const answer of answers) expectJsonError(answer, 404, 'NotFound');
    expect(answers[0]?.json).toMatchObject({ message: "Task 'never-created' does not exist" });
  });

  it('answers 404 NotFound to a path that is no route', async () => {
    const answers = await Promise.all([
      get('/index.html'),
      get('/task'),
      get(`/tasks/${taskId}/subtasks/s-1`),
    ]);

    for (const answer of answers) expectJsonError(answer, 404, 'NotFound');
  });

  it('answers 405 naming the allowed methods to another method on a route path', async () => {
    const answers = await Promise.all([
      get(`/tasks/${taskId}`, { method: 'POST', body: '{"task_state":"SUCCESS"}' }),
      get(`/tasks/${taskId}/subtasks`, { method: 'DELETE' }),
      get(`/tasks/${taskId}/cancel`, { method: 'GET' }),
    ]);

    for (const answer of answers) expectJsonError(answer, 405, 'MethodNotAllowed');
    expect(answers.map((answer) => answer.headers.get('allow'))).toEqual(['GET, PUT', 'GET', 'POST']);
  });

  it('never shows internals in an error body', async () => {
    const answer = await get('/tasks/not%20an%20id');

    expect(answer.text).not.toMatch(/at .+\.ts:\d+|Exception|stack/i);
  });

  it('marks every answer nosniff', async () => {
    const answers = await Promise.all([get(`/tasks/${taskId}`), get('/tasks/never-created')]);

    for (const answer of answers) expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('GET /tasks/{task_id}/subtasks over HTTP', () => {
  it('pages through every subtask with next_cursor, and filters by state', async () => {
    const seen: unknown[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? 'limit=2' : `limit=2&cursor=${encodeURIComponent(cursor)}`;
      const page = await get(`/tasks/${taskId}/subtasks?${query}`);
      expect(page.status).toBe(200);
      if (!isRecord(page.json) || !Array.isArray(page.json.subtasks)) throw new Error(page.text);
      seen.push(...page.json.subtasks.map((subtask: unknown) => isRecord(subtask) && subtask.subtask_id));
      cursor = typeof page.json.next_cursor === 'string' ? page.json.next_cursor : null;
    } while (cursor !== null);
    const finished = await get(`/tasks/${taskId}/subtasks?state=SUCCESS`);

    expect(seen).toEqual(['s-1', 's-2', 's-3', 's-4', 's-5']);
    expect(finished.json).toEqual({ task_id: taskId, subtasks: [], next_cursor: null });
  });
});

describe('the local HTTP gateway', () => {
  let gateway: RunningHttpGateway;
  const reported: unknown[] = [];

  beforeAll(async () => {
    gateway = await startHttpGateway({
      port: 0,
      timeoutMs: 2_000,
      handler: async (event, context) => {
        const taskId = event.pathParameters?.task_id;
        if (taskId === 'explode') throw new Error('secret table name in a stack trace');
        // What a JavaScript function could return, though the type says it cannot.
        if (taskId === 'malformed') return { statusCode: 'two hundred' } as never;
        if (taskId === 'slow') await new Promise((resolve) => setTimeout(resolve, 3_000));
        const remainingMs = context.getRemainingTimeInMillis();
        return {
          statusCode: 200,
          headers: { 'x-echo': 'yes' },
          body: JSON.stringify({ event, remainingMs, functionName: context.functionName }),
        };
      },
      onError: (error) => reported.push(error),
    });
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it('hands the function a payload 2.0 event with the route, decoded parameters and joined query keys', async () => {
    const answer = await http(`${gateway.url}/tasks/a%3Ab/subtasks?state=RETRY&x=1&x=2`, {
      headers: { 'X-Custom': 'Value', cookie: 'a=1; b=2' },
    });

    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-echo')).toBe('yes');
    expect(answer.json).toMatchObject({
      event: {
        version: '2.0',
        routeKey: 'GET /tasks/{task_id}/subtasks',
        rawPath: '/tasks/a%3Ab/subtasks',
        rawQueryString: 'state=RETRY&x=1&x=2',
        queryStringParameters: { state: 'RETRY', x: '1,2' },
        pathParameters: { task_id: 'a:b' },
        cookies: ['a=1', 'b=2'],
        headers: { 'x-custom': 'Value' },
        isBase64Encoded: false,
        requestContext: {
          http: { method: 'GET', path: '/tasks/a%3Ab/subtasks', sourceIp: '127.0.0.1' },
          routeKey: 'GET /tasks/{task_id}/subtasks',
          stage: '$default',
          requestId: expect.stringMatching(/^[A-Za-z0-9+/]{15}=$/),
          time: expect.stringMatching(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/),
          timeEpoch: expect.any(Number),
        },
      },
      functionName: 'subtask-progress-api',
    });
    expect(isRecord(answer.json) && isRecord(answer.json.event) && 'body' in answer.json.event).toBe(false);
  });

  it('hands over a text body as it came, and any other body base64-encoded', async () => {
    const json = '{"action_name":"emailed","note":"déjà vu"}';
    const bytes = Buffer.from([0, 159, 146, 150, 255]);

    const [text, binary] = await Promise.all([
      http(`${gateway.url}/tasks/t-1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: json,
      }),
      http(`${gateway.url}/tasks/t-1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      }),
    ]);

    expect(text.json).toMatchObject({
      event: { routeKey: 'PUT /tasks/{task_id}', body: json, isBase64Encoded: false },
    });
    expect(binary.json).toMatchObject({ event: { body: bytes.toString('base64'), isBase64Encoded: true } });
  });

  it("gives the function a context whose remaining time counts down from the gateway's timeout", async () => {
    const answer = await http(`${gateway.url}/tasks/t-1`);

    const remainingMs = isRecord(answer.json) ? Number(answer.json.remainingMs) : Number.NaN;
    expect(remainingMs).toBeGreaterThan(0);
    expect(remainingMs).toBeLessThanOrEqual(2_000);
  });

  it('answers 503 when the function outlives the timeout, and stop() waits for it', async () => {
    const answer = await http(`${gateway.url}/tasks/slow`);

    expectJsonError(answer, 503, 'ServiceUnavailable');
    expect(reported.at(-1)).toMatchObject({ name: 'IntegrationTimeoutError' });
  });

  it('answers a plain 500 when the function throws or returns something malformed', async () => {
    const before = reported.length;
    const answers = await Promise.all([
      http(`${gateway.url}/tasks/explode`),
      http(`${gateway.url}/tasks/malformed`),
    ]);

    for (const answer of answers) {
      expectJsonError(answer, 500, 'InternalError');
      expect(answer.text).not.toContain('secret');
    }
    expect(reported.length - before).toBe(2);
  });

  it("refuses a request body over API Gateway's 10 MB without buffering it, and an event over Lambda's 6 MB", async () => {
    const sent = (size: number) =>
      new Promise<number | undefined>((resolve, reject) => {
        const outgoing = request(
          `${gateway.url}/tasks/anything`,
          { method: 'PUT', headers: { 'content-type': 'application/json' } },
          (response) => {
            response.resume();
            resolve(response.statusCode);
          },
        );
        // The server may close the connection while we are still writing; only its answer matters.
        outgoing.on('error', (error) => (outgoing.writableEnded ? resolve(undefined) : reject(error)));
        outgoing.end(Buffer.alloc(size, 'x'));
      });

    const [overGateway, overLambda] = await Promise.all([sent(MAX_BODY_BYTES + 1), sent(7 * 1024 * 1024)]);

    expect(overGateway).toBe(413);
    expect(overLambda).toBe(413);
  });
});
