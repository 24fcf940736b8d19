/**
 * A function's role, enforced in front of the run's emulators: handlers a test builds itself call DynamoDB and SQS
 * through a gateway that allows only what the synthesized template grants that function (`local/iam-gateway.ts`),
 * as the local stack's functions do. Every gateway a test file starts is stopped after it, and a call it denied
 * fails the file: a reliability scenario that only passes with more rights than the deployed role has is no proof.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, inject } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { type Denial, type RunningIamGateway, startIamGateway } from '../../local/iam-gateway';
import { ACCOUNT_ID } from '../../local/lambda-invocation';
import { localResources, roleStatements } from '../../local/local-functions';
import type { StatusQueues } from '../../local/resources';
import { type FunctionName, synthesizedStack } from '../../local/synthesized-stack';
import type { TestTable } from './aws';
import { dynamoEndpoint } from './aws';

const gateways: RunningIamGateway[] = [];
const denials: Denial[] = [];

afterAll(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()));
  if (denials.length > 0) {
    const calls = denials.map((denial) => `${denial.function}: ${denial.action} on ${denial.resource}`);
    throw new Error(`The synthesized IAM policies deny calls the functions made:\n${calls.join('\n')}`);
  }
});

/** Queues for tests that have none: a role's queue grants then name queues nobody calls. */
const NO_QUEUES: StatusQueues = {
  queueUrl: 'http://127.0.0.1/000000000000/no-status-queue',
  deadLetterQueueUrl: 'http://127.0.0.1/000000000000/no-dead-letter-queue',
};

/** The endpoint that serves DynamoDB, its streams and SQS to `fn`, with `fn`'s synthesized grants on these resources. */
export async function roleEndpoint(fn: FunctionName, table: TestTable, queues: StatusQueues = NO_QUEUES) {
  const stack = await synthesizedStack();
  const resources = localResources(stack, {
    tableName: table.tableName,
    streamArn: table.streamArn,
    queueUrl: queues.queueUrl,
    deadLetterQueueUrl: queues.deadLetterQueueUrl,
  });
  const gateway = await startIamGateway({
    function: fn,
    statements: roleStatements(stack, fn, resources),
    region: LOCAL_REGION,
    accountId: ACCOUNT_ID,
    dynamoEndpoint: dynamoEndpoint(),
    sqsEndpoint: inject('sqsEndpoint'),
    events: {
      publish: async () => {
        throw new Error('Tests publish through their own publisher, not through a role gateway');
      },
    },
    onDenied: (denial) => denials.push(denial),
  });
  gateways.push(gateway);
  return gateway.url;
}

const clientConfig = (endpoint: string) => ({
  endpoint,
  region: LOCAL_REGION,
  credentials: LOCAL_CREDENTIALS,
});

/** A DynamoDB client as `fn` would hold it, through `fn`'s role. */
export async function roleDynamoClient(fn: FunctionName, table: TestTable, queues?: StatusQueues) {
  return new DynamoDBClient(clientConfig(await roleEndpoint(fn, table, queues)));
}

/** A store as `fn` would hold it: on the test's table, through `fn`'s role. */
export async function roleStore(
  fn: FunctionName,
  table: TestTable,
  queues?: StatusQueues,
): Promise<TaskStore> {
  return new TaskStore(documentClient(await roleDynamoClient(fn, table, queues)), table.tableName);
}

/** An SQS client as `fn` would hold it, through `fn`'s role. */
export async function roleSqsClient(
  fn: FunctionName,
  table: TestTable,
  queues: StatusQueues,
): Promise<SQSClient> {
  const endpoint = await roleEndpoint(fn, table, queues);
  return new SQSClient({ ...clientConfig(endpoint), useQueueUrlAsEndpoint: false });
}
