/**
 * Creates the service's table and queues on the emulators with the settings the CDK stack deploys, both read
 * from `service-settings.ts`.
 */

import { CreateTableCommand, type DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  DUE_INDEX,
  LIST_INDEX_LIST,
  STATUS_QUEUE,
  TABLE_KEYS,
  TABLE_STREAM_VIEW,
} from '../lambdas/service-settings';

const DAY_SECONDS = 24 * 60 * 60;

function created(url: string | undefined, queueName: string): string {
  if (url === undefined) throw new Error(`CreateQueue returned no URL for ${queueName}`);
  return url;
}

/** Creates the table as the stack does (keys, due and listing indexes, stream, TTL) and returns its stream's ARN. */
export async function createTaskTable(client: DynamoDBClient, tableName: string): Promise<string> {
  const { TableDescription } = await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
        { AttributeName: DUE_INDEX.partitionKey, AttributeType: 'S' },
        { AttributeName: DUE_INDEX.sortKey, AttributeType: 'N' },
        ...[...new Set(LIST_INDEX_LIST.flatMap((index) => [index.partitionKey, index.sortKey]))].map(
          (name) => ({ AttributeName: name, AttributeType: 'S' as const }),
        ),
      ],
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: DUE_INDEX.indexName,
          KeySchema: [
            { AttributeName: DUE_INDEX.partitionKey, KeyType: 'HASH' },
            { AttributeName: DUE_INDEX.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        ...LIST_INDEX_LIST.map((index) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
            { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
          ],
          Projection:
            index.projected.length === 0
              ? { ProjectionType: 'KEYS_ONLY' as const }
              : { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...index.projected] },
        })),
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_STREAM_VIEW },
    }),
  );
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TABLE_KEYS.timeToLiveAttribute, Enabled: true },
    }),
  );
  const streamArn = TableDescription?.LatestStreamArn;
  if (streamArn === undefined) throw new Error(`CreateTable returned no stream for ${tableName}`);
  return streamArn;
}

export interface StatusQueues {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
}

/** The status queue and its dead-letter queue, with the deployed visibility timeout, retention and redrive. */
export async function createStatusQueues(client: SQSClient, queueName: string): Promise<StatusQueues> {
  const deadLetter = await client.send(
    new CreateQueueCommand({
      QueueName: `${queueName}-dlq`,
      Attributes: { MessageRetentionPeriod: String(STATUS_QUEUE.deadLetterRetentionDays * DAY_SECONDS) },
    }),
  );
  const deadLetterQueueUrl = created(deadLetter.QueueUrl, `${queueName}-dlq`);
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: queueName,
      Attributes: {
        VisibilityTimeout: String(STATUS_QUEUE.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(STATUS_QUEUE.retentionDays * DAY_SECONDS),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes?.QueueArn,
          maxReceiveCount: STATUS_QUEUE.receiveLimit,
        }),
      },
    }),
  );
  return { queueUrl: created(queue.QueueUrl, queueName), deadLetterQueueUrl };
}
