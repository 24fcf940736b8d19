/**
 * Programs other than ours run against the stack as a user runs them: a child process with the environment the
 * `export …` line of `npm start` sets, and nothing else of ours (the stack is the one the test started).
 */

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LocalStack } from '../../local/local-stack';
import { localEnvironment } from '../../local/shell-environment';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Python with boto3 and pytest: `PYTHON` when `.ci/run` had to install them for another interpreter. */
export const PYTHON = process.env.PYTHON || 'python3';

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The run as one text, for an assertion that shows what the program said. */
export function transcript(run: Run): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

export function runWithStackEnvironment(
  stack: LocalStack,
  command: string,
  args: readonly string[],
  extra: Readonly<Record<string, string>> = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      // No bytecode or cache files left in the tree by a test run.
      env: { ...process.env, ...localEnvironment(stack), PYTHONDONTWRITEBYTECODE: '1', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
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
