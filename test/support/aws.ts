/** Clients and fresh resources on the emulators the global setup started. */

import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { type Message, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { documentClient } from '../../lambdas/aws-clients';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { type StoreObserver, TaskStore } from '../../lambdas/store/task-store';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { createStatusQueues, createTaskTable, type StatusQueues } from '../../local/resources';

/** This test worker's DynamoDB Local (vitest numbers its workers from 1 in `VITEST_POOL_ID`). */
export function dynamoEndpoint(): string {
  const endpoints = inject('dynamoEndpoints');
  const worker = Number(process.env.VITEST_POOL_ID ?? 1) - 1;
  const endpoint = endpoints[worker % endpoints.length];
  if (endpoint === undefined) throw new Error('The global setup started no DynamoDB Local');
  return endpoint;
}

export function dynamoClient(): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: dynamoEndpoint(),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
}

export function streamsClient(): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient({
    endpoint: dynamoEndpoint(),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
}

export function sqsClient(): SQSClient {
  return new SQSClient({
    endpoint: inject('sqsEndpoint'),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export interface TestTable {
  readonly tableName: string;
  readonly client: DynamoDBClient;
  readonly store: TaskStore;
  /** The table's stream (NEW_AND_OLD_IMAGES), as the aggregator reads it. */
  readonly streamArn: string;
}

/** A new, empty task table with its stream; tests never share one, so they can run in parallel. */
export async function newTaskTable(
  client: DynamoDBClient = dynamoClient(),
  observer?: StoreObserver,
): Promise<TestTable> {
  const tableName = uniqueName('tasks');
  const streamArn = await createTaskTable(client, tableName);
  return { tableName, client, streamArn, store: new TaskStore(documentClient(client), tableName, observer) };
}

export interface TestQueues extends StatusQueues {
  readonly client: SQSClient;
}

export async function newStatusQueues(client: SQSClient = sqsClient()): Promise<TestQueues> {
  return { client, ...(await createStatusQueues(client, uniqueName('statuses'))) };
}

export interface ApplierFixture {
  readonly table: TestTable;
  readonly queues: TestQueues;
  readonly deadLetters: DeadLetterQueue;
}

/** What every applier test needs: a fresh table, status queue and dead-letter queue, on the emulators. */
export async function newApplierFixture(): Promise<ApplierFixture> {
  const [table, queues] = await Promise.all([newTaskTable(), newStatusQueues()]);
  return { table, queues, deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl) };
}

/**
 * Receives from a queue until `expected` messages came or `rounds` long polls of a second found nothing more.
 * To show that a message is absent, ask for more than can come and accept the wait of `rounds` seconds.
 */
export async function receiveAll(
  client: SQSClient,
  queueUrl: string,
  expected: number,
  rounds = 3,
): Promise<Message[]> {
  const messages: Message[] = [];
  for (let idle = 0; idle < rounds && messages.length < expected; ) {
    const { Messages } = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
        AttributeNames: ['All'],
      }),
    );
    messages.push(...(Messages ?? []));
    idle = Messages === undefined || Messages.length === 0 ? idle + 1 : 0;
  }
  return messages;
}
