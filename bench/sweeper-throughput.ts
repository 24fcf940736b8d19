/**
 * How fast the sweeper ends the subtasks of a large task, on DynamoDB Local: a cancel, the timeouts of every
 * subtask, and a timeout pass that finds nothing due (reads only). Each run gets the deployed sweeper's 60 s,
 * less its margin, and the default per-run budget; the figures per run give the runs (one a minute, on the
 * schedule) a 100,000-subtask task needs.
 *
 *   npx tsx bench/sweeper-throughput.ts [subtasks=10000]
 *
 * DynamoDB Local runs in this process's machine and never throttles: on AWS each write is a network round trip
 * (a few ms, many in flight) and the table's on-demand limits apply, so treat these as an upper bound.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { reconcileTask } from '../lambdas/aggregator/fold-shard';
import { documentClient } from '../lambdas/aws-clients';
import type { TaskRecord } from '../lambdas/core/task';
import { SWEEPER } from '../lambdas/service-settings';
import { TaskStore } from '../lambdas/store/task-store';
import { type SweepSummary, sweep } from '../lambdas/sweeper/sweep';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from '../local/emulators';
import { createTaskTable } from '../local/resources';

const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };
const NO_EVENTS = { publish: async () => undefined };
const RUN_MS = SWEEPER.timeoutSeconds * 1000;

interface Figures {
  readonly scenario: string;
  readonly subtasks: number;
  readonly runs: number;
  readonly ended: number;
  readonly msPerRun: readonly number[];
  readonly subtasksPerSecond: number;
}

/** Sweeps once a (simulated) minute until nothing is due; the aggregator's recount runs between, untimed. */
async function runUntilDone(
  store: TaskStore,
  taskId: string,
  scenario: string,
  subtasks: number,
  nowMs: number,
) {
  const msPerRun: number[] = [];
  let ended = 0;
  for (let run = 1; run <= 1_000; run++) {
    const started = Date.now();
    const summary: SweepSummary = await sweep({
      store,
      events: NO_EVENTS,
      log: SILENT,
      now: () => nowMs + run * 60_000,
      remainingTimeMs: () => RUN_MS - (Date.now() - started),
    });
    msPerRun.push(Date.now() - started);
    ended += summary.subtasksEnded;
    if (summary.tasksDue === 0) break;
    await reconcileTask(store, taskId, () => nowMs + run * 60_000);
  }
  const ms = msPerRun.reduce((sum, value) => sum + value, 0);
  const figures: Figures = {
    scenario,
    subtasks,
    runs: msPerRun.length - 1,
    ended,
    msPerRun,
    subtasksPerSecond: Math.round((subtasks / ms) * 1000),
  };
  return figures;
}

async function main(): Promise<void> {
  const subtasks = Number(process.argv[2] ?? 10_000);
  const dynamo = await startDynamoDbLocal();
  try {
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const results: Figures[] = [];
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const ids = Array.from({ length: subtasks }, (_, n) => `sub-${String(n).padStart(7, '0')}`);
    const fresh = async (name: string, timeout?: number): Promise<{ store: TaskStore; task: TaskRecord }> => {
      const tableName = `sweeper-bench-${name}-${Date.now()}`;
      await createTaskTable(client, tableName);
      const store = new TaskStore(documentClient(client), tableName);
      const request = {
        taskId: name,
        actionName: 'bench',
        total: subtasks,
        subtaskIds: ids,
        ...(timeout === undefined ? {} : { subtaskTimeoutSeconds: timeout }),
      };
      return { store, task: (await store.initialize(request, t0)).task };
    };

    const cancel = await fresh('cancel');
    await cancel.store.requestCancel(cancel.task, t0);
    results.push(await runUntilDone(cancel.store, 'cancel', 'cancel', subtasks, t0));

    const timeouts = await fresh('timeouts', 60);
    results.push(
      await runUntilDone(timeouts.store, 'timeouts', 'every subtask times out', subtasks, t0 + 60_000),
    );

    for (const figures of results) {
      const perRun = Math.min(
        SWEEPER.subtasksPerRun,
        Math.floor((figures.subtasksPerSecond * (RUN_MS - SWEEPER.timeMarginSeconds * 1000)) / 1000),
      );
      console.log(
        JSON.stringify({
          ...figures,
          budgetPerRun: SWEEPER.subtasksPerRun,
          endsPerRunAt100k: perRun,
          runsFor100k: Math.ceil(100_000 / perRun),
        }),
      );
    }
  } finally {
    await dynamo.stop();
  }
}

await main();
