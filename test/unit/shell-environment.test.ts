/** The `export …` line `npm start` prints: pasted into a shell, it sets exactly what the SDKs and the CLI read. */

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exportLine, localEnvironment } from '../../local/shell-environment';

const stack = {
  dynamoEndpoint: 'http://127.0.0.1:8000',
  sqsEndpoint: 'http://127.0.0.1:9324',
  region: 'us-east-1',
  tableName: 'subtask-progress-tasks',
  queueUrl: 'http://sqs.us-east-1.localhost:9324/000000000000/subtask-progress-statuses',
  deadLetterQueueUrl: 'http://sqs.us-east-1.localhost:9324/000000000000/subtask-progress-statuses-dlq',
  httpUrl: 'http://127.0.0.1:3000',
};

/** What a POSIX shell has in its environment after running `line`. */
function exportedBy(line: string, names: readonly string[]): Record<string, string> {
  const script = `${line}\n${names.map((name) => `printf '%s\\n' "$${name}"`).join('\n')}`;
  const values = execFileSync('sh', ['-c', script], { env: {}, encoding: 'utf8' }).split('\n');
  return Object.fromEntries(names.map((name, index) => [name, values[index] ?? '']));
}

describe('the local environment', () => {
  it('sets the region for the JavaScript SDK (AWS_REGION) and for boto3 and the AWS CLI (AWS_DEFAULT_REGION)', () => {
    expect(localEnvironment(stack)).toMatchObject({
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
    });
  });

  it('reads back from the export line unchanged, values a shell would split or expand included', () => {
    const environment = { ...localEnvironment(stack), SUBTASK_PROGRESS_TABLE: "it's $HOME; `x` a b" };

    expect(exportedBy(exportLine(environment), Object.keys(environment))).toEqual(environment);
  });
});
