/**
 * The local stack runs every function with the grants of the synthesized template, so a grant the CDK code lacks
 * fails here as it fails on AWS. Every other end-to-end test checks that nothing it does is denied (the test
 * stack's `stop()`); this one shows that the check can fail, with one grant taken away.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/aws';
import {
  eventually,
  initialize,
  progressOf,
  sendBodies,
  startTestStack,
  type TestStack,
  wireMessage,
} from './stack';

let stack: TestStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('the synthesized grants', () => {
  it("without the aggregator's PutItem, every counter write is denied and the progress never moves", async () => {
    stack = await startTestStack({
      expectDenials: true,
      statementsFor: (name, statements) =>
        name !== 'aggregator'
          ? statements
          : statements.map((statement) => ({
              ...statement,
              Action: statement.Action.filter((action) => action !== 'dynamodb:PutItem'),
            })),
    });
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['a']);

    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
    ]);
    const denials = await eventually(
      async () => stack?.denials ?? [],
      (seen) => seen.length > 0,
    );

    expect(denials[0]).toEqual({
      function: 'aggregator',
      action: 'dynamodb:PutItem',
      resource: `arn:aws:dynamodb:us-east-1:000000000000:table/${stack.tableName}`,
    });
    expect(await progressOf(stack, taskId)).toMatchObject({
      task_state: 'PROGRESS',
      subtasks: { succeeded: 0 },
    });
  });

  it('with every grant as synthesized, a task is initialized, applied, folded and ended without a denial', async () => {
    stack = await startTestStack();
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['a', 'b']);

    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 100, failed: 0, state: 'SUCCESS' }),
      wireMessage(taskId, 'b', { succeeded: 99, failed: 1, state: 'SUCCESS' }),
    ]);
    const ended = await eventually(
      () => progressOf(stack as TestStack, taskId),
      (progress) => progress.task_state !== 'PROGRESS',
    );
    await stack.sweepNow();

    expect(ended).toMatchObject({ task_state: 'SUCCESS', subtasks: { succeeded: 2 } });
    expect(stack.denials).toEqual([]);
  });
});
