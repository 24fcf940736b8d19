/**
 * Large tasks over HTTP, at full write-shard size. One of 6,000 subtasks (six shards) initialized over several
 * requests (202, then the same PUT again); one of 20,000 (twenty shards) listed with a filter that matches
 * nothing, which each request answers after a bounded read.
 *
 * The gateway gives each request 10 s here instead of API Gateway's 30, so that an initialization stops writing
 * 8 s before the end of that budget: DynamoDB Local writes initialize's transactions at a few thousand items a
 * second at best, so 6,000 items take longer than the 2 s left and the task needs several requests on any
 * machine. On a machine busy enough that a page takes longer than 10 s, the gateway answers 503 while the function
 * finishes the page, as API Gateway would; the producer's next PUT carries on all the same.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { sleep } from '../../lambdas/core/backoff';
import { TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, uniqueName } from '../support/aws';
import { subtaskIds } from '../support/factories';
import { seedInitializedTask } from '../support/seed';
import { type HttpAnswer, http, isRecord, put, startTestStack, type TestStack } from './stack';

const REQUEST_TIMEOUT_MS = 10_000;
const LARGE_FAN_OUT = 6_000;
/** The listing's task: the size the bound is promised for. */
const LISTED_FAN_OUT = 20_000;
/** Items one listing request may read (`LISTING_READ_BUDGET`). */
const READ_BUDGET = 1_000;
const MAX_REQUESTS = 100;

let stack: TestStack;
/** Every answer to the initialization's PUTs, in order. */
const answers: HttpAnswer[] = [];

beforeAll(async () => {
  stack = await startTestStack({ httpTimeoutMs: REQUEST_TIMEOUT_MS });
});

afterAll(async () => {
  await stack?.stop();
});

function get(path: string): Promise<HttpAnswer> {
  return http(`${stack.httpUrl}${path}`);
}

function nextCursor(page: HttpAnswer | undefined): string | null {
  return isRecord(page?.json) && typeof page.json.next_cursor === 'string' ? page.json.next_cursor : null;
}

describe(`a fan-out of ${LARGE_FAN_OUT.toLocaleString('en')} subtasks`, () => {
  const taskId = uniqueName('large');
  const request = { action_name: 'emailed', total: LARGE_FAN_OUT * 10, subtask_count: LARGE_FAN_OUT };
  let cancelWhileWriting: HttpAnswer | undefined;

  beforeAll(async () => {
    // What a producer does: the same PUT again while the API answers 202 (or, overloaded, 503).
    for (let answer = await put(stack, taskId, request); ; answer = await put(stack, taskId, request)) {
      answers.push(answer);
      if (answer.status !== 202 && answer.status !== 503) break;
      // An overloaded API is given a moment, as a client backs off on 503; a 202 says to come again at once.
      if (answer.status === 503) await sleep(1_000);
      // Not ready after either answer: a 202 stopped before the last page, and the function behind a 503 is
      // still writing its page, with no time left for another.
      cancelWhileWriting ??= await http(`${stack.httpUrl}/tasks/${taskId}/cancel`, { method: 'POST' });
      if (answers.length >= MAX_REQUESTS)
        throw new Error(`Still not initialized after ${MAX_REQUESTS} requests`);
    }
  }, 300_000);

  it('is written over several requests: 202 with Retry-After (or 503, overloaded) until the last, then 200', () => {
    const statuses = answers.map((answer) => answer.status);
    const accepted = answers.filter((answer) => answer.status === 202);

    expect(statuses.length).toBeGreaterThanOrEqual(2);
    expect(statuses.slice(0, -1).every((status) => status === 202 || status === 503)).toBe(true);
    expect(statuses.at(-1)).toBe(200);
    for (const answer of accepted) {
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.json).toMatchObject({ task_state: 'PROGRESS', subtasks: { total: LARGE_FAN_OUT } });
    }
    expect(answers.at(-1)?.json).toMatchObject({
      task_state: 'PROGRESS',
      subtasks: { total: LARGE_FAN_OUT, remaining: LARGE_FAN_OUT },
    });
    // One generation throughout: every request carried on the same initialization.
    const generations = answers
      .filter((answer) => answer.status !== 503)
      .map((answer) => isRecord(answer.json) && answer.json.generation);
    expect(new Set(generations).size).toBe(1);
  });

  it('cannot be canceled while it is being written', () => {
    expect(cancelWhileWriting?.status).toBe(409);
    expect(cancelWhileWriting?.json).toMatchObject({ message: expect.stringContaining('initialized') });
  });
});

describe(`a listing of a task of ${LISTED_FAN_OUT.toLocaleString('en')} subtasks`, () => {
  const taskId = uniqueName('listed');

  beforeAll(async () => {
    // Seeded rather than initialized over HTTP: 20,000 conditional puts take minutes on DynamoDB Local.
    const db = documentClient(dynamoClient());
    const task = await seedInitializedTask(
      db,
      new TaskStore(db, stack.tableName),
      { taskId, actionName: 'emailed', total: LISTED_FAN_OUT, subtaskIds: subtaskIds(LISTED_FAN_OUT) },
      Date.now(),
    );
    expect(task).toMatchObject({ ready: true, write_shards: LISTED_FAN_OUT / 1_000 });
  }, 300_000);

  it('answers a listing filtered on a state nothing is in with bounded reads: empty pages and a cursor', async () => {
    const path = `/tasks/${taskId}/subtasks?state=SUCCESS&limit=100`;
    const pages: HttpAnswer[] = [await get(path)];
    for (let cursor = nextCursor(pages[0]); cursor !== null; cursor = nextCursor(pages.at(-1))) {
      pages.push(await get(`${path}&cursor=${encodeURIComponent(cursor)}`));
      if (pages.length > 100) break;
    }

    expect(pages.map((page) => page.status)).toEqual(pages.map(() => 200));
    expect(pages[0]?.json).toEqual({ task_id: taskId, subtasks: [], next_cursor: expect.any(String) });
    expect(pages.flatMap((page) => (isRecord(page.json) ? (page.json.subtasks as unknown[]) : []))).toEqual(
      [],
    );
    expect(nextCursor(pages.at(-1))).toBeNull();
    // Each request reads at most its budget: reading every item takes about items / budget requests, not one.
    expect(pages.length).toBeGreaterThanOrEqual(LISTED_FAN_OUT / READ_BUDGET);
    expect(pages.length).toBeLessThanOrEqual(Math.ceil(LISTED_FAN_OUT / READ_BUDGET) + 1);
  });

  it('answers an unfiltered listing with a full page and a cursor', async () => {
    const page = await get(`/tasks/${taskId}/subtasks?limit=100`);

    expect(page.status).toBe(200);
    expect(isRecord(page.json) && Array.isArray(page.json.subtasks) && page.json.subtasks.length).toBe(100);
    expect(nextCursor(page)).toEqual(expect.any(String));
  });
});

describe('the local stack', () => {
  it('reported no errors but the gateway timing out a request that overran', () => {
    const overran = answers.filter((answer) => answer.status === 503).length;
    const overruns = stack.errors.filter(
      ({ error }) => error instanceof Error && error.name === 'IntegrationTimeoutError',
    );

    expect(stack.errorLines().filter((line) => !line.includes('IntegrationTimeoutError'))).toEqual([]);
    expect(overruns).toHaveLength(overran);
  });
});
