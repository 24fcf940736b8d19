/** Builders for the values tests feed the service. */

import type {
  APIGatewayProxyEventV2,
  AttributeValue,
  Context,
  DynamoDBRecord,
  SQSEvent,
  SQSRecord,
} from 'aws-lambda';
import type { QueueRecord } from '../../lambdas/applier/apply-batch';
import { statusMessageBody } from '../../lambdas/core/status-message';
import {
  createSubtaskStatus,
  type StatusCounts,
  type SubtaskStatus,
} from '../../lambdas/core/subtask-status';
import {
  type EndReason,
  type InitializeRequest,
  initializeTask,
  type ShardCounter,
  type SubtaskRecord,
  type TaskRecord,
  zeroCounter,
} from '../../lambdas/core/task';
import { TABLE_KEYS } from '../../lambdas/service-settings';

export const T0 = Date.parse('2026-01-01T00:00:00Z');

export function subtaskIds(count: number, prefix = 'sub'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(5, '0')}`);
}

/** The generation tests stamp their records with unless they say otherwise. */
export const GENERATION = 'gen-1';

/**
 * An initialize request for `subtasks` (a count of numbered ids, or the ids themselves) with 100 items each;
 * `extra` sets anything else: `total`, `toleratedFailurePercentage`, `subtaskTimeoutSeconds`, `deadline`,
 * `ttlDays`.
 */
export function initializeRequest(
  taskId: string,
  subtasks: number | readonly string[],
  extra: Partial<InitializeRequest> = {},
): InitializeRequest {
  const ids = typeof subtasks === 'number' ? subtaskIds(subtasks) : subtasks;
  return { taskId, actionName: 'emailed', total: ids.length * 100, subtaskIds: ids, ...extra };
}

/** The task record of `request` once initialize finished (`ready`), with `overrides` applied on top. */
export function readyTask(
  request: InitializeRequest = initializeRequest('task-1', 4),
  overrides: Partial<TaskRecord> = {},
  generation = GENERATION,
): TaskRecord {
  return { ...initializeTask(request, T0, generation).task, ready: true, ...overrides };
}

export interface SubtaskRecordOptions {
  readonly taskId?: string;
  readonly version?: number;
  readonly generation?: string;
  /** Epoch ms of the last write. */
  readonly updatedAtMs?: number;
  readonly reason?: EndReason;
}

/** A stored subtask item holding `subtaskStatus` (version 1 unless told). */
export function subtaskRecord(
  subtaskStatus: SubtaskStatus,
  options: SubtaskRecordOptions = {},
): SubtaskRecord {
  return {
    task_id: options.taskId ?? 'task-1',
    subtask_id: subtaskStatus.task_id,
    status: subtaskStatus,
    version: options.version ?? 1,
    generation: options.generation ?? GENERATION,
    updated_at: new Date(options.updatedAtMs ?? T0).toISOString(),
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  };
}

/** A shard counter of `task` with nothing counted yet, with `overrides` applied on top. */
export function shardCounter(
  task: TaskRecord,
  shard: number,
  overrides: Partial<ShardCounter> = {},
): ShardCounter {
  return { ...zeroCounter(task, shard, Date.parse(task.created_at)), ...overrides };
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
  /** `METHOD /path`, as in `ROUTES`; the method goes to `requestContext.http.method`. */
  readonly routeKey: string;
  readonly taskId?: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  /** The raw request body (PUT and POST routes). */
  readonly body?: string;
  /** Overrides the route key's method, for a request that arrives with another one. */
  readonly method?: string;
}

/** An API Gateway HTTP API (payload 2.0) event as the task API receives it. */
export function apiEvent({
  routeKey,
  taskId,
  query,
  headers = {},
  body,
  method,
}: ApiRequest): APIGatewayProxyEventV2 {
  const [routeMethod = 'GET', routePath = '/'] = routeKey.split(' ');
  const rawPath = routePath.replace('{task_id}', encodeURIComponent(taskId ?? ''));
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: new URLSearchParams(query).toString(),
    headers,
    ...(query === undefined ? {} : { queryStringParameters: query }),
    ...(taskId === undefined ? {} : { pathParameters: { task_id: taskId } }),
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'api',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: method ?? routeMethod,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'test',
      },
      requestId: 'request-1',
      routeKey,
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: T0,
    },
  };
}

/** An item image in DynamoDB's JSON wire form, as Lambda hands stream records over. */
export type StreamImage = Record<string, AttributeValue>;

export interface StreamRecordShape {
  readonly eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  readonly pk: string;
  readonly sk: string;
  readonly oldImage?: StreamImage;
  readonly newImage?: StreamImage;
  readonly sequenceNumber?: string;
}

/** A DynamoDB stream record exactly as Lambda delivers it (`NEW_AND_OLD_IMAGES`); images must include the keys. */
export function streamRecord({
  eventName,
  pk,
  sk,
  oldImage,
  newImage,
  sequenceNumber = '100000000000000000001',
}: StreamRecordShape): DynamoDBRecord {
  return {
    eventID: `event-${sequenceNumber}`,
    eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ApproximateCreationDateTime: T0 / 1000,
      Keys: { [TABLE_KEYS.partitionKey]: { S: pk }, [TABLE_KEYS.sortKey]: { S: sk } },
      ...(newImage === undefined ? {} : { NewImage: newImage }),
      ...(oldImage === undefined ? {} : { OldImage: oldImage }),
      SequenceNumber: sequenceNumber,
      SizeBytes: 256,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: 'arn:aws:dynamodb:us-east-1:000000000000:table/tasks/stream/2026-01-01T00:00:00.000',
  };
}
