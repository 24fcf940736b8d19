/**
 * The Python package's pytest suite (`python/tests`), against a stack of its own: the drop-in for the reference's
 * functions, configured only by the environment `npm start` prints.
 */

import { afterAll, beforeAll, expect, it } from 'vitest';
import { PYTHON, runWithStackEnvironment, transcript } from './child-process';
import { startTestStack, type TestStack } from './stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

it('passes python/tests with pytest', { timeout: 120_000 }, async () => {
  const run = await runWithStackEnvironment(stack, PYTHON, [
    '-m',
    'pytest',
    'python/tests',
    '-q',
    '-p',
    'no:cacheprovider',
  ]);

  expect(run.code, transcript(run)).toBe(0);
  expect(run.stdout).toMatch(/\d+ passed/);
  expect(stack.errorLines()).toEqual([]);
});
