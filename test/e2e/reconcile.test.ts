/** `npm run reconcile`, the operators' recount of one task, against the local stack's table. */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReconcile } from '../../ops/reconcile';
import { uniqueName } from '../support/aws';
import { initialize, sendBodies, settled, startTestStack, type TestStack, wireMessage } from './stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

async function reconcile(args: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runReconcile(args, {
    env: process.env,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('npm run reconcile', () => {
  it('recounts a task from its subtask items, straight on the table, and says so', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['a', 'b'], { total: 20 });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 9, failed: 1, state: 'SUCCESS' }),
    ]);
    await settled(stack);

    const reconciled = await reconcile([taskId]);
    const unknown = await reconcile(['never-created']);
    const usage = await reconcile([]);

    expect(reconciled.code).toBe(0);
    expect(reconciled.stdout).toContain(`Recounted 1 write shard of task ${taskId}; its totals were right.`);
    expect(reconciled.stdout).toContain('items     10 attempted: 9 succeeded, 1 failed');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("Task 'never-created' does not exist");
    expect(usage).toMatchObject({ code: 2, stderr: 'Usage: npm run reconcile -- <task_id>' });
  });
});
