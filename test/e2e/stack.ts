/**
 * The local stack on the run's shared emulators, with table and queues of its own, and what end-to-end tests do
 * with it: plain HTTP, raw SQS sends, and waiting for a condition with a deadline instead of sleeping. The sweeper
 * runs only when a test asks (`sweepNow`), at the time the test says.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { inject } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import type { LocalEvent } from '../../local/event-file';
import type { Denial } from '../../local/iam-gateway';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/local-stack';
import { localEnvironment } from '../../local/shell-environment';
import { dynamoClient, dynamoEndpoint, sqsClient, uniqueName } from '../support/aws';

export interface TestStack extends LocalStack {
  /** Errors the stack reported (a function that threw, a failed queue call), by source; a passing run has none. */
  readonly errors: { readonly source: string; readonly error: unknown }[];
  /** The errors as `source: name: message` lines, for an assertion that shows what went wrong. */
  readonly errorLines: () => string[];
  /** Every AWS call a function's role did not allow, in order. */
  readonly denials: Denial[];
  /** Every event the aggregator published, repeats included, in order. */
  readonly deliveries: { readonly event: LocalEvent; readonly repeat: boolean }[];
}

export interface TestStackOptions
  extends Pick<
    LocalStackOptions,
    | 'httpTimeoutMs'
    | 'sweeperClock'
    | 'sweepIntervalMs'
    | 'streamBatchingWindowMs'
    | 'statementsFor'
    | 'dynamoEndpoint'
  > {
  /**
   * Whether the test means calls to be denied. Otherwise `stop()` fails on any call a function's synthesized
   * role would not allow on AWS, so every end-to-end test also checks the grants. @default false
   */
  readonly expectDenials?: boolean;
}

