/**
 * The README's Python and AWS CLI snippets, taken from the README and run as written, in order, against a stack of
 * their own with the environment of the `export …` line: what a new user pastes must work. Each such block says
 * before it whether it runs (`<!-- runs-against-local-stack -->`) or why not (`<!-- not-run: … -->`).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, ROOT, runWithStackEnvironment, transcript } from './child-process';
import { finishedProgress, isRecord, progressOf, put, startTestStack, type TestStack } from './stack';

interface Snippet {
  readonly language: string;
  readonly code: string;
  readonly line: number;
  readonly marker: string | undefined;
}

const MARKER = /^<!-- (runs-against-local-stack|not-run)\b.*-->$/;

function readmeSnippets(): Snippet[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let index = 0; index < lines.length; index++) {
    const language = /^```(\w+)\s*$/.exec(lines[index] ?? '')?.[1];
    if (language === undefined) continue;
    const end = lines.findIndex((line, at) => at > index && line.startsWith('```'));
    if (end === -1) throw new Error(`README.md:${index + 1}: a code block that never closes`);
    const marker = MARKER.exec(lines[index - 1] ?? '')?.[1];
    snippets.push({ language, code: lines.slice(index + 1, end).join('\n'), line: index + 1, marker });
    index = end;
  }
  return snippets;
}

const isPythonOrAwsCli = (snippet: Snippet) =>
  snippet.language === 'python' || (snippet.language === 'sh' && /^\s*aws\s/m.test(snippet.code));

const snippets = readmeSnippets().filter(isPythonOrAwsCli);
const runnable = snippets.filter((snippet) => snippet.marker === 'runs-against-local-stack');

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
  // What the README's curl lines do before its SQS snippets (they name localhost:3000, the stack another port).
  const created = await put(stack, 'job-2', { action_name: 'emailed', total: 200, subtask_ids: ['a', 'b'] });
  if (created.status !== 201) throw new Error(`PUT /tasks/job-2 answered ${created.status}: ${created.text}`);
});

afterAll(async () => {
  await stack?.stop();
});

it('says of every Python and AWS CLI block whether it runs', () => {
  const unmarked = snippets
    .filter((snippet) => snippet.marker === undefined)
    .map((s) => `README.md:${s.line}`);

  expect(unmarked).toEqual([]);
  expect(runnable.length).toBeGreaterThan(0);
});

it("has a Python whose botocore speaks the SQS emulator's protocol (JSON)", async () => {
  const check =
    'import botocore.session; print(botocore.session.get_session().get_service_model("sqs").protocol)';
  const run = await runWithStackEnvironment(stack, PYTHON, ['-c', check]);

  expect(run.stdout.trim(), `${PYTHON}: ${transcript(run)}`).toBe('json');
});

describe.sequential('README snippets, as written, against the local stack', { timeout: 120_000 }, () => {
  for (const snippet of runnable) {
    it(`README.md:${snippet.line} (${snippet.language}) exits 0`, async () => {
      const run =
        snippet.language === 'python'
          ? await runWithStackEnvironment(stack, PYTHON, ['-c', snippet.code], { PYTHONPATH: 'python' })
          : await runWithStackEnvironment(stack, 'sh', ['-e', '-c', snippet.code]);

      expect(run.code, transcript(run)).toBe(0);
    });
  }

  it('took effect: the statuses sent are in the totals, the tasks created exist', async () => {
    const tasks = await Promise.all(
      ['job-2', 'job-6'].map(async (taskId) => (await finishedProgress(stack, taskId)).json),
    );
    const created = await progressOf(stack, 'bulk-email-42');

    expect(tasks).toMatchObject([
      { task_state: 'SUCCESS', task_progress: { attempted: 200, succeeded: 197, failed: 3 } },
      { task_state: 'SUCCESS', task_progress: { attempted: 200, succeeded: 198, failed: 2 } },
    ]);
    expect(isRecord(created.subtasks) && created.subtasks.total).toBe(1000);
    expect(stack.errorLines()).toEqual([]);
  });
});
