/**
 * `npm start`: the whole service on local emulators, until Ctrl-C.
 *
 *   DYNAMODB_PORT=8000 SQS_PORT=9324 HTTP_PORT=3000 npm start [-- --persist [dir]] [--sweep-every SECONDS]
 */

import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { SweepSummary } from '../lambdas/sweeper/sweep';
import type { LocalEvent } from './event-file';
import type { BatchReport } from './event-source-poller';
import {
  DEFAULT_SWEEP_INTERVAL_MS,
  type LocalStack,
  PortInUseError,
  type StackComponent,
  startLocalStack,
} from './local-stack';
import { exportLine, localEnvironment } from './shell-environment';
import type { StreamBatchReport } from './stream-poller';

// The SDK's notice that its 2027 releases need Node 22 is not news to someone starting the local stack.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Metrics would print an EMF JSON document per batch; our own one-line batch summary says what matters here.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// Warnings and errors of the functions (dead letters, retries) still show; `POWERTOOLS_LOG_LEVEL=INFO` shows all.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';

const DEFAULT_DATA_DIR = '.local-data';

const PORT_VARIABLES: Record<StackComponent, string> = {
  dynamodb: 'DYNAMODB_PORT',
  sqs: 'SQS_PORT',
  http: 'HTTP_PORT',
};

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);
const portsSchema = z.object({
  DYNAMODB_PORT: port(8000),
  SQS_PORT: port(9324),
  HTTP_PORT: port(3000),
});

const EVENTS_FILE_NAME = 'events.jsonl';

const USAGE = `Usage: npm start [-- --persist [dir]] [--sweep-every SECONDS]

Starts DynamoDB Local, the SQS emulator and the service's functions on this machine: the status applier (fed
from the queue), the aggregator (fed from the table's stream), the sweeper (on a timer) and the API.

  --persist [dir]          keep DynamoDB's data in dir across restarts (default ${DEFAULT_DATA_DIR}/), and the
                           events file there too; in memory otherwise, with a fresh events file in the temp folder
  --sweep-every SECONDS    run the sweeper this often (default ${DEFAULT_SWEEP_INTERVAL_MS / 1000}; deployed: every minute)
  -h, --help               show this help

Ports: DYNAMODB_PORT (default 8000), SQS_PORT (default 9324), HTTP_PORT (default 3000); 0 picks a free one.`;

class UsageError extends Error {}

interface StartOptions {
  readonly help: boolean;
  readonly dataPath?: string;
  readonly sweepIntervalMs: number;
}

