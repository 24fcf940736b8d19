/**
 * A filtered listing over HTTP costs a query or two, not a round trip per item read: the stack's DynamoDB
 * endpoint is a proxy in front of DynamoDB Local that counts the Query calls reaching it for the task's
 * subtask partitions.
 */

import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor } from '../../lambdas/api/cursor';
import { documentClient } from '../../lambdas/aws-clients';
import { subtaskShard } from '../../lambdas/core/task';
import { writeShardCount } from '../../lambdas/core/write-shards';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, dynamoEndpoint, uniqueName } from '../support/aws';
import { subtaskIds, terminal } from '../support/factories';
import { seedInitializedTask } from '../support/seed';
import { http, isRecord, startTestStack, type TestStack } from './stack';

const FAN_OUT = 5_000;

/** An HTTP proxy to DynamoDB Local that counts the calls of each `X-Amz-Target` whose body satisfies `counts`. */
async function countingProxy(target: string, counts: (operation: string, body: string) => boolean) {
  const upstream = new URL(target);
  let counted = 0;
  const server: Server = createServer((incoming, answer) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation =
        String(incoming.headers['x-amz-target'] ?? '')
          .split('.')
          .at(-1) ?? '';
      if (counts(operation, body.toString('utf8'))) counted++;
      const forwarded = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: incoming.url,
          method: incoming.method,
          headers: incoming.headers,
        },
        (reply) => {
          answer.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(answer);
        },
      );
      forwarded.on('error', () => answer.destroy());
      forwarded.end(body);
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counted: () => counted,
    stop: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}

const taskId = uniqueName('filtered');
let stack: TestStack;
let proxy: Awaited<ReturnType<typeof countingProxy>>;
/** The two subtasks that have ended, in id order, both in the first write shard the listing reads. */
let finished: [string, string];

beforeAll(async () => {
  proxy = await countingProxy(
    dynamoEndpoint(),
    (operation, body) => operation === 'Query' && body.includes(`"TASK#${taskId}#`),
  );
  stack = await startTestStack({ dynamoEndpoint: proxy.endpoint });
  const db = documentClient(dynamoClient());
  const store = new TaskStore(db, stack.tableName);
  const task = await seedInitializedTask(
    db,
    store,
    { taskId, actionName: 'emailed', total: FAN_OUT, subtaskIds: subtaskIds(FAN_OUT) },
    Date.now(),
  );
  const firstShard = subtaskIds(FAN_OUT)
    .filter((id) => subtaskShard(task, id) === 0)
    .sort();
  finished = [firstShard[100] ?? '', firstShard[500] ?? ''];
  await applyToTask(
    store,
    taskId,
    finished.map((id) => ({ subtaskId: id, status: terminal(id, { succeeded: 1 }) })),
  );
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  await proxy?.stop();
});

describe(`a listing filtered on a state, on a task of ${FAN_OUT.toLocaleString('en')} subtasks`, () => {
  it('answers a page of 1 with at most 2 queries, its cursor at the item returned', async () => {
    const path = `/tasks/${taskId}/subtasks?state=SUCCESS&limit=1`;
    const before = proxy.counted();

    const first = await http(`${stack.httpUrl}${path}`);
    const queries = proxy.counted() - before;
    const cursor = isRecord(first.json) ? String(first.json.next_cursor) : '';
    const second = await http(`${stack.httpUrl}${path}&cursor=${encodeURIComponent(cursor)}`);

    expect(first.status).toBe(200);
    expect(isRecord(first.json) && first.json.subtasks).toEqual([
      expect.objectContaining({ subtask_id: finished[0], state: 'SUCCESS' }),
    ]);
    expect(queries).toBeGreaterThanOrEqual(1);
    expect(queries).toBeLessThanOrEqual(2);
    // The query read past the first match: the page is cut there, and the next one starts right after it.
    expect(decodeCursor(cursor, writeShardCount(FAN_OUT))).toEqual({ shard: 0, after: finished[0] });
    expect(isRecord(second.json) && second.json.subtasks).toEqual([
      expect.objectContaining({ subtask_id: finished[1], state: 'SUCCESS' }),
    ]);
  });
});
