import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { uniqueName } from '../support/aws';
import { finishedProgress, startTestStack, type TestStack } from './stack';

/** The `subtask-progress` command, run as a child process against the stack, as an operator would run it. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.stop();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with the environment `npm start` would have had the operator export. */
function cli(args: readonly string[], entry: 'tsx' | 'bin' = 'tsx'): Promise<Run> {
  const command = entry === 'tsx' ? ['--import', 'tsx', 'client/cli.ts'] : ['bin/subtask-progress.mjs'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...command, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL_DYNAMODB: stack.dynamoEndpoint,
        AWS_ENDPOINT_URL_SQS: stack.sqsEndpoint,
        AWS_REGION: stack.region,
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        SUBTASK_PROGRESS_TABLE: stack.tableName,
        SUBTASK_PROGRESS_QUEUE_URL: stack.queueUrl,
        SUBTASK_PROGRESS_API_URL: stack.httpUrl,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Concurrent: each test mostly waits for child processes to start.
describe.concurrent('subtask-progress CLI', () => {
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
      message: 'Message emailed for 7 of 10 recipients (skipping 1) (out of 12)',
      subtasks: { total: 2, succeeded: 1, failed: 1, remaining: 0 },
    });
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
