/**
 * What workers call: queue cumulative subtask statuses for the applier, built with the reference's status
 * helpers. Endpoints, region and credentials come from the AWS SDK's usual chain (including
 * `AWS_ENDPOINT_URL_SQS` for the local stack). Tasks are created over the API (`task-api.ts`): producers hold
 * no table rights.
 */

import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sqsClient } from '../lambdas/aws-clients';
import { backoffDelayMs, type RetryPolicy, sleep } from '../lambdas/core/backoff';
import { InvalidMessageError } from '../lambdas/core/errors';
import { parseStatusMessage, statusMessageBody } from '../lambdas/core/status-message';
import type { SubtaskStatus } from '../lambdas/core/subtask-status';
import { setting } from './settings';

/** The status algebra workers build their statuses with (reference semantics: counts are cumulative). */
export {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  type StatusCounts,
  SUBTASK_STATES,
  type SubtaskState,
  type SubtaskStatus,
  TERMINAL_STATES,
} from '../lambdas/core/subtask-status';
export interface SendOptions {
  /** @default the SUBTASK_PROGRESS_QUEUE_URL environment variable */
  readonly queueUrl?: string;
  /** @default one client for the process, configured by the SDK's environment */
  readonly client?: SQSClient;
  /** Rounds for entries SQS reports as failed through no fault of ours. @default SEND_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  readonly random?: () => number;
}

export interface SendFailure {
  readonly status: SubtaskStatus;
  /** `CODE: message`, from our own validation or from SQS. */
  readonly reason: string;
}

/** Every status given is counted once: either sent or listed in `failed` with its reason. */
export interface SendResult {
  readonly sent: number;
  readonly failed: readonly SendFailure[];
}

export const SEND_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 2_000 };

/** SendMessageBatch takes at most 10 entries. */
const SQS_BATCH_ENTRIES = 10;

// Built on first use rather than at import, so that importing the client never needs an AWS configuration.
let sharedSqsClient: SQSClient | undefined;

function defaultSqsClient(): SQSClient {
  sharedSqsClient ??= sqsClient();
  return sharedSqsClient;
}

/** Queues one cumulative status of a subtask of `taskId`. */
export function sendSubtaskStatus(
  taskId: string,
  status: SubtaskStatus,
  options: SendOptions = {},
): Promise<SendResult> {
  return sendSubtaskStatuses(taskId, [status], options);
}

interface Entry {
  readonly status: SubtaskStatus;
  readonly body: string;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Queues statuses of subtasks of `taskId`, ten to a SendMessageBatch call. A status that is not valid (the same
 * checks the applier makes) is not sent at all; entries SQS fails through no fault of ours are retried with
 * backoff; whatever still fails is in `failed`, never dropped.
 */
export async function sendSubtaskStatuses(
  taskId: string,
  statuses: readonly SubtaskStatus[],
  options: SendOptions = {},
): Promise<SendResult> {
  const queueUrl = setting('queueUrl', options.queueUrl);
  const client = options.client ?? defaultSqsClient();
  const failed: SendFailure[] = [];
  const entries: Entry[] = [];
  for (const status of statuses) {
    const body = JSON.stringify(statusMessageBody(taskId, status));
    try {
      parseStatusMessage(body);
      entries.push({ status, body });
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      failed.push({ status, reason: `${error.code}: ${error.message}` });
    }
  }
  let sent = 0;
  for (let start = 0; start < entries.length; start += SQS_BATCH_ENTRIES) {
    const result = await sendBatch(
      client,
      queueUrl,
      entries.slice(start, start + SQS_BATCH_ENTRIES),
      options,
    );
    sent += result.sent;
    failed.push(...result.failed);
  }
  return { sent, failed };
}

async function sendBatch(
  client: SQSClient,
  queueUrl: string,
  entries: readonly Entry[],
  options: SendOptions,
): Promise<SendResult> {
  const policy = options.retry ?? SEND_RETRY_POLICY;
  const random = options.random ?? Math.random;
  const failed: SendFailure[] = [];
  let sent = 0;
  let pending = entries;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > 1) await sleep(backoffDelayMs(policy, attempt - 1, random));
    let response: SendMessageBatchCommandOutput;
    try {
      response = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: pending.map((entry, index) => ({ Id: String(index), MessageBody: entry.body })),
        }),
      );
    } catch (error) {
      // The SDK already retried what it deems transient; what reaches us is not worth another round.
      failed.push(...pending.map((entry) => ({ status: entry.status, reason: describe(error) })));
      break;
    }
    const retry: Entry[] = [];
    const answered = new Set((response.Successful ?? []).map((success) => success.Id));
    sent += answered.size;
    for (const failure of response.Failed ?? []) {
      const entry = pending[Number(failure.Id)];
      if (entry === undefined) continue;
      answered.add(failure.Id ?? '');
      const reason = `${failure.Code ?? 'SendFailed'}: ${failure.Message ?? 'SQS did not say why'}`;
      // A sender fault (a body SQS refuses, say) fails the same way every time.
      if (failure.SenderFault === true || attempt >= policy.maxAttempts)
        failed.push({ status: entry.status, reason });
      else retry.push(entry);
    }
    pending.forEach((entry, index) => {
      if (!answered.has(String(index)))
        failed.push({ status: entry.status, reason: 'SQS reported no outcome' });
    });
    pending = retry;
  }
  return { sent, failed };
}
