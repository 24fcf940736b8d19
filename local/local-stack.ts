import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type * as ApiEntry from '../lambdas/api/handler';
import type * as ApplierEntry from '../lambdas/applier/handler';
import { ENVIRONMENT, STATUS_QUEUE } from '../lambdas/service-settings';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningEmulator,
  startDynamoDbLocal,
  startSqsEmulator,
} from './emulators';
import { type BatchReport, type EventSourcePoller, startEventSourcePoller } from './event-source-poller';
import { type RunningHttpGateway, startHttpGateway } from './http-gateway';
import { createStatusQueues, createTaskTable } from './resources';

/**
 * The whole service on one machine: DynamoDB Local and the SQS emulator (started here, or ones already running),
 * the table and queues as the CDK stack creates them, the applier function fed by a stand-in for Lambda's SQS
 * event source, and the API function behind a stand-in for API Gateway. The two functions are loaded from their
 * real entry files, after the environment they read at cold start is in place.
 */

export const DEFAULT_TABLE_NAME = 'subtask-progress-tasks';
export const DEFAULT_QUEUE_NAME = 'subtask-progress-statuses';

export type StackComponent = 'dynamodb' | 'sqs' | 'http';

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
  /** Signs subtask listing cursors; cursors from an earlier run stop working with a new key. @default random */
  readonly cursorKey?: string;
  /** Concurrent polling loops on the status queue. @default 2 */
  readonly pollers?: number;
  /** Called after every batch the applier was invoked with. */
  readonly onBatch?: (report: BatchReport) => void;
  /** Failures that stay inside the stack: queue calls that failed, a function that threw. @default console.error */
  readonly onError?: (source: 'applier' | 'api', error: unknown) => void;
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
  readonly region: string;
  /** Finishes the batches in hand, closes the HTTP server and stops the emulators this started. Idempotent. */
  stop(): Promise<void>;
}

/** The environment a function would get from the stack, plus the SDK settings that point it at the emulators. */
interface FunctionEnvironment {
  readonly tableName: string;
  readonly deadLetterQueueUrl: string;
  readonly cursorKey: string;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
}

function environmentFor(config: FunctionEnvironment): Record<string, string | undefined> {
  return {
    [ENVIRONMENT.tableName]: config.tableName,
    [ENVIRONMENT.deadLetterQueueUrl]: config.deadLetterQueueUrl,
    [ENVIRONMENT.receiveLimit]: String(STATUS_QUEUE.receiveLimit),
    [ENVIRONMENT.cursorKey]: config.cursorKey,
    AWS_ENDPOINT_URL_DYNAMODB: config.dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: config.sqsEndpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    // A real session token next to the dummy keys would only confuse a reader of the requests.
    AWS_SESSION_TOKEN: undefined,
  };
}

/** Sets `variables` on `process.env`; returns how to put back what was there. */
function setEnvironment(variables: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(variables);
  return () => apply(previous);
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

async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    await createTaskTable(client, tableName);
  }
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

function isFunction(value: unknown): value is (...args: never[]) => unknown {
  return typeof value === 'function';
}

// How many times the entry files were loaded in this process. Each stack gets fresh module instances, as each
// Lambda sandbox does: the entry files read their configuration once, at import.
let loads = 0;
let running = false;

/** Imports a function's entry file and returns its `handler` export. */
async function loadHandler<T>(entry: string): Promise<T> {
  const url = new URL(entry, import.meta.url);
  if (loads > 0) url.searchParams.set('sandbox', String(loads));
  const module: unknown = await import(url.href);
  const handler = typeof module === 'object' && module !== null ? Reflect.get(module, 'handler') : undefined;
  if (!isFunction(handler)) throw new Error(`${entry} does not export a handler function`);
  return handler as T;
}

/** Starts the local stack; resolves once the HTTP API listens and the applier polls the queue. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (running) {
    throw new Error(
      'A local stack is already running in this process; its functions read the process environment',
    );
  }
  running = true;
  const onError = options.onError ?? ((source, error) => console.error(`[${source}]`, error));
  const cleanups: (() => Promise<void> | void)[] = [
    () => {
      running = false;
    },
  ];
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
    const [dynamoEndpoint, sqsEndpoint] = await allSettledOrThrow([
      options.dynamoEndpoint ??
        started('dynamodb', () =>
          startDynamoDbLocal({
            port: options.dynamoPort ?? 0,
            ...(dataPath === undefined ? {} : { dataPath }),
          }),
        ),
      options.sqsEndpoint ?? started('sqs', () => startSqsEmulator({ port: options.sqsPort ?? 0 })),
    ] as const);

    const clientConfig = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
    const dynamo = new DynamoDBClient({ ...clientConfig, endpoint: dynamoEndpoint });
    // The queue URL's host (`sqs.<region>.localhost`) does not resolve: send to the endpoint instead.
    const sqs = new SQSClient({ ...clientConfig, endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false });
    cleanups.push(() => {
      dynamo.destroy();
      sqs.destroy();
    });

    const tableName = options.tableName ?? DEFAULT_TABLE_NAME;
    await ensureTable(dynamo, tableName);
    // CreateQueue returns the existing queue when its attributes are the same, and they always are here.
    const queues = await createStatusQueues(sqs, options.queueName ?? DEFAULT_QUEUE_NAME);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const queueArn = Attributes?.QueueArn;
    if (queueArn === undefined) throw new Error(`The queue ${queues.queueUrl} has no ARN`);

    const restoreEnvironment = setEnvironment(
      environmentFor({
        tableName,
        deadLetterQueueUrl: queues.deadLetterQueueUrl,
        cursorKey: options.cursorKey ?? randomBytes(32).toString('base64url'),
        dynamoEndpoint,
        sqsEndpoint,
      }),
    );
    cleanups.push(restoreEnvironment);
    const [applierHandler, apiHandler] = await Promise.all([
      loadHandler<typeof ApplierEntry.handler>('../lambdas/applier/handler.ts'),
      loadHandler<typeof ApiEntry.handler>('../lambdas/api/handler.ts'),
    ]);
    loads += 1;

    const gateway: RunningHttpGateway = await portErrorsNamed('http', options.httpPort, () =>
      startHttpGateway({
        handler: apiHandler,
        port: options.httpPort ?? 0,
        onError: (error) => onError('api', error),
      }),
    );
    cleanups.push(() => gateway.stop());

    const poller: EventSourcePoller = startEventSourcePoller({
      sqs,
      queueUrl: queues.queueUrl,
      queueArn,
      region: LOCAL_REGION,
      handler: applierHandler,
      concurrency: options.pollers ?? 2,
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
      region: LOCAL_REGION,
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
