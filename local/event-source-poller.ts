/**
 * Stands in for Lambda's SQS event source mapping: long-polls the queue, gathers a batch within the batching
 * window, invokes the function with a real-shaped `SQSEvent`, deletes what succeeded and leaves the rest to the
 * queue. Redelivery after the visibility timeout and the redrive to the dead-letter queue are the queue's own
 * doing, exactly as in AWS: the poller never re-queues anything itself.
 */

import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { sleep } from '../lambdas/core/backoff';
import { APPLIER, serviceName } from '../lambdas/service-settings';
import {
  ACCOUNT_ID,
  DeadlineInvocations,
  describeError,
  type EventSourceOptions,
  failedItems,
  InvocationTimeoutError,
  withoutUndefined,
} from './lambda-invocation';

/** Its answer is checked like any untrusted input (`failedItems` in `lambda-invocation.ts`). */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<unknown>;

export interface BatchReport {
  readonly records: number;
  /** Records deleted from the queue: the handler is done with them. */
  readonly deleted: number;
  /** Records left on the queue for SQS to deliver again after the visibility timeout. */
  readonly redelivered: number;
  readonly durationMs: number;
  /** Why the whole batch was left on the queue (the handler threw, timed out or answered nonsense). */
  readonly failure?: string;
}

export interface EventSourcePollerOptions extends EventSourceOptions<BatchReport> {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /** Goes into each record's `eventSourceARN`. */
  readonly queueArn: string;
  readonly region: string;
  readonly handler: SqsHandler;
  /** Concurrent polling loops, like the several pollers Lambda runs per event source. @default 2 */
  readonly concurrency?: number;
}

export interface EventSourcePoller {
  /** Lets every loop finish the batch it holds, then resolves. Idempotent. */
  stop(): Promise<void>;
}

/** ReceiveMessage and DeleteMessageBatch both take at most 10 messages. */
const SQS_BATCH_LIMIT = 10;
/** Long-poll wait while idle: short enough that `stop()` never waits long for a receive to return. */
const IDLE_WAIT_SECONDS = 1;
/** Pause between short polls near the end of a batching window, so they do not spin. */
const SHORT_POLL_PAUSE_MS = 50;
const ERROR_BACKOFF_MS = 1_000;

/** The fields SQS always returns for a received message, checked rather than assumed. */
const receivedSchema = z.object({
  MessageId: z.string().min(1),
  ReceiptHandle: z.string().min(1),
  Body: z.string(),
  MD5OfBody: z.string().default(''),
  MD5OfMessageAttributes: z.string().optional(),
  Attributes: z
    .object({
      ApproximateReceiveCount: z.string().default('1'),
      SentTimestamp: z.string().default('0'),
      SenderId: z.string().default(ACCOUNT_ID),
      ApproximateFirstReceiveTimestamp: z.string().default('0'),
      AWSTraceHeader: z.string().optional(),
      SequenceNumber: z.string().optional(),
      MessageGroupId: z.string().optional(),
      MessageDeduplicationId: z.string().optional(),
      DeadLetterQueueSourceArn: z.string().optional(),
    })
    .default({
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: ACCOUNT_ID,
      ApproximateFirstReceiveTimestamp: '0',
    }),
});

/** Message attributes as Lambda spells them: camelCase, binaries base64-encoded. */
function lambdaAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  return Object.fromEntries(
    Object.entries(attributes ?? {}).map(([name, value]) => [
      name,
      withoutUndefined({
        dataType: value.DataType ?? 'String',
        stringValue: value.StringValue,
        binaryValue: value.BinaryValue === undefined ? undefined : base64(value.BinaryValue),
        stringListValues: value.StringListValues ?? [],
        binaryListValues: (value.BinaryListValues ?? []).map(base64),
      }),
    ]),
  );
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const received = receivedSchema.parse(message);
  return withoutUndefined({
    messageId: received.MessageId,
    receiptHandle: received.ReceiptHandle,
    body: received.Body,
    attributes: withoutUndefined(received.Attributes),
    messageAttributes: lambdaAttributes(message.MessageAttributes),
    md5OfBody: received.MD5OfBody,
    md5OfMessageAttributes: received.MD5OfMessageAttributes,
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  });
}

