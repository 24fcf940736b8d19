/**
 * `npm run demo`: a bulk job played against a running `npm start`. It initializes the task over the API, as a
 * producer would; then workers send what real ones would, the way SQS delivers it — progress, retries, failures,
 * the same status twice, a status overtaken by a newer one — and the demo prints the final counts and state it
 * expects, computed from what it sent with the core's own ending rule and wording, to compare with `status`.
 */

import { parseArgs } from 'node:util';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import {
  createSubtaskStatus,
  incrementSubtaskStatus,
  initializeTask,
  numberedSubtaskIds,
  type SendFailure,
  type SubtaskStatus,
  sendSubtaskStatuses,
} from '../client';
import { sqsClient } from '../lambdas/aws-clients';
import { endingState } from '../lambdas/core/fold';
import { idSchema } from '../lambdas/core/identifiers';
import { completionMessage } from '../lambdas/core/progress-report';
import { isTerminalState } from '../lambdas/core/subtask-status';
import { initializeTask as initialRecords, type SubtaskCounters } from '../lambdas/core/task';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './emulators';
import { DEFAULT_QUEUE_NAME } from './local-stack';

// The demo talks to the local stack: the exported variables `npm start` prints win, its default ports otherwise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.AWS_ENDPOINT_URL_SQS ??= 'http://127.0.0.1:9324';
process.env.AWS_REGION ??= LOCAL_REGION;
process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;

const DEFAULT_API_URL = 'http://127.0.0.1:3000';
const ACTION = 'emailed';

const positive = (max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(1, 'must be at least 1').max(max, `must be at most ${max}`));

const optionsSchema = z
  .object({
    'task-id': idSchema.default(`demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`),
    subtasks: positive(10_000).default(100),
    items: positive(10_000_000).default(10_000),
    seconds: positive(3_600).default(45),
    workers: positive(64).default(8),
  })
  .refine((options) => options.items >= options.subtasks, {
    path: ['items'],
    message: 'must be at least --subtasks (every subtask needs an item)',
  });

type DemoOptions = z.output<typeof optionsSchema>;

const USAGE = `Usage: npm run demo -- [--task-id ID] [--subtasks 100] [--items 10000] [--seconds 45] [--workers 8]

Plays a bulk email job against a running \`npm start\` (its exported variables, or its default ports).`;

