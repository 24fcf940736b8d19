import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { type Denial, type RunningIamGateway, startIamGateway } from '../../local/iam-gateway';
import { policyStatementSchema } from '../../local/iam-policy';
import { ACCOUNT_ID } from '../../local/lambda-invocation';
import {
  dynamoEndpoint,
  newStatusQueues,
  newTaskTable,
  type TestQueues,
  type TestTable,
} from '../support/aws';
import { RecordingPublisher } from '../support/recording-publisher';

const arn = (table: string) => `arn:aws:dynamodb:${LOCAL_REGION}:${ACCOUNT_ID}:table/${table}`;
const queueArn = (url: string) => `arn:aws:sqs:${LOCAL_REGION}:${ACCOUNT_ID}:${url.split('/').pop()}`;

let granted: TestTable;
let other: TestTable;
let queues: TestQueues;
let gateway: RunningIamGateway;
const denials: Denial[] = [];
const events = new RecordingPublisher();
let dynamo: DynamoDBClient;

beforeAll(async () => {
  [granted, other, queues] = await Promise.all([newTaskTable(), newTaskTable(), newStatusQueues()]);
  const statements = [
    {
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
      Resource: arn(granted.tableName),
    },
    {
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
      Resource: arn(other.tableName),
    },
    { Effect: 'Allow', Action: 'dynamodb:DescribeStream', Resource: `${arn(granted.tableName)}/stream/*` },
    {
      Effect: 'Allow',
      Action: ['dynamodb:GetShardIterator', 'dynamodb:GetRecords'],
      Resource: `${arn(other.tableName)}/stream/*`,
    },
    { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn(queues.deadLetterQueueUrl) },
    {
      Effect: 'Allow',
      Action: 'events:PutEvents',
      Resource: `arn:aws:events:${LOCAL_REGION}:${ACCOUNT_ID}:event-bus/default`,
    },
  ].map((statement) => policyStatementSchema.parse(statement));
  gateway = await startIamGateway({
    function: 'applier',
    statements,
    region: LOCAL_REGION,
    accountId: ACCOUNT_ID,
    dynamoEndpoint: dynamoEndpoint(),
    sqsEndpoint: inject('sqsEndpoint'),
    events,
    onDenied: (denial) => denials.push(denial),
  });
  dynamo = new DynamoDBClient({
    endpoint: gateway.url,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
});

afterAll(async () => {
  dynamo.destroy();
  await gateway.stop();
});

const item = { pk: { S: 'TASK#t' }, sk: { S: 'TASK' } };

describe('the local IAM gateway, in front of the emulators', () => {
  it('forwards an allowed call and answers it as the emulator does', async () => {
    await dynamo.send(new PutItemCommand({ TableName: granted.tableName, Item: item }));

    const { Item } = await dynamo.send(new GetItemCommand({ TableName: granted.tableName, Key: item }));

    expect(Item).toEqual(item);
  });

  it("answers a call the statements do not allow with AWS's AccessDeniedException, naming action and resource", async () => {
    const denied = dynamo.send(new PutItemCommand({ TableName: other.tableName, Item: item }));

    await expect(denied).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
      message: expect.stringContaining(
        `not authorized to perform: dynamodb:PutItem on resource: ${arn(other.tableName)} because no identity-based policy allows`,
      ),
    });
    expect(denials).toContainEqual({
      function: 'applier',
      action: 'dynamodb:PutItem',
      resource: arn(other.tableName),
    });
  });

  it('checks a query of an index against the index ARN, which a grant on the table does not cover', async () => {
    const query = new QueryCommand({
      TableName: granted.tableName,
      IndexName: 'due',
      KeyConditionExpression: 'due_pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: 'DUE' } },
    });

    await expect(dynamo.send(query)).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('checks every table of a batch and every item of a transaction', async () => {
    const batch = new BatchGetItemCommand({
      RequestItems: { [granted.tableName]: { Keys: [item] }, [other.tableName]: { Keys: [item] } },
    });
    const transaction = new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: granted.tableName, Item: item } },
        {
          ConditionCheck: {
            TableName: granted.tableName,
            Key: item,
            ConditionExpression: 'attribute_exists(pk)',
          },
        },
      ],
    });

    await expect(dynamo.send(batch)).resolves.toMatchObject({ Responses: { [granted.tableName]: [item] } });
    await expect(dynamo.send(transaction)).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('dynamodb:ConditionCheckItem'),
    });
  });

  it("checks a stream's records against the stream the iterator was issued for", async () => {
    const streams = new DynamoDBStreamsClient({
      endpoint: gateway.url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    try {
      const described = await streams.send(new DescribeStreamCommand({ StreamArn: granted.streamArn }));
      const shardId = described.StreamDescription?.Shards?.[0]?.ShardId;
      const iterator = streams.send(
        new GetShardIteratorCommand({
          StreamArn: granted.streamArn,
          ShardId: shardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      await expect(iterator).rejects.toMatchObject({ name: 'AccessDeniedException' });

      const direct = new DynamoDBStreamsClient({
        endpoint: dynamoEndpoint(),
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      });
      const otherShard = (await direct.send(new DescribeStreamCommand({ StreamArn: other.streamArn })))
        .StreamDescription?.Shards?.[0]?.ShardId;
      direct.destroy();
      const { ShardIterator } = await streams.send(
        new GetShardIteratorCommand({
          StreamArn: other.streamArn,
          ShardId: otherShard,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      await expect(streams.send(new GetRecordsCommand({ ShardIterator }))).resolves.toMatchObject({
        Records: [],
      });
    } finally {
      streams.destroy();
    }
  });

  it('lets a function send only to the queues it was granted', async () => {
    const sqs = new SQSClient({
      endpoint: gateway.url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      useQueueUrlAsEndpoint: false,
    });
    try {
      await expect(
        sqs.send(new SendMessageCommand({ QueueUrl: queues.deadLetterQueueUrl, MessageBody: '{}' })),
      ).resolves.toMatchObject({ MessageId: expect.any(String) });
      await expect(
        sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: '{}' })),
      ).rejects.toMatchObject({
        $metadata: { httpStatusCode: 400 },
        message: expect.stringContaining(`sqs:SendMessage on resource: ${queueArn(queues.queueUrl)}`),
      });
    } finally {
      sqs.destroy();
    }
  });

  it('stands in for EventBridge: an allowed PutEvents reaches the local publisher, another bus is denied', async () => {
    const bridge = new EventBridgeClient({
      endpoint: gateway.url,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const entry = {
      Source: 'subtask-progress',
      DetailType: 'Task Ended',
      Detail: JSON.stringify({ event_id: 'e-1' }),
    };
    try {
      const answer = await bridge.send(
        new PutEventsCommand({ Entries: [{ ...entry, EventBusName: 'default' }] }),
      );
      const denied = bridge.send(
        new PutEventsCommand({ Entries: [{ ...entry, EventBusName: 'elsewhere' }] }),
      );

      expect(answer.FailedEntryCount).toBe(0);
      expect(events.published).toEqual([{ detailType: 'Task Ended', detail: { event_id: 'e-1' } }]);
      await expect(denied).rejects.toMatchObject({ name: 'AccessDeniedException' });
    } finally {
      bridge.destroy();
    }
  });
});