export function startEventSourcePoller(options: EventSourcePollerOptions): EventSourcePoller {
  const { sqs, queueUrl, handler } = options;
  const batchSize = options.batchSize ?? APPLIER.batchSize;
  const windowMs = options.batchingWindowMs ?? APPLIER.maxBatchingWindowSeconds * 1000;
  const timeoutMs = options.timeoutMs ?? APPLIER.timeoutSeconds * 1000;
  const functionName = options.functionName ?? serviceName('applier');
  const onError = options.onError ?? (() => undefined);
  let stopping = false;
  const invocations = new DeadlineInvocations();

  async function receive(maxMessages: number, waitSeconds: number): Promise<Message[]> {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: maxMessages,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    return Messages ?? [];
  }

  /**
   * Up to `batchSize` messages: waits (long polling) for a first one, then keeps gathering until the batch is
   * full or the batching window that the first one opened has closed. Returns early, with what it holds, on stop.
   */
  async function gather(): Promise<Message[]> {
    const messages: Message[] = [];
    let windowEnd: number | undefined;
    while (messages.length < batchSize && !stopping) {
      const left = windowEnd === undefined ? undefined : windowEnd - Date.now();
      if (left !== undefined && left <= 0) break;
      // WaitTimeSeconds is whole seconds: long-poll only while a whole second of the window is left.
      const waitSeconds = left === undefined ? IDLE_WAIT_SECONDS : Math.floor(left / 1000);
      let received: Message[];
      try {
        received = await receive(Math.min(SQS_BATCH_LIMIT, batchSize - messages.length), waitSeconds);
      } catch (error) {
        // Messages in hand are invisible to everyone else until the visibility timeout: process them now.
        if (messages.length === 0) throw error;
        onError(error);
        break;
      }
      messages.push(...received);
      if (windowEnd === undefined && messages.length > 0) windowEnd = Date.now() + windowMs;
      if (received.length === 0 && waitSeconds === 0 && left !== undefined) {
        await sleep(Math.min(SHORT_POLL_PAUSE_MS, left));
      }
    }
    return messages;
  }

  async function invoke(event: SQSEvent): Promise<string[]> {
    const response = await invocations.invoke(
      handler,
      event,
      { functionName, region: options.region, memoryMiB: APPLIER.memoryMiB },
      Date.now() + timeoutMs,
      () => new InvocationTimeoutError(timeoutMs),
    );
    return failedItems(response, new Map(event.Records.map(({ messageId }) => [messageId, messageId])));
  }

  /** Deletes the given records; one that fails to delete is simply delivered again, which is harmless. */
  async function deleteRecords(records: readonly SQSRecord[]): Promise<number> {
    let deleted = 0;
    for (let start = 0; start < records.length; start += SQS_BATCH_LIMIT) {
      const chunk = records.slice(start, start + SQS_BATCH_LIMIT);
      try {
        const { Successful, Failed } = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((record, index) => ({
              Id: String(index),
              ReceiptHandle: record.receiptHandle,
            })),
          }),
        );
        deleted += Successful?.length ?? 0;
        if (Failed !== undefined && Failed.length > 0) {
          onError(new Error(`DeleteMessageBatch failed for ${Failed.length} records: ${Failed[0]?.Message}`));
        }
      } catch (error) {
        onError(error);
      }
    }
    return deleted;
  }

  async function processBatch(messages: readonly Message[]): Promise<void> {
    const started = Date.now();
    const event: SQSEvent = {
      Records: messages.map((message) => toRecord(message, options.queueArn, options.region)),
    };
    let failure: string | undefined;
    let retry = new Set<string>();
    try {
      retry = new Set(await invoke(event));
    } catch (error) {
      // A thrown error, a timeout or an invalid response fails the whole batch: nothing is deleted.
      failure = describeError(error);
      retry = new Set(event.Records.map((record) => record.messageId));
    }
    const done = event.Records.filter((record) => !retry.has(record.messageId));
    const deleted = await deleteRecords(done);
    options.onBatch?.({
      records: event.Records.length,
      deleted,
      redelivered: event.Records.length - deleted,
      durationMs: Date.now() - started,
      ...(failure === undefined ? {} : { failure }),
    });
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        const messages = await gather();
        if (messages.length > 0) await processBatch(messages);
      } catch (error) {
        onError(error);
        if (!stopping) await sleep(ERROR_BACKOFF_MS);
      }
    }
  }

  const loops = Array.from({ length: options.concurrency ?? 2 }, loop);
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopping = true;
      stopped ??= Promise.all(loops).then(async () => {
        await invocations.settled();
      });
      return stopped;
    },
  };
}