/** parseArgs throws a TypeError naming the bad option; to the user that is a usage error. */
function usageErrorsOf<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** `--persist` takes an optional folder, which parseArgs cannot express: read it from the token stream. */
function parseCommandLine(args: readonly string[]): StartOptions {
  const { tokens, values } = usageErrorsOf(() =>
    parseArgs({
      args: [...args],
      options: {
        persist: { type: 'boolean' },
        'sweep-every': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      tokens: true,
    }),
  );
  const persistAt = tokens.findIndex((token) => token.kind === 'option' && token.name === 'persist');
  let dataPath: string | undefined;
  for (const [index, token] of tokens.entries()) {
    if (token.kind !== 'positional') continue;
    if (persistAt === -1 || index !== persistAt + 1 || dataPath !== undefined) {
      throw new UsageError(`Unexpected argument '${token.value}'`);
    }
    dataPath = token.value;
  }
  if (values.persist === true) dataPath ??= DEFAULT_DATA_DIR;
  const every = values['sweep-every'];
  if (every !== undefined && !/^\d+(\.\d+)?$/.test(every)) {
    throw new UsageError(`--sweep-every takes a number of seconds, not '${every}'`);
  }
  const sweepIntervalMs = every === undefined ? DEFAULT_SWEEP_INTERVAL_MS : Math.round(Number(every) * 1000);
  if (every !== undefined && sweepIntervalMs < 100)
    throw new UsageError('--sweep-every must be at least 0.1');
  return { help: values.help === true, sweepIntervalMs, ...(dataPath === undefined ? {} : { dataPath }) };
}

function readPorts(): z.output<typeof portsSchema> {
  const result = portsSchema.safeParse(process.env);
  if (result.success) return result.data;
  const variable = String(result.error.issues[0]?.path[0]);
  throw new UsageError(`${variable} must be a port number from 0 to 65535, not '${process.env[variable]}'`);
}

const clock = () => new Date().toISOString().slice(11, 23);

function logBatch(report: BatchReport): void {
  const outcome =
    report.failure === undefined
      ? `${report.deleted} done, ${report.redelivered} left for redelivery`
      : `failed, all ${report.records} left for redelivery (${report.failure})`;
  console.log(`${clock()} applier: batch of ${report.records} in ${report.durationMs} ms: ${outcome}`);
}

function logStreamBatch(report: StreamBatchReport): void {
  const outcome =
    report.failure !== undefined
      ? `failed, retried (${report.failure})`
      : report.retried > 0
        ? `${report.records - report.retried} done, ${report.retried} retried`
        : 'done';
  console.log(
    `${clock()} aggregator: stream batch of ${report.records} in ${report.durationMs} ms: ${outcome}`,
  );
}

function logSweep(summary: SweepSummary): void {
  // A sweep with nothing due says nothing: it runs every few seconds.
  if (summary.tasksDue === 0) return;
  console.log(
    `${clock()} sweeper: ${summary.tasksDue} tasks due, ${summary.subtasksEnded} subtasks ended, ` +
      `${summary.tasksReconciled} recounted, ${summary.tasksEndedIncomplete} ended incomplete, ` +
      `${summary.errors} errors`,
  );
}

function logEvent(event: LocalEvent, repeat: boolean): void {
  const { detail } = event;
  const what =
    event['detail-type'] === 'Task Ended'
      ? `task ${detail.task_id} ${detail.task_state}: ${detail.message}`
      : `task ${detail.task_id} subtask ${detail.subtask_id}`;
  const note = repeat ? ` (repeat of ${detail.event_id}, not appended again)` : '';
  console.log(`${clock()} event ${event['detail-type']}: ${what}${note}`);
}

function printBanner(stack: LocalStack, dataPath: string | undefined): void {
  const storage =
    dataPath === undefined ? 'in memory' : `on disk in ${relative(process.cwd(), resolve(dataPath)) || '.'}/`;
  const eventsFile = relative(process.cwd(), stack.eventsFile);
  console.log(`subtask-progress is running locally (DynamoDB ${storage})

  DynamoDB Local     ${stack.dynamoEndpoint}    table ${stack.tableName}
  SQS emulator       ${stack.sqsEndpoint}
    status queue     ${stack.queueUrl}
    dead letters     ${stack.deadLetterQueueUrl}
  progress API       ${stack.httpUrl}
  events             ${eventsFile.startsWith('..') ? stack.eventsFile : eventsFile}    (one JSON line per event)

Paste into another shell to point the AWS CLI, the SDKs and our CLI here:

${exportLine(localEnvironment(stack))}

Then try:
  npm run demo
  curl -s ${stack.httpUrl}/tasks/<task_id>
  tail -f ${stack.eventsFile}

Ctrl-C stops.
`);
}

async function main(): Promise<number> {
  let options: StartOptions;
  let ports: z.output<typeof portsSchema>;
  try {
    options = parseCommandLine(process.argv.slice(2));
    if (options.help) {
      console.log(USAGE);
      return 0;
    }
    ports = readPorts();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }

  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      dynamoPort: ports.DYNAMODB_PORT,
      sqsPort: ports.SQS_PORT,
      httpPort: ports.HTTP_PORT,
      ...(options.dataPath === undefined
        ? {}
        : {
            dataPath: options.dataPath,
            // With the table kept, keep its events too: a restart replays the stream, and repeats are dropped.
            eventsFile: join(options.dataPath, EVENTS_FILE_NAME),
            appendEvents: true,
          }),
      sweepIntervalMs: options.sweepIntervalMs,
      onBatch: logBatch,
      onStreamBatch: logStreamBatch,
      onSweep: logSweep,
      onEvent: logEvent,
    });
  } catch (error) {
    if (error instanceof PortInUseError) {
      const variable = PORT_VARIABLES[error.component];
      console.error(
        `Port ${error.port} (${error.component}) is already in use: stop what holds it, or choose another ` +
          `port, e.g. ${variable}=0 npm start (0 picks a free port).`,
      );
    } else {
      console.error('The local stack could not start:', error instanceof Error ? error.message : error);
    }
    return 1;
  }
  printBanner(stack, options.dataPath);
  return stopOnSignal(stack);
}

/** Resolves with the exit code once the stack stopped; a second signal exits at once. */
function stopOnSignal(stack: LocalStack): Promise<number> {
  return new Promise((done) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        console.error(`${signal} again: exiting without waiting`);
        process.exit(130);
      }
      stopping = true;
      console.log(`\n${signal}: finishing the batches in hand, then stopping (Ctrl-C again to force)`);
      stack.stop().then(
        () => {
          console.log('Stopped.');
          done(0);
        },
        (error: unknown) => {
          console.error('Stopping failed:', error);
          done(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

process.exitCode = await main();
