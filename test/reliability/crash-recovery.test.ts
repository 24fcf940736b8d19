import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SQSBatchResponse } from 'aws-lambda';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseStatusMessage } from '../../lambdas/core/status-message';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/emulators';
import { seededRandom, shuffle } from '../support/applier-harness';
import { newStatusQueues, newTaskTable, type TestQueues, type TestTable } from '../support/aws';
import { lambdaContext } from '../support/factories';
import {
  type CrashInput,
  type CrashOutcome,
  KILL_MARKER,
  KILL_POINTS,
  type KillPlan,
  type KillPoint,
  type KillReport,
  RESPONSE_MARKER,
} from './crash-protocol';
import {
  applierHandler,
  auditTasks,
  type Delivery,
  expectExact,
  failedDeliveries,
  queueDepth,
  receiveBatch,
  redeliver,
  reportFigures,
  SEED,
  sqsEventOf,
  startWorkloads,
  type Workloads,
} from './support';

/**
 * Crashes: the applier runs in a child process against DynamoDB Local and is SIGKILLed at a chosen point of a
 * batch; the batch is then delivered again, as SQS does when a Lambda never answers. Whatever the point, every
 * terminal status must end up counted exactly once.
 */

/** Receive counts climb with every crash; this test is about crashes, not about parking messages (see store-faults). */
const RECEIVE_LIMIT = 1_000;
const CHILD_TIMEOUT_MS = 30_000;
/** Independent scenarios, each on its own tasks; two run at a time, one per core. */
const LANES = 3;
const PARALLEL_LANES = 2;
const KILLS_PER_LANE = 12;
const MIN_KILLS = 30;
const MAX_BATCH = 10;
/** Of the batches handed to a child while kills remain, this share runs to the end instead. */
const SPARED_SHARE = 0.1;

let table: TestTable;
let queues: TestQueues;
let bundleDir: string;
let childBundle: string;
let healthyApplier: ReturnType<typeof applierHandler>;

/**
 * The child runs as an esbuild bundle, as the deployed Lambda does: started with plain `node` it is ready in
 * about a third of the time `node --import tsx` needs, and this file starts some forty of them.
 */
