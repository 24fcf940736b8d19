/**
 * The local stack's aggregator reads the table's stream through the local poller. DynamoDB Local 3.x's
 * `GetRecords` sends an empty map as `{}` rather than `{"M": {}}` (awslabs/amazon-dynamodb-local-samples#37),
 * and every task item without options holds one (`options: {}`): the poller must hand such a record over, or
 * the stream shard stalls behind it for good.
 */

import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { LOCAL_REGION } from '../../local/emulators';
import { startStreamPoller } from '../../local/stream-poller';
import { newTaskTable, streamsClient, uniqueName } from '../support/aws';
import { initializeRequest, T0 } from '../support/factories';

describe('the local stream poller on DynamoDB Local', () => {
  it('hands over the record of a task item without options, its empty map as an empty map', async () => {
    const table = await newTaskTable();
    const taskId = uniqueName('no-options');
    await table.store.initialize(initializeRequest(taskId, 1), T0);
    const received: DynamoDBRecord[] = [];
    const errors: string[] = [];
    const poller = startStreamPoller({
      streams: streamsClient(),
      streamArn: table.streamArn,
      region: LOCAL_REGION,
      batchingWindowMs: 0,
      handler: async (event) => {
        received.push(...event.Records);
        return { batchItemFailures: [] };
      },
      onError: (error) => errors.push(String(error)),
    });

    const outcome = await Promise.race([
      poller.caughtUp().then(() => 'caught up'),
      new Promise((resolve) => setTimeout(() => resolve('stalled'), 10_000)),
    ]);
    await poller.stop();

    expect({ outcome, errors: [...new Set(errors)] }).toEqual({ outcome: 'caught up', errors: [] });
    const taskRecord = received.find((record) => record.dynamodb?.Keys?.sk?.S === 'TASK');
    expect(taskRecord?.dynamodb?.NewImage?.options).toEqual({ M: {} });
  });
});
