/**
 * The whole service on one machine: DynamoDB Local and the SQS emulator (started here, or ones already running),
 * the table and queues as the CDK stack creates them, and the four functions of the synthesized stack, each from
 * its entry file, in sandboxes with its template's environment, memory and timeout, calling AWS through a
 * gateway that enforces its role (`local-functions.ts`):
 * - the applier, fed by a stand-in for Lambda's SQS event source;
 * - the API, behind a stand-in for API Gateway;
 * - the aggregator, fed by a stand-in for Lambda's DynamoDB Streams event source on the table's stream; its
 *   `PutEvents` reach the gateway's EventBridge stand-in, which appends them to the events file;
 * - the sweeper, on a timer instead of EventBridge's one-minute schedule.
 */

import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { buildDashboard } from '../client/dashboard/site';
import type { SweepSummary } from '../lambdas/sweeper/sweep';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningEmulator,
  startDynamoDbLocal,
  startSqsEmulator,
} from './emulators';
import { FileEventPublisher, type LocalEvent } from './event-file';
import { type BatchReport, type EventSourcePoller, startEventSourcePoller } from './event-source-poller';
import { type RunningHttpGateway, startHttpGateway } from './http-gateway';
import type { Denial } from './iam-gateway';
import type { PolicyStatement } from './iam-policy';
import type { LambdaFunction } from './lambda-sandbox';
import {
  localResources,
  startFunctions,
  streamBatchResponseSchema,
  sweepSummarySchema,
} from './local-functions';
import { createStatusQueues, createTaskTable } from './resources';
import { type StreamBatchReport, type StreamPoller, startStreamPoller } from './stream-poller';
import { type FunctionName, synthesizedStack } from './synthesized-stack';

export const DEFAULT_TABLE_NAME = 'subtask-progress-tasks';
export const DEFAULT_QUEUE_NAME = 'subtask-progress-statuses';

/** The value of `EVENT_BUS_NAME` locally: no bus, the events go to a file. */
export const LOCAL_EVENT_BUS = 'local';
/** How often the sweeper runs locally; deployed, it runs every `SWEEPER.rateMinutes`. */
export const DEFAULT_SWEEP_INTERVAL_MS = 5_000;

export type StackComponent = 'dynamodb' | 'sqs' | 'http';
export type StackFunction = 'applier' | 'api' | 'aggregator' | 'sweeper';

export class PortInUseError extends Error {
  constructor(
    readonly component: StackComponent,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`Port ${port} for ${component} is already in use`, options);
    this.name = 'PortInUseError';
  }
}

export interface LocalStackOptions {
  /** Port for DynamoDB Local when this starts one; 0 picks a free port. @default 0 */
  readonly dynamoPort?: number;
  /** Port for the SQS emulator when this starts one; 0 picks a free port. @default 0 */
  readonly sqsPort?: number;
  /** Port of the HTTP API; 0 picks a free port. @default 0 */
  readonly httpPort?: number;
  /** Keep DynamoDB's data in this folder (created if missing) across restarts. @default in memory */
  readonly dataPath?: string;
  /** Use this running DynamoDB instead of starting one (and leave it running on stop). */
  readonly dynamoEndpoint?: string;
  /** Use this running SQS emulator instead of starting one (and leave it running on stop). */
  readonly sqsEndpoint?: string;
  /** @default DEFAULT_TABLE_NAME */
  readonly tableName?: string;
  /** The dead-letter queue is named after it. @default DEFAULT_QUEUE_NAME */
  readonly queueName?: string;
  /** Concurrent polling loops on the status queue. @default 2 */
  readonly pollers?: number;
  /** The file events are appended to, one JSON line each. @default a new file in the OS's temporary folder */
  readonly eventsFile?: string;
  /** Keep the events the file already holds (with a persisted table) instead of starting it empty. @default false */
  readonly appendEvents?: boolean;
  /** Milliseconds between two runs of the sweeper; 0 runs it only on `sweepNow()`. @default 5,000 */
  readonly sweepIntervalMs?: number;
  /** The sweeper's clock (epoch ms): a test moves it past a deadline instead of waiting. @default Date.now */
  readonly sweeperClock?: () => number;
  /** API Gateway's timeout: the API function's remaining time counts down from it. @default 30,000 */
  readonly httpTimeoutMs?: number;
  /** The status queue's batching window. @default APPLIER.maxBatchingWindowSeconds × 1000 */
  readonly queueBatchingWindowMs?: number;
  /** The stream's batching window. @default AGGREGATOR.maxBatchingWindowSeconds × 1000 */
  readonly streamBatchingWindowMs?: number;
  /** Called after every batch the applier was invoked with. */
  readonly onBatch?: (report: BatchReport) => void;
  /** Called after every batch the aggregator was invoked with. */
  readonly onStreamBatch?: (report: StreamBatchReport) => void;
  /** Called after every sweep, timed or asked for. */
  readonly onSweep?: (summary: SweepSummary) => void;
  /** Every event the aggregator publishes; `repeat` when the file already holds its `event_id`. */
  readonly onEvent?: (event: LocalEvent, repeat: boolean) => void;
  /** Failures that stay inside the stack: queue or stream calls that failed, a function that threw. @default console.error */
  readonly onError?: (source: StackFunction, error: unknown) => void;
  /** Every AWS call a function's role does not allow. @default reported to `onError` as an AccessDenied error */
  readonly onDenied?: (denial: Denial) => void;
  /**
   * Changes the statements a function's role is enforced with, as synthesized and resolved: a test takes a grant
   * away to see the stack fail as AWS would. @default the synthesized statements
   */
  readonly statementsFor?: (name: FunctionName, statements: PolicyStatement[]) => PolicyStatement[];
}

