import { CreateTableCommand, type DynamoDBClient, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { STATUS_QUEUE, TABLE_KEYS } from '../lambdas/service-settings';

/**
 * Creates the service's table and queues on the emulators with the settings the CDK stack deploys, both read
 * from `service-settings.ts`.
 */

const DAY_SECONDS = 24 * 60 * 60;

function created(url: string | undefined, queueName: string): string {
  if (url === undefined) throw new Error(`CreateQueue returned no URL for ${queueName}`);
  return url;
}

export async function createTaskTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
    }),
  );
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: TABLE_KEYS.timeToLiveAttribute, Enabled: true },
    }),
  );
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
