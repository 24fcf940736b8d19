/**
 * The `subtask-progress` command against the stack: as a child process, as an operator runs it (both entry
 * points), and in this process through `runCli` for the rest, which saves a Node start and an SDK load per
 * command.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../client/cli/run';
import { uniqueName } from '../support/aws';
import { type Run, runWithStackEnvironment } from './child-process';
import {
  finishedProgress,
  initialize,
  sendBodies,
  settled,
  startTestStack,
  type TestStack,
  wireMessage,
} from './stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

/** Runs the CLI with the environment `npm start` would have had the operator export. */
function cli(args: readonly string[], entry: 'tsx' | 'bin' = 'tsx'): Promise<Run> {
  const command = entry === 'tsx' ? ['--import', 'tsx', 'client/cli.ts'] : ['bin/subtask-progress.mjs'];
  return runWithStackEnvironment(stack, process.execPath, [...command, ...args]);
}

// Concurrent: each test mostly waits for child processes to start, which takes seconds on a busy machine.
describe.concurrent('subtask-progress CLI as a child process', { timeout: 120_000 }, () => {
  it('initializes a task, sends its statuses, and prints the API body with status --json', async ({
    expect,
  }) => {
    const taskId = uniqueName('task');

    const init = await cli(['init', taskId, '--action', 'emailed', '--total', '12', '--subtasks', 'one,two']);
    const sends = await Promise.all([
      cli(['send', taskId, 'one', '--state', 'SUCCESS', '--succeeded', '5', '--skipped', '1']),
      cli([
        'send',
        taskId,
        'two',
        '--state',
        'FAILURE',
        '--succeeded',
        '2',
        '--failed',
        '3',
        '--retried-withmax',
        '1',
      ]),
    ]);
    const finished = await finishedProgress(stack, taskId);
    const status = await cli(['status', taskId, '--json'], 'bin');

    expect(init).toMatchObject({ code: 0, stdout: expect.stringContaining(`Task ${taskId} initialized`) });
    expect(sends.map((run) => run.code)).toEqual([0, 0]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual(finished.json);
    expect(JSON.parse(status.stdout)).toMatchObject({
      task_state: 'SUCCESS',
      message: 'Message emailed for 7 of 10 recipients (skipping 1) (out of 12) (1 of 2 subtasks failed)',
      subtasks: { total: 2, succeeded: 1, failed: 1, remaining: 0 },
    });
  });

  it('initializes a task in a group and lists it with list --group', async ({ expect }) => {
    const taskId = uniqueName('task');
    const group = uniqueName('course-v1:cli');

    const init = await cli([
      'init',
      taskId,
      '--action',
      'emailed',
      '--total',
      '3',
      '--subtasks',
      'a',
      '--group',
      group,
    ]);
    const list = await cli(['list', '--group', group, '--state', 'running']);
    const json = await cli(['list', '--group', group, '--json']);

    expect(init.code).toBe(0);
    expect(list.code).toBe(0);
    expect(list.stdout.trim()).toMatch(
      new RegExp(`^${taskId}  PROGRESS  \\[${group}\\]  0 of 3 items emailed, 0/1 subtasks`),
    );
    expect(JSON.parse(json.stdout)).toMatchObject({ tasks: [{ task_id: taskId, group }], next_cursor: null });
  });

  it('exits 1 with the API message for a task that does not exist', async ({ expect }) => {
    const run = await cli(['status', 'never-created']);

    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Task 'never-created' does not exist");
  });

  it('exits 2 and shows the usage for bad arguments', async ({ expect }) => {
    const runs = await Promise.all([
      cli(['status']),
      cli(['init', 'task', '--action', 'emailed', '--total', 'many', '--subtask-count', '3']),
    ]);

    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('Usage: subtask-progress');
    }
    expect(runs.map((run) => run.stderr.split('\n')[0])).toEqual([
      'subtask-progress: <task_id> is required',
      'subtask-progress: --total must be a whole number',
    ]);
  });
});

interface Captured {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one command line in this process, with the environment `npm start` prints, and what it printed. */
async function run(args: readonly string[]): Promise<Captured> {
  vi.stubEnv('SUBTASK_PROGRESS_API_URL', stack.httpUrl);
  vi.stubEnv('SUBTASK_PROGRESS_QUEUE_URL', stack.queueUrl);
  vi.stubEnv('SUBTASK_PROGRESS_TABLE', stack.tableName);
  const out: string[] = [];
  const err: string[] = [];
  const log = vi
    .spyOn(console, 'log')
    .mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...parts: unknown[]) => void err.push(parts.join(' ')));
  try {
    const code = await runCli(args);
    return { code, stdout: `${out.join('\n')}\n`, stderr: `${err.join('\n')}\n` };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

// One after the other: each command's output is captured from the one console.
describe('subtask-progress CLI commands', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('initializes over HTTP once, says so when run again, and exits 1 naming the fields of a conflict', async () => {
    const taskId = uniqueName('task');
    const args = [
      'init',
      taskId,
      '--action',
      'emailed',
      '--total',
      '50',
      '--subtask-count',
      '5',
      '--prefix',
      'p',
    ];

    const first = await run(args);
    const again = await run(args);
    const conflict = await run([...args.slice(0, 4), '--total', '60', ...args.slice(6)]);

    expect(first).toMatchObject({ code: 0, stdout: expect.stringContaining('5 subtasks (p-0 … p-4)') });
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('already initialized') });
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain(`Task '${taskId}' is already initialized with a different total`);
  });

  it('cancels a task, lists its subtasks with why they ended, and watch ends on CANCELED', async () => {
    const taskId = uniqueName('task');
    await initialize(stack, taskId, ['a', 'b', 'c'], { total: 30 });
    await sendBodies(stack.queueUrl, [
      wireMessage(taskId, 'a', { succeeded: 10, failed: 0, state: 'SUCCESS' }),
    ]);
    await settled(stack);

    const cancel = await run(['cancel', taskId]);
    await stack.sweepNow();
    await stack.caughtUp();
    const listing = await run(['subtasks', taskId, '--all']);
    const watch = await run(['watch', taskId]);
    const again = await run(['cancel', taskId]);

    expect(cancel).toMatchObject({ code: 0, stdout: expect.stringContaining('Cancel requested') });
    expect(listing.code).toBe(0);
    expect(listing.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^a {2}SUCCESS {2}10 attempted/),
      expect.stringMatching(/^b {2}REVOKED \(CANCELED\) {2}0 attempted/),
      expect.stringMatching(/^c {2}REVOKED \(CANCELED\) {2}0 attempted/),
    ]);
    expect(watch).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`Task ${taskId} ended CANCELED`),
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already ended CANCELED');
  });
});