export interface LocalStack {
  /** Base URL of the progress API, e.g. `http://127.0.0.1:3000`. */
  readonly httpUrl: string;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  /** Exactly as CreateQueue returned it. */
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly tableName: string;
  /** The table's stream, which the aggregator reads. */
  readonly streamArn: string;
  /** Where the events the service would put on EventBridge are appended, one JSON line each. */
  readonly eventsFile: string;
  readonly region: string;
  /** The aggregator as the stream poller invokes it: a test may hand it a batch again, as Lambda may. */
  readonly aggregator: (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse>;
  /**
   * Resolves once the aggregator has handled every stream record written before the call: everything the
   * applier (or anyone) wrote by then is in the task's totals.
   */
  caughtUp(): Promise<void>;
  /** Runs the sweeper now, at `atMs` if given (else its clock), after any run in progress; returns its summary. */
  sweepNow(atMs?: number): Promise<SweepSummary>;
  /** Finishes the batches in hand, closes the HTTP server and stops the emulators this started. Idempotent. */
  stop(): Promise<void>;
}

/** Fails early with the port's owner in mind, rather than with a child process dying on a bind error. */
async function assertPortFree(component: StackComponent, port: number | undefined): Promise<void> {
  if (port === undefined || port === 0) return;
  await new Promise<void>((done, fail) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code === 'EADDRINUSE' ? new PortInUseError(component, port, { cause: error }) : error),
    );
    // No host: the wildcard address collides with a listener on any interface, loopback included.
    probe.listen(port, () => probe.close(() => done()));
  });
}

function portErrorsNamed<T>(component: StackComponent, port: number | undefined, start: () => Promise<T>) {
  return start().catch((error: unknown) => {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    throw code === 'EADDRINUSE' ? new PortInUseError(component, port ?? 0, { cause: error }) : error;
  });
}

/** Creates the table unless it exists; returns its stream's ARN. */
async function ensureTable(client: DynamoDBClient, tableName: string): Promise<string> {
  let streamArn: string | undefined;
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    streamArn = Table?.StreamSpecification?.StreamEnabled === true ? Table.LatestStreamArn : undefined;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    return createTaskTable(client, tableName);
  }
  if (streamArn === undefined) {
    // A table of the first layout (no stream, tasks as one item): there is no migration, it must be made anew.
    throw new Error(
      `Table ${tableName} has no stream: it was created by an earlier version of this service, whose items ` +
        'this one cannot read. Delete it (or the persisted data folder) and start again.',
    );
  }
  return streamArn;
}

/** A file of its own in the OS's temporary folder, so that two stacks never share one. */
function defaultEventsFile(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return join(tmpdir(), `subtask-progress-events-${stamp}-${process.pid}.jsonl`);
}

/** Like `Promise.all`, but rejects only once every promise has settled. */
async function allSettledOrThrow<T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return Promise.all(promises);
}

