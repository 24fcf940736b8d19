/**
 * The environment that points a shell at the local stack: the line `npm start` prints, and what the README's
 * snippets run with in the tests. Both region variables are set: the JavaScript SDK reads `AWS_REGION`, botocore
 * (boto3) and the AWS CLI read only `AWS_DEFAULT_REGION`.
 */

import { LOCAL_CREDENTIALS } from './emulators';
import type { LocalStack } from './local-stack';

export type LocalEndpoints = Pick<
  LocalStack,
  'dynamoEndpoint' | 'sqsEndpoint' | 'region' | 'tableName' | 'queueUrl' | 'deadLetterQueueUrl' | 'httpUrl'
>;

export function localEnvironment(stack: LocalEndpoints): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_DYNAMODB: stack.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: stack.sqsEndpoint,
    AWS_REGION: stack.region,
    AWS_DEFAULT_REGION: stack.region,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    SUBTASK_PROGRESS_TABLE: stack.tableName,
    SUBTASK_PROGRESS_QUEUE_URL: stack.queueUrl,
    SUBTASK_PROGRESS_DEAD_LETTER_QUEUE_URL: stack.deadLetterQueueUrl,
    SUBTASK_PROGRESS_API_URL: stack.httpUrl,
  };
}

/** A value as a POSIX shell reads it back unchanged: bare when it is plain, single-quoted otherwise. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `export NAME=value …`, to paste into a POSIX shell. */
export function exportLine(environment: Readonly<Record<string, string>>): string {
  const assignments = Object.entries(environment).map(([name, value]) => `${name}=${shellWord(value)}`);
  return `export ${assignments.join(' ')}`;
}