export async function startTestStack({
  expectDenials = false,
  ...options
}: TestStackOptions = {}): Promise<TestStack> {
  const errors: TestStack['errors'] = [];
  const denials: Denial[] = [];
  const deliveries: TestStack['deliveries'] = [];
  // The events file lives in a directory of the stack's own, removed with it: a run leaves nothing in /tmp.
  const directory = await mkdtemp(join(tmpdir(), 'subtask-progress-e2e-'));
  const stack = await startLocalStack({
    eventsFile: join(directory, 'events.jsonl'),
    dynamoEndpoint: dynamoEndpoint(),
    sqsEndpoint: inject('sqsEndpoint'),
    httpPort: 0,
    tableName: uniqueName('e2e-tasks'),
    queueName: uniqueName('e2e-statuses'),
    sweepIntervalMs: 0,
    // Statuses are applied and folded within a few hundred milliseconds, so waits in tests stay short.
    queueBatchingWindowMs: 200,
    streamBatchingWindowMs: 200,
    onEvent: (event, repeat) => deliveries.push({ event, repeat }),
    onError: (source, error) => errors.push({ source, error }),
    onDenied: (denial) => denials.push(denial),
    ...options,
  });
  const errorLines = () =>
    errors.map(
      ({ source, error }) =>
        `${source}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
  // This process is the shell an operator pasted the export line into: clients and the CLI find the stack so.
  const environment = localEnvironment(stack);
  const previous = Object.fromEntries(Object.keys(environment).map((name) => [name, process.env[name]]));
  Object.assign(process.env, environment);
  const restoreEnvironment = () => {
    for (const [name, value] of Object.entries(previous)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  const stopStack = stack.stop.bind(stack);
  // The table goes too: DynamoDB Local keeps every table and its stream records in memory for the whole run.
  const stop = async () => {
    await stopStack();
    restoreEnvironment();
    const db = dynamoClient();
    try {
      await db.send(new DeleteTableCommand({ TableName: stack.tableName }));
    } finally {
      db.destroy();
    }
    await rm(directory, { recursive: true, force: true });
    if (!expectDenials && denials.length > 0) {
      const calls = denials.map((denial) => `${denial.function}: ${denial.action} on ${denial.resource}`);
      throw new Error(`The synthesized IAM policies deny calls the functions made:\n${calls.join('\n')}`);
    }
  };
  return Object.assign(stack, { errors, denials, deliveries, errorLines, stop });
}

/** A DynamoDB Streams client on the shared DynamoDB Local, as the stack's own poller reads the stream. */
export function streamsClient() {
  return new DynamoDBStreamsClient({
    endpoint: dynamoEndpoint(),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body as JSON; undefined when it is not JSON. */
  readonly json: unknown;
}

export async function http(url: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** `PUT /tasks/{task_id}` with `body` as JSON (or as it is, when a string). */
export function put(stack: LocalStack, taskId: string, body: unknown): Promise<HttpAnswer> {
  return http(`${stack.httpUrl}/tasks/${encodeURIComponent(taskId)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Initializes a task over HTTP with `subtask_ids` (100 items each unless `extra` says otherwise); expects 201. */
export async function initialize(
  stack: LocalStack,
  taskId: string,
  subtaskIds: readonly string[],
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const answer = await put(stack, taskId, {
    action_name: 'emailed',
    total: subtaskIds.length * 100,
    subtask_ids: subtaskIds,
    ...extra,
  });
  if (answer.status !== 201 || !isRecord(answer.json)) {
    throw new Error(`PUT /tasks/${taskId} answered ${answer.status}: ${answer.text}`);
  }
  return answer.json;
}

/** The task's progress over HTTP; throws unless it answers 200. */
export async function progressOf(stack: LocalStack, taskId: string): Promise<Record<string, unknown>> {
  const answer = await http(`${stack.httpUrl}/tasks/${encodeURIComponent(taskId)}`);
  if (answer.status !== 200 || !isRecord(answer.json)) {
    throw new Error(`GET /tasks/${taskId} answered ${answer.status}: ${answer.text}`);
  }
  return answer.json;
}

/** Calls `probe` until `done` accepts its value; fails with the last value once `timeoutMs` has passed. */
export async function eventually<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`Condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The task's progress over HTTP once it is no longer `PROGRESS`. */
export async function finishedProgress(stack: LocalStack, taskId: string): Promise<HttpAnswer> {
  return eventually(
    () => http(`${stack.httpUrl}/tasks/${encodeURIComponent(taskId)}`),
    (answer) => answer.status === 200 && isRecord(answer.json) && answer.json.task_state !== 'PROGRESS',
  );
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sends message bodies exactly as given, with the plain SDK client a Python or Java worker's SDK mirrors. */
export async function sendBodies(queueUrl: string, bodies: readonly string[]): Promise<void> {
  const client = sqsClient();
  try {
    for (let start = 0; start < bodies.length; start += 10) {
      const { Failed } = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies
            .slice(start, start + 10)
            .map((body, index) => ({ Id: String(index), MessageBody: body })),
        }),
      );
      if (Failed !== undefined && Failed.length > 0)
        throw new Error(`SQS refused ${Failed.length} test messages`);
    }
  } finally {
    client.destroy();
  }
}

/** Waits until the queue holds nothing, visible or in flight: the applier has finished every delivery. */
export async function queueDrained(queueUrl: string): Promise<void> {
  const client = sqsClient();
  try {
    await eventually(
      async () => {
        const { Attributes } = await client.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        return (
          Number(Attributes?.ApproximateNumberOfMessages) +
          Number(Attributes?.ApproximateNumberOfMessagesNotVisible)
        );
      },
      (pending) => pending === 0,
    );
  } finally {
    client.destroy();
  }
}

/** Every status sent so far applied, and every change folded into its task's totals. */
export async function settled(stack: LocalStack): Promise<void> {
  await queueDrained(stack.queueUrl);
  await stack.caughtUp();
}

export interface WireCounts {
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped?: number;
  readonly retried_nomax?: number;
  readonly retried_withmax?: number;
  readonly state: string;
}

/** A status message spelled out in the wire format of DESIGN §4, independent of our own builders. */
export function wireMessage(entryId: string | number, subtaskId: string, counts: WireCounts): string {
  return JSON.stringify({
    entry_id: entryId,
    current_task_id: subtaskId,
    new_subtask_status: {
      task_id: subtaskId,
      attempted: counts.succeeded + counts.failed,
      succeeded: counts.succeeded,
      failed: counts.failed,
      skipped: counts.skipped ?? 0,
      retried_nomax: counts.retried_nomax ?? 0,
      retried_withmax: counts.retried_withmax ?? 0,
      state: counts.state,
    },
  });
}
