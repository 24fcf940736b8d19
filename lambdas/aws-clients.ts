/**
 * SDK clients as every handler and tool of ours builds them. Endpoints, region and credentials come from the
 * SDK's own chain, so `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` point them at the local emulators.
 * With a tracer, each call becomes an X-Ray subsegment (Powertools turns itself off outside Lambda).
 */

import type { Tracer } from '@aws-lambda-powertools/tracer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

function traced<T>(client: T, tracer: Tracer | undefined): T {
  return tracer === undefined ? client : tracer.captureAWSv3Client(client);
}

export function documentClient(
  client: DynamoDBClient = new DynamoDBClient({}),
  tracer?: Tracer,
): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(traced(client, tracer), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/**
 * The SQS client sends to its configured endpoint rather than to the queue URL's host: in AWS the two are the
 * same, and on the emulator the queue URL's host (`sqs.<region>.localhost`) does not resolve.
 */
export function sqsClient(tracer?: Tracer): SQSClient {
  return traced(new SQSClient({ useQueueUrlAsEndpoint: false }), tracer);
}

export function eventBridgeClient(tracer?: Tracer): EventBridgeClient {
  return traced(new EventBridgeClient({}), tracer);
}