/** Starts the local stack; resolves once the HTTP API listens and the pollers run. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const onError = options.onError ?? ((source, error) => console.error(`[${source}]`, error));
  const onDenied =
    options.onDenied ??
    ((denial: Denial) =>
      onError(denial.function, new Error(`AccessDenied: ${denial.action} on ${denial.resource}`)));
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };

  try {
    await Promise.all([
      options.dynamoEndpoint === undefined ? assertPortFree('dynamodb', options.dynamoPort) : undefined,
      options.sqsEndpoint === undefined ? assertPortFree('sqs', options.sqsPort) : undefined,
      assertPortFree('http', options.httpPort),
    ]);

    const started = async (component: StackComponent, start: () => Promise<RunningEmulator>) => {
      const port = component === 'dynamodb' ? options.dynamoPort : options.sqsPort;
      const emulator = await portErrorsNamed(component, port, start);
      // Should the process exit without stopping the stack (a forced exit), DynamoDB Local's JVM must not outlive
      // it: its stop() signals the child synchronously, which is all an exit listener can still do.
      const onExit = () => void emulator.stop();
      process.once('exit', onExit);
      cleanups.push(async () => {
        process.off('exit', onExit);
        await emulator.stop();
      });
      return emulator.endpoint;
    };
    const dataPath = options.dataPath === undefined ? undefined : resolve(options.dataPath);
    if (dataPath !== undefined) await mkdir(dataPath, { recursive: true });
    // Settled, not all: when one emulator fails to start, the other must be registered for cleanup first.
    const [dynamoEndpoint, sqsEndpoint, deployed] = await allSettledOrThrow([
      options.dynamoEndpoint ??
        started('dynamodb', () =>
          startDynamoDbLocal({
            port: options.dynamoPort ?? 0,
            ...(dataPath === undefined ? {} : { dataPath }),
          }),
        ),
      options.sqsEndpoint ?? started('sqs', () => startSqsEmulator({ port: options.sqsPort ?? 0 })),
      synthesizedStack(),
    ] as const);

    // The stack's own clients: they make the resources, as CloudFormation would, so they go around the gateways.
    const clientConfig = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
    const dynamo = new DynamoDBClient({ ...clientConfig, endpoint: dynamoEndpoint });
    // The queue URL's host (`sqs.<region>.localhost`) may not resolve: send to the endpoint instead.
    const sqs = new SQSClient({ ...clientConfig, endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false });
    cleanups.push(() => {
      dynamo.destroy();
      sqs.destroy();
    });

    const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
    const streamArn = await ensureTable(dynamo, tableName);
    // CreateQueue returns the existing queue when its attributes are the same, and they always are here.
    const queues = await createStatusQueues(sqs, options.queueName ?? DEFAULT_QUEUE_NAME);
    const resources = localResources(deployed, { tableName, streamArn, ...queues });

    const events = await FileEventPublisher.open({
      path: resolve(options.eventsFile ?? defaultEventsFile()),
      region: LOCAL_REGION,
      append: options.appendEvents === true,
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
    });
    const functions = await startFunctions(deployed, {
      resources,
      dynamoEndpoint,
      sqsEndpoint,
      events,
      onDenied,
      ...(options.statementsFor === undefined ? {} : { statementsFor: options.statementsFor }),
    });
    cleanups.push(() => functions.stop());
    const { applier, aggregator, api, sweeper } = functions.byName;

    // Lambda's event source mappings read with the function's role: so do their stand-ins.
    const asFunction = (name: FunctionName) => ({ ...clientConfig, endpoint: functions.endpoints[name] });
    const streams = new DynamoDBStreamsClient(asFunction('aggregator'));
    const applierSqs = new SQSClient({ ...asFunction('applier'), useQueueUrlAsEndpoint: false });
    cleanups.push(() => {
      streams.destroy();
      applierSqs.destroy();
    });

    const aggregate = async (event: DynamoDBStreamEvent, context: Context) =>
      streamBatchResponseSchema.parse(await aggregator.handler(event, context));
    // Stopped after the applier and the sweeper (cleanups run in reverse), so it folds what they wrote last.
    const streamPoller: StreamPoller = startStreamPoller({
      streams,
      streamArn,
      region: LOCAL_REGION,
      handler: aggregate,
      timeoutMs: aggregator.options.timeoutSeconds * 1000,
      ...(options.streamBatchingWindowMs === undefined
        ? {}
        : { batchingWindowMs: options.streamBatchingWindowMs }),
      ...(options.onStreamBatch === undefined ? {} : { onBatch: options.onStreamBatch }),
      onError: (error) => onError('aggregator', error),
    });
    cleanups.push(() => streamPoller.stop());

    const scheduled = startSchedule({
      sweeper,
      clock: options.sweeperClock ?? Date.now,
      intervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
      ...(options.onSweep === undefined ? {} : { onSweep: options.onSweep }),
      onError: (error) => onError('sweeper', error),
    });
    cleanups.push(() => scheduled.stop());

    const dashboard = await buildDashboard({ canCancel: true });
    const gateway: RunningHttpGateway = await portErrorsNamed('http', options.httpPort, () =>
      startHttpGateway({
        handler: api.handler,
        port: options.httpPort ?? 0,
        ...(options.httpTimeoutMs === undefined ? {} : { timeoutMs: options.httpTimeoutMs }),
        onError: (error) => onError('api', error),
        staticPages: { '/': dashboard },
      }),
    );
    cleanups.push(() => gateway.stop());

    const poller: EventSourcePoller = startEventSourcePoller({
      sqs: applierSqs,
      queueUrl: queues.queueUrl,
      queueArn: resources.queueArn,
      region: LOCAL_REGION,
      handler: applier.handler,
      timeoutMs: applier.options.timeoutSeconds * 1000,
      concurrency: options.pollers ?? 2,
      ...(options.queueBatchingWindowMs === undefined
        ? {}
        : { batchingWindowMs: options.queueBatchingWindowMs }),
      ...(options.onBatch === undefined ? {} : { onBatch: options.onBatch }),
      onError: (error) => onError('applier', error),
    });
    cleanups.push(() => poller.stop());

    let stopped: Promise<void> | undefined;
    return {
      httpUrl: gateway.url,
      dynamoEndpoint,
      sqsEndpoint,
      queueUrl: queues.queueUrl,
      deadLetterQueueUrl: queues.deadLetterQueueUrl,
      tableName,
      streamArn,
      eventsFile: events.path,
      region: LOCAL_REGION,
      aggregator: aggregate,
      caughtUp: () => streamPoller.caughtUp(),
      sweepNow: (atMs) => scheduled.runNow(atMs),
      stop() {
        stopped ??= cleanUp();
        return stopped;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

interface ScheduleOptions {
  readonly sweeper: LambdaFunction;
  readonly clock: () => number;
  /** 0: only on `runNow()`. */
  readonly intervalMs: number;
  readonly onSweep?: (summary: SweepSummary) => void;
  readonly onError: (error: unknown) => void;
}

