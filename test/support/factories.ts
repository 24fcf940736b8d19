import type { APIGatewayProxyEventV2, Context, SQSEvent, SQSRecord } from 'aws-lambda';
import type { QueueRecord } from '../../lambdas/applier/apply-batch';
import { statusMessageBody } from '../../lambdas/core/status-message';
import {
  createSubtaskStatus,
  type StatusCounts,
  type SubtaskStatus,
} from '../../lambdas/core/subtask-status';
import type { InitializeRequest } from '../../lambdas/core/task';

/** Builders for the values tests feed the service. */

export const T0 = Date.parse('2026-01-01T00:00:00Z');

export function subtaskIds(count: number, prefix = 'sub'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(5, '0')}`);
}

export function initializeRequest(
  taskId: string,
  subtasks: number | readonly string[],
  extra: Partial<InitializeRequest> = {},
): InitializeRequest {
  const ids = typeof subtasks === 'number' ? subtaskIds(subtasks) : subtasks;
  return { taskId, actionName: 'emailed', total: ids.length * 100, subtaskIds: ids, ...extra };
}

export function status(subtaskId: string, counts: StatusCounts = {}): SubtaskStatus {
  return createSubtaskStatus(subtaskId, counts);
}

/** A finished subtask that processed `succeeded + failed` items. */
export function terminal(subtaskId: string, counts: StatusCounts = {}): SubtaskStatus {
  return createSubtaskStatus(subtaskId, { succeeded: 100, state: 'SUCCESS', ...counts });
}

export function messageBody(taskId: string, subtaskStatus: SubtaskStatus): string {
  return JSON.stringify(statusMessageBody(taskId, subtaskStatus));
}

let sequence = 0;

export function queueRecord(body: string, receiveCount = 1): QueueRecord {
  sequence += 1;
  return { messageId: `msg-${sequence}`, body, receiveCount };
}

export function sqsRecord(body: string, receiveCount = 1): SQSRecord {
  const { messageId } = queueRecord(body, receiveCount);
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(T0),
      SenderId: 'worker',
      ApproximateFirstReceiveTimestamp: String(T0),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:statuses',
    awsRegion: 'us-east-1',
  };
}

export function sqsEvent(bodies: readonly string[], receiveCount = 1): SQSEvent {
  return { Records: bodies.map((body) => sqsRecord(body, receiveCount)) };
}

export function lambdaContext(remainingMs = 30_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'applier',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:applier',
    memoryLimitInMB: '512',
    awsRequestId: 'request-1',
    logGroupName: '/aws/lambda/applier',
    logStreamName: 'stream',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface ApiRequest {
  readonly routeKey: string;
  readonly taskId?: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
}

/** An API Gateway HTTP API (payload 2.0) event as the progress API receives it. */
export function apiEvent({ routeKey, taskId, query, headers = {} }: ApiRequest): APIGatewayProxyEventV2 {
  const rawPath = routeKey.split(' ')[1]?.replace('{task_id}', encodeURIComponent(taskId ?? '')) ?? '/';
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: new URLSearchParams(query).toString(),
    headers,
    ...(query === undefined ? {} : { queryStringParameters: query }),
    ...(taskId === undefined ? {} : { pathParameters: { task_id: taskId } }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'api',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'request-1',
      routeKey,
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: T0,
    },
  };
}