function readOptions(): DemoOptions | undefined {
  const { values } = parseArgs({
    options: {
      'task-id': { type: 'string' },
      subtasks: { type: 'string' },
      items: { type: 'string' },
      seconds: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return undefined;
  const parsed = optionsSchema.safeParse(values);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`--${issue?.path.join('.')} ${issue?.message}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const chance = (probability: number) => Math.random() < probability;
const between = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));

function shuffled<T>(items: readonly T[]): T[] {
  const result = [...items];
  for (let index = result.length - 1; index > 0; index--) {
    const other = between(0, index);
    [result[index], result[other]] = [result[other] as T, result[index] as T];
  }
  return result;
}

/** What was sent, to say what to expect and how much disorder the applier had to absorb. */
interface Tally {
  statuses: number;
  duplicates: number;
  outOfOrder: number;
  finished: number;
  readonly terminal: SubtaskStatus[];
  readonly failed: SendFailure[];
}

interface Worker {
  readonly taskId: string;
  readonly queueUrl: string;
  readonly tally: Tally;
  /** Pause between two statuses of one subtask. */
  readonly stepMs: () => number;
}

/** Sends a subtask's statuses as SQS might deliver them: sometimes twice, sometimes after a newer one. */
class Sender {
  private held: SubtaskStatus | undefined;

  constructor(private readonly worker: Worker) {}

  async send(status: SubtaskStatus): Promise<void> {
    const { tally } = this.worker;
    const batch = [status];
    if (chance(0.1)) {
      batch.push(status);
      tally.duplicates += 1;
    }
    if (this.held !== undefined) {
      // The held-back status goes out after the newer one: stale, or a duplicate once the subtask ended.
      batch.push(this.held);
      this.held = undefined;
      tally.outOfOrder += 1;
    } else if (!isTerminalState(status.state) && chance(0.15)) {
      this.held = status;
      return;
    }
    tally.statuses += batch.length;
    const result = await sendSubtaskStatuses(this.worker.taskId, batch, { queueUrl: this.worker.queueUrl });
    tally.failed.push(...result.failed);
  }
}

/** One subtask's life: items in chunks, retries now and then, and for a few a failure before the end. */
async function runSubtask(worker: Worker, subtaskId: string, items: number, fails: boolean): Promise<void> {
  const sender = new Sender(worker);
  const skipped = chance(0.3) ? between(1, Math.max(1, Math.floor(items * 0.03))) : 0;
  const toAttempt = items - Math.min(skipped, items);
  // A failing subtask gives up part-way; its remaining items are never attempted.
  const stopAt = fails ? Math.floor(toAttempt * (0.3 + Math.random() * 0.4)) : toAttempt;
  let status = createSubtaskStatus(subtaskId, { state: 'PROGRESS' });
  await sender.send(status);
  let attempted = 0;
  let skippedSoFar = 0;
  const steps = between(3, 5);
  for (let step = 1; step <= steps; step++) {
    await sleep(worker.stepMs());
    const target = Math.round((stopAt * step) / steps);
    const chunk = target - attempted;
    const terminal = step === steps;
    // A bounce or two now and then; a failing subtask ends on a burst of them.
    const failed = Math.min(
      chunk,
      (chance(0.3) ? between(1, 2) : 0) + (fails && terminal ? between(3, 8) : 0),
    );
    const skip = terminal ? Math.min(skipped, items) - skippedSoFar : Math.floor(skipped / steps);
    attempted = target;
    skippedSoFar += skip;
    const retry = !terminal && chance(0.2);
    status = incrementSubtaskStatus(status, {
      succeeded: chunk - failed,
      failed,
      skipped: skip,
      ...(retry ? (chance(0.6) ? { retried_withmax: 1 } : { retried_nomax: 1 }) : {}),
      state: terminal ? (fails ? 'FAILURE' : 'SUCCESS') : retry ? 'RETRY' : 'PROGRESS',
    });
    await sender.send(status);
  }
  worker.tally.terminal.push(status);
  worker.tally.finished += 1;
}

async function queueUrl(): Promise<string> {
  const fromEnvironment = process.env.SUBTASK_PROGRESS_QUEUE_URL;
  if (fromEnvironment !== undefined) return fromEnvironment;
  const client = sqsClient();
  try {
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: DEFAULT_QUEUE_NAME }));
    if (QueueUrl === undefined) throw new Error(`No URL for queue ${DEFAULT_QUEUE_NAME}`);
    return QueueUrl;
  } finally {
    client.destroy();
  }
}

function expectation(options: DemoOptions, tally: Tally): string {
  const sum = (field: 'attempted' | 'succeeded' | 'failed' | 'skipped') =>
    tally.terminal.reduce((total, status) => total + status[field], 0);
  const succeededSubtasks = tally.terminal.filter((status) => status.state === 'SUCCESS').length;
  const items = {
    attempted: sum('attempted'),
    succeeded: sum('succeeded'),
    failed: sum('failed'),
    skipped: sum('skipped'),
  };
  const subtasks: SubtaskCounters = {
    total: options.subtasks,
    succeeded: succeededSubtasks,
    failed: tally.terminal.length - succeededSubtasks,
  };
  // The state and wording the service will show, from the core functions that decide them: the ending rule (no
  // tolerance was given, so the task fails only if every subtask or every attempted item did) and the message.
  const state = endingState(items, subtasks, undefined);
  const { task } = initialRecords(
    { taskId: options['task-id'], actionName: ACTION, total: options.items, subtaskIds: ['expected'] },
    0,
    'expected',
  );
  const { message, succeeded } = completionMessage({
    ...task,
    ready: true,
    task_state: state,
    task_output: { ...task.task_output, ...items },
    subtasks,
  });
  return [
    'Expected once the queue has drained:',
    `  task_state ${state} (every subtask ended; ${subtasks.failed} of them FAILURE; ` +
      `succeeded ${succeeded})`,
    `  items      ${items.attempted} attempted: ${items.succeeded} succeeded, ${items.failed} failed; ` +
      `${items.skipped} skipped; ${options.items} in all`,
    `  subtasks   ${subtasks.total}: ${subtasks.succeeded} succeeded, ${subtasks.failed} failed, 0 remaining`,
    `  message    ${message}`,
  ].join('\n');
}

async function main(): Promise<number> {
  let options: DemoOptions | undefined;
  try {
    options = readOptions();
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  const taskId = options['task-id'];
  const url = await queueUrl();
  const apiUrl = process.env.SUBTASK_PROGRESS_API_URL;
  // The service numbers the subtasks (`sub-000` …) from the count; the workers below use the same ids.
  const subtaskIds = numberedSubtaskIds(options.subtasks);
  const { created } = await initializeTask(
    { taskId, actionName: ACTION, total: options.items, subtaskCount: options.subtasks },
    { apiUrl: apiUrl ?? DEFAULT_API_URL },
  );
  if (!created) {
    console.error(
      `Task ${taskId} already exists: its counts would not match this run. Pick another --task-id.`,
    );
    return 1;
  }
  const watchPrefix = apiUrl === undefined ? `SUBTASK_PROGRESS_API_URL=${DEFAULT_API_URL} ` : '';
  console.log(`Task ${taskId}: ${options.subtasks} subtasks, ${options.items} items to be ${ACTION}.
Follow it in another shell:

  ${watchPrefix}npm run cli -- watch ${taskId}

Playing ${options.workers} workers for about ${options.seconds} s...`);

  const tally: Tally = { statuses: 0, duplicates: 0, outOfOrder: 0, finished: 0, terminal: [], failed: [] };
  const perSubtaskMs = (options.seconds * 1000 * options.workers) / options.subtasks;
  const worker: Worker = {
    taskId,
    queueUrl: url,
    tally,
    stepMs: () => (perSubtaskMs / 4) * (0.5 + Math.random()),
  };
  // Roughly 3% of subtasks fail, at least one: enough to show in the counts, few enough to read as failures.
  const failing = new Set(shuffled(subtaskIds).slice(0, Math.max(1, Math.round(subtaskIds.length * 0.03))));
  const itemsOf = (index: number) =>
    Math.floor(options.items / options.subtasks) + (index < options.items % options.subtasks ? 1 : 0);

  const queue = shuffled(subtaskIds.map((id, index) => ({ id, items: itemsOf(index) })));
  const report = setInterval(() => {
    console.log(
      `  ${tally.finished}/${options.subtasks} subtasks done; ${tally.statuses} statuses sent ` +
        `(${tally.duplicates} twice, ${tally.outOfOrder} out of order)`,
    );
  }, 5_000);
  try {
    await Promise.all(
      Array.from({ length: options.workers }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          await runSubtask(worker, next.id, next.items, failing.has(next.id));
        }
      }),
    );
  } finally {
    clearInterval(report);
  }

  console.log(
    `\nDone: ${tally.statuses} statuses sent (${tally.duplicates} twice, ${tally.outOfOrder} out of order).\n`,
  );
  if (tally.failed.length > 0) {
    console.error(`${tally.failed.length} statuses could not be queued, so the counts below will not match:`);
    for (const failure of tally.failed.slice(0, 5))
      console.error(`  ${failure.status.task_id}: ${failure.reason}`);
  }
  console.log(expectation(options, tally));
  console.log(`\nCompare: ${watchPrefix}npm run cli -- status ${taskId}`);
  return tally.failed.length > 0 ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  // Almost always: no stack at the endpoints this demo was pointed at.
  const endpoints = `${process.env.SUBTASK_PROGRESS_API_URL ?? DEFAULT_API_URL} and ${process.env.AWS_ENDPOINT_URL_SQS}`;
  console.error(`The demo failed: ${error instanceof Error ? `${error.name}: ${error.message}` : error}`);
  console.error(
    `Is \`npm start\` running at ${endpoints}? If it uses other ports, paste its export line first.`,
  );
  return 1;
});