interface RunningSchedule {
  runNow(atMs?: number): Promise<SweepSummary>;
  /** Waits for the run in progress. Idempotent. */
  stop(): Promise<void>;
}

/** What EventBridge's schedule hands the sweeper; it reads nothing of it. */
const SCHEDULED_EVENT = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} } as const;

/**
 * The sweeper's schedule: one run at a time, as the deployed schedule's runs do not overlap in practice (a run
 * takes well under its minute). A timed run that fails is reported and the next one tries again. A run at another
 * time than now runs the function with its clock moved by as much.
 */
function startSchedule(options: ScheduleOptions): RunningSchedule {
  let last: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;

  function runNow(atMs?: number): Promise<SweepSummary> {
    const run = last.then(async () => {
      const clockOffsetMs = (atMs ?? options.clock()) - Date.now();
      const summary = sweepSummarySchema.parse(
        await options.sweeper.invoke(SCHEDULED_EVENT, { clockOffsetMs }),
      );
      options.onSweep?.(summary);
      return summary;
    });
    last = run.catch(() => undefined);
    return run;
  }

  function schedule(): void {
    if (stopping || options.intervalMs <= 0) return;
    timer = setTimeout(() => {
      runNow().then(
        () => schedule(),
        (error: unknown) => {
          options.onError(error);
          schedule();
        },
      );
    }, options.intervalMs);
  }

  schedule();
  return {
    runNow,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await last;
    },
  };
}