async function bundleChild(): Promise<string> {
  bundleDir = await mkdtemp(join(tmpdir(), 'crashing-applier-'));
  const outfile = join(bundleDir, 'crashing-applier.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('./crashing-applier.ts', import.meta.url))],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // The SDK's CommonJS modules, bundled into ESM, still `require` Node's built-ins.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  return outfile;
}

beforeAll(async () => {
  [table, queues, childBundle] = await Promise.all([newTaskTable(), newStatusQueues(), bundleChild()]);
  healthyApplier = applierHandler({
    store: table.store,
    deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
    receiveLimit: RECEIVE_LIMIT,
  });
});

afterAll(async () => {
  if (bundleDir !== undefined) await rm(bundleDir, { recursive: true, force: true });
});

/** The environment the deployed applier gets, pointed at the emulators. */
function childEnvironment(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    TABLE_NAME: table.tableName,
    DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
    RECEIVE_LIMIT: String(RECEIVE_LIMIT),
    AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
    AWS_ENDPOINT_URL_SQS: inject('sqsEndpoint'),
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}

interface PendingRun {
  readonly resolve: (outcome: CrashOutcome) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One applier process serving batch after batch until a kill point is reached; then it is SIGKILLed, and the
 * batch's outcome is settled only once the process is gone, so that a redelivery never overlaps it.
 */
class ApplierProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly closed: Promise<void>;
  private stderr = '';
  private pending: PendingRun | undefined;
  private killedAt: KillReport | undefined;

  constructor() {
    this.child = spawn(process.execPath, [childBundle], { env: childEnvironment(), stdio: 'pipe' });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    // A dead process's stdin fails the next write; the pending run learns of the death from 'close'.
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (error) => this.settle((run) => run.reject(error)));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.read(line));
    // 'close', not 'exit': stdout has been read to its end by then.
    this.closed = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        const killedAt = this.killedAt;
        this.settle((run) =>
          killedAt === undefined
            ? run.reject(
                new Error(`The applier process ended (${signal ?? code}) mid-batch:\n${this.stderr}`),
              )
            : run.resolve({ kind: 'killed', report: killedAt }),
        );
        resolve();
      });
    });
  }

  private settle(action: (run: PendingRun) => void): void {
    const run = this.pending;
    this.pending = undefined;
    if (run !== undefined) action(run);
  }

  private read(line: string): void {
    if (line.startsWith(KILL_MARKER)) {
      this.killedAt = JSON.parse(line.slice(KILL_MARKER.length)) as KillReport;
      this.child.kill('SIGKILL');
    } else if (line.startsWith(RESPONSE_MARKER)) {
      const response = JSON.parse(line.slice(RESPONSE_MARKER.length)) as SQSBatchResponse;
      this.settle((run) => run.resolve({ kind: 'responded', response }));
    }
  }

  /** Hands the process one batch; it answers, or dies at its kill point. */
  run(input: CrashInput): Promise<CrashOutcome> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`The applier process neither reached its kill point nor answered:\n${this.stderr}`));
      }, CHILD_TIMEOUT_MS);
      const done =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      this.pending = { resolve: done(resolve), reject: done(reject) };
      this.child.stdin.write(`${JSON.stringify(input)}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.closed;
  }
}

/** Delivers `batch` to a healthy applier in this process; returns what it hands back for redelivery. */
async function applyHealthy(batch: readonly Delivery[]): Promise<Delivery[]> {
  return failedDeliveries(batch, await healthyApplier(sqsEventOf(batch), lambdaContext()));
}

function deliveriesOf(workloads: Workloads, prefix: string): Delivery[] {
  return workloads.bodies.map((body, index) => ({ messageId: `${prefix}-${index}`, body, receiveCount: 0 }));
}

function distinctTasks(batch: readonly Delivery[]): number {
  return new Set(batch.map((delivery) => parseStatusMessage(delivery.body).taskId)).size;
}

/**
 * The point killed least so far (ties at random), so that every point gets its share; for points passed once
 * per task, a random one of the batch's tasks; a random moment in flight.
 */
function randomKillPlan(batch: readonly Delivery[], random: () => number, figures: CrashFigures): KillPlan {
  const point = shuffle(KILL_POINTS, random).reduce((least, candidate) =>
    figures.kills[candidate] < figures.kills[least] ? candidate : least,
  );
  return {
    point,
    occurrence: 1 + Math.floor(random() * distinctTasks(batch)),
    // A transaction takes DynamoDB Local a few milliseconds: kills at different moments of it, on whichever
    // side of the commit they fall (the figures count both).
    delayMs: Math.floor(random() * 8),
  };
}

interface CrashFigures {
  readonly kills: Record<KillPoint, number>;
  /** Kills with a transaction in flight, by whether the task had the new version once the process was dead. */
  duringCommitLanded: number;
  duringCommitCut: number;
  /** Batches a child was spared and ran to the end. */
  childResponses: number;
  /** Kills planned at a commit point the batch never reached (nothing to commit), carried out before the response. */
  plannedPointNotReached: number;
  healthyBatches: number;
  deliveries: number;
  maxReceiveCount: number;
}

function noFigures(): CrashFigures {
  return {
    kills: Object.fromEntries(KILL_POINTS.map((point) => [point, 0])) as Record<KillPoint, number>,
    duringCommitLanded: 0,
    duringCommitCut: 0,
    childResponses: 0,
    plannedPointNotReached: 0,
    healthyBatches: 0,
    deliveries: 0,
    maxReceiveCount: 0,
  };
}

function killsOf(figures: CrashFigures): number {
  return Object.values(figures.kills).reduce((sum, count) => sum + count, 0);
}

async function recordKill(figures: CrashFigures, report: KillReport): Promise<void> {
  figures.kills[report.point] += 1;
  if (report.point !== 'during-commit' || report.taskId === undefined || report.version === undefined) return;
  const task = await table.store.getTask(report.taskId);
  if ((task?.version ?? 0) >= report.version) figures.duringCommitLanded += 1;
  else figures.duringCommitCut += 1;
}

/**
 * One scenario: two tasks' statuses, duplicated and shuffled, go through applier processes that are killed at
 * random points; every killed batch goes back to the queue whole. Once the lane's kills are spent, a healthy
 * applier drains what is left, as a fixed deployment would.
 */
async function runLane(lane: number, figures: CrashFigures) {
  const random = seededRandom(SEED + lane);
  const workloads = await startWorkloads(
    table.store,
    [8, 5],
    { duplicateShare: 0.2, maxProgressSteps: 2 },
    random,
    `crash${lane}`,
  );
  const pool = deliveriesOf(workloads, `lane${lane}`);
  let kills = 0;
  let applier: ApplierProcess | undefined;
  try {
    while (pool.length > 0) {
      const batch = receiveBatch(pool, 1 + Math.floor(random() * MAX_BATCH));
      figures.deliveries += batch.length;
      figures.maxReceiveCount = Math.max(figures.maxReceiveCount, ...batch.map((d) => d.receiveCount));
      if (kills >= KILLS_PER_LANE) {
        figures.healthyBatches += 1;
        redeliver(pool, await applyHealthy(batch), random);
        continue;
      }
      const kill = random() < SPARED_SHARE ? undefined : randomKillPlan(batch, random, figures);
      applier ??= new ApplierProcess();
      const outcome = await applier.run({
        event: sqsEventOf(batch),
        ...(kill === undefined ? {} : { kill }),
      });
      if (outcome.kind === 'killed') {
        applier = undefined;
        kills += 1;
        if (outcome.report.point !== kill?.point) figures.plannedPointNotReached += 1;
        await recordKill(figures, outcome.report);
        // No response ever reached SQS: the whole batch comes back once its visibility timeout ends.
        redeliver(pool, batch, random);
      } else {
        figures.childResponses += 1;
        redeliver(pool, failedDeliveries(batch, outcome.response), random);
      }
    }
  } finally {
    await applier?.stop();
  }
  return { workloads, audit: await auditTasks(table.store, workloads.tasks) };
}

describe('an applier killed mid-batch', () => {
  it.each(KILL_POINTS)('counts a batch killed at %s exactly once after SQS redelivers it', async (point) => {
    const random = seededRandom(SEED + KILL_POINTS.indexOf(point));
    const workloads = await startWorkloads(
      table.store,
      [6],
      { duplicateShare: 0, maxProgressSteps: 0 },
      random,
      `kill-${point}`,
    );
    const taskId = workloads.tasks[0]?.taskId ?? '';
    const batch = receiveBatch(deliveriesOf(workloads, point), MAX_BATCH);
    const kill = { point, occurrence: 1, delayMs: 5 };

    const outcome = await new ApplierProcess().run({ event: sqsEventOf(batch), kill });
    const versionAfterKill = (await table.store.getTask(taskId))?.version;
    const retried = await applyHealthy(batch.map((d) => ({ ...d, receiveCount: d.receiveCount + 1 })));

    expect(outcome).toMatchObject({ kind: 'killed', report: { point } });
    // Before the commit nothing is written; after it the batch is in, and the redelivery must add nothing.
    if (point === 'before-task-read' || point === 'before-commit') expect(versionAfterKill).toBe(1);
    if (point === 'after-commit' || point === 'before-response') expect(versionAfterKill).toBe(2);
    expect(retried).toEqual([]);
    expectExact(await auditTasks(table.store, workloads.tasks));
    const finalVersion = (await table.store.getTask(taskId))?.version;
    expect(finalVersion).toBe(2);
    reportFigures(`kill at ${point}`, {
      statusesSent: workloads.statusesSent,
      versionAfterKill: versionAfterKill ?? 0,
      versionAfterRedelivery: finalVersion ?? 0,
    });
  });

  it('counts every terminal status once while appliers are killed at random points, batch after batch', async () => {
    const figures = noFigures();
    const lanes = Array.from({ length: LANES }, (_, lane) => lane);
    const results: Awaited<ReturnType<typeof runLane>>[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: PARALLEL_LANES }, async () => {
        for (let lane = lanes.shift(); lane !== undefined; lane = lanes.shift())
          results.push(await runLane(lane, figures));
      }),
    );

    for (const { audit } of results) expectExact(audit);
    // A lane stops killing if its queue runs dry first (spared batches drain it), so allow a little short.
    expect(killsOf(figures)).toBeGreaterThanOrEqual(MIN_KILLS);
    // Every kill point was actually reached.
    for (const point of KILL_POINTS) expect(figures.kills[point]).toBeGreaterThan(0);
    expect(await queueDepth(queues.client, queues.deadLetterQueueUrl)).toBe(0);
    reportFigures('crash campaign', {
      seed: SEED,
      kills: killsOf(figures),
      ...Object.fromEntries(KILL_POINTS.map((point) => [`kills.${point}`, figures.kills[point]])),
      duringCommitLanded: figures.duringCommitLanded,
      duringCommitCut: figures.duringCommitCut,
      childResponses: figures.childResponses,
      plannedPointNotReached: figures.plannedPointNotReached,
      healthyBatches: figures.healthyBatches,
      statusesSent: results.reduce((sum, { workloads }) => sum + workloads.statusesSent, 0),
      deliveries: figures.deliveries,
      maxReceiveCount: figures.maxReceiveCount,
      terminalExpected: results.reduce((sum, { audit }) => sum + audit.terminalExpected, 0),
      lost: results.reduce((sum, { audit }) => sum + audit.lost, 0),
      doubleCounted: results.reduce((sum, { audit }) => sum + audit.doubleCounted, 0),
      seconds: Math.round((Date.now() - started) / 1000),
    });
  }, 120_000);
});
