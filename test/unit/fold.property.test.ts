/**
 * The whole write path, pure: workers' statuses delivered at least once and in any order through applyStatuses,
 * shards recounted at random moments, and recounts and folds replayed late, in any order, as the stream and
 * Lambda's retries may deliver them. The store's conditions are modelled exactly (the `vsum` guards, the task
 * still `PROGRESS`, the cancel as read), so what is asserted is what the table would hold.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyStatuses } from '../../lambdas/core/apply-statuses';
import { endingState, foldTask, recountShard } from '../../lambdas/core/fold';
import {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  TERMINAL_STATES,
} from '../../lambdas/core/subtask-status';
import {
  type ItemCounts,
  initializeTask,
  remainingSubtasks,
  type ShardCounter,
  type SubtaskRecord,
  type TaskRecord,
  ZERO_COUNTS,
} from '../../lambdas/core/task';
import { shardOf, shardSizes } from '../../lambdas/core/write-shards';
import { GENERATION, initializeRequest, shardCounter, subtaskIds, T0 } from '../support/factories';

const TASK_ID = 'task-1';

type Histories = ReadonlyMap<string, readonly SubtaskStatus[]>;

type FoldOp =
  /** Recount a shard from its items now; the recount may be written at once, later, or twice. */
  | { readonly kind: 'recount'; readonly shard: number }
  /** Write one of the recounts made so far (possibly an old one), then refresh the task. */
  | { readonly kind: 'write'; readonly pick: number }
  /** Fold counters read some time ago into the task as read some time ago, and as it is now: a slow fold, a replay. */
  | { readonly kind: 'late-fold'; readonly taskPick: number; readonly countersPick: number }
  | { readonly kind: 'cancel' };

interface Step {
  readonly batch: readonly SubtaskStatus[];
  readonly ops: readonly FoldOp[];
}

interface Scenario {
  readonly ids: readonly string[];
  readonly writeShards: number;
  readonly toleratedFailurePercentage: number | undefined;
  readonly histories: Histories;
  readonly steps: readonly Step[];
  /** Orders the replay of every recount after the task ended. */
  readonly replaySeed: number;
}

// ---------------------------------------------------------------------------------------------------------
// Workloads

interface StepShape {
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly retry: 'none' | 'nomax' | 'withmax';
}

function increments({ succeeded, failed, skipped, retry }: StepShape) {
  return {
    succeeded,
    failed,
    skipped,
    ...(retry === 'nomax' ? { retried_nomax: 1 } : retry === 'withmax' ? { retried_withmax: 1 } : {}),
  };
}

/** Cumulative statuses of one subtask, ending in exactly one terminal status. */
function history(
  subtaskId: string,
  running: readonly StepShape[],
  end: StepShape & { state: SubtaskStatus['state'] },
) {
  const statuses: SubtaskStatus[] = [];
  let current = createSubtaskStatus(subtaskId);
  for (const step of running) {
    current = incrementSubtaskStatus(current, {
      ...increments(step),
      state: step.retry === 'none' ? 'PROGRESS' : 'RETRY',
    });
    statuses.push(current);
  }
  statuses.push(incrementSubtaskStatus(current, { ...increments(end), state: end.state }));
  return statuses;
}

const stepShapeArb = fc.record({
  succeeded: fc.nat({ max: 20 }),
  failed: fc.nat({ max: 4 }),
  skipped: fc.nat({ max: 2 }),
  retry: fc.constantFrom<StepShape['retry']>('none', 'nomax', 'withmax'),
});

const foldOpArb: fc.Arbitrary<FoldOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('recount' as const), shard: fc.nat({ max: 2 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('late-fold' as const),
      taskPick: fc.nat(),
      countersPick: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'cancel' as const }) },
);

/** `items`, some repeated, shuffled, cut into consecutive batches at random positions. */
function deliveriesArb<T>(items: readonly T[]): fc.Arbitrary<T[][]> {
  const repeats = fc.array(fc.constantFrom(...items), { maxLength: Math.ceil(items.length / 2) });
  return repeats
    .chain((extra) => fc.shuffledSubarray([...items, ...extra], { minLength: items.length + extra.length }))
    .chain((delivered) => {
      const positions = Array.from({ length: Math.max(delivered.length - 1, 0) }, (_, index) => index + 1);
      return fc.subarray(positions).map((cuts) => {
        const bounds = [0, ...cuts, delivered.length];
        return bounds.slice(1).map((end, index) => delivered.slice(bounds[index], end));
      });
    });
}

const TOLERANCES = [undefined, 0, 10, 32.3, 50, 100] as const;

/** A few dozen subtasks over one to three write shards (set directly, as a large task would have them). */
const smallScenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    count: fc.integer({ min: 1, max: 30 }),
    writeShards: fc.integer({ min: 1, max: 3 }),
    toleratedFailurePercentage: fc.constantFrom(...TOLERANCES),
    replaySeed: fc.integer(),
  })
  .chain(({ count, ...rest }) =>
    fc
      .array(
        fc.tuple(
          fc.array(stepShapeArb, { maxLength: 3 }),
          fc.record({
            succeeded: fc.nat({ max: 50 }),
            failed: fc.nat({ max: 5 }),
            skipped: fc.nat({ max: 3 }),
            retry: fc.constantFrom<StepShape['retry']>('none', 'nomax', 'withmax'),
            state: fc.constantFrom(...TERMINAL_STATES),
          }),
        ),
        { minLength: count, maxLength: count },
      )
      .map((shapes) => {
        const ids = subtaskIds(count);
        const histories = new Map(
          shapes.map(([running, end], index) => {
            const id = ids[index] ?? `sub-${index}`;
            return [id, history(id, running, end)] as const;
          }),
        );
        return { ...rest, ids, histories };
      }),
  )
  .chain((partial) =>
    deliveriesArb([...partial.histories.values()].flat())
      .chain((batches) =>
        fc
          .tuple(...batches.map(() => fc.array(foldOpArb, { maxLength: 4 })))
          .map((ops) => batches.map((batch, index): Step => ({ batch, ops: ops[index] ?? [] }))),
      )
      .map((steps) => ({ ...partial, steps })),
  );

/** A small seeded generator, so a scenario built from one fast-check integer replays from fast-check's seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const result = [...items];
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    [result[index], result[other]] = [result[other] as T, result[index] as T];
  }
  return result;
}

/**
 * Over 1,000 subtasks, so initialize itself gives the task two or three write shards; built from a seed, since
 * fast-check would spend its time shrinking thousands of histories.
 */
function largeScenario(seed: number): Scenario {
  const random = seededRandom(seed);
  const int = (max: number) => Math.floor(random() * (max + 1));
  const count = 1_001 + int(1_499);
  const ids = subtaskIds(count);
  const shape = (): StepShape => ({
    succeeded: int(20),
    failed: int(2),
    skipped: int(1),
    retry: (['none', 'nomax', 'withmax'] as const)[int(2)] ?? 'none',
  });
  const histories = new Map(
    ids.map((id) => {
      const running = Array.from({ length: int(2) }, shape);
      const state = random() < 0.85 ? 'SUCCESS' : (TERMINAL_STATES[int(2)] ?? 'FAILURE');
      return [id, history(id, running, { ...shape(), state })] as const;
    }),
  );
  const sent = [...histories.values()].flat();
  const delivered = shuffled([...sent, ...sent.filter(() => random() < 0.1)], random);
  const steps: Step[] = [];
  for (let start = 0; start < delivered.length; start += 100) {
    const ops: FoldOp[] = Array.from({ length: int(3) }, (): FoldOp => {
      const roll = random();
      if (roll < 0.45) return { kind: 'recount', shard: int(2) };
      if (roll < 0.85) return { kind: 'write', pick: int(1_000) };
      if (roll < 0.999) return { kind: 'late-fold', taskPick: int(1_000), countersPick: int(1_000) };
      return { kind: 'cancel' };
    });
    steps.push({ batch: delivered.slice(start, start + 100), ops });
  }
  return {
    ids,
    writeShards: ids.length > 1_000 ? Math.ceil(ids.length / 1_000) : 1,
    toleratedFailurePercentage: TOLERANCES[int(TOLERANCES.length - 1)],
    histories,
    steps,
    replaySeed: int(1_000_000),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The table, as the store's conditions keep it

class Table {
  task: TaskRecord;
  readonly items: Map<string, SubtaskRecord>;
  readonly counters: ShardCounter[];
  /** Every recount made, in the order made: any of them may be (re)written at any time. */
  readonly recounts: ShardCounter[] = [];
  /** Every task item and every set of counters a fold has read: a late fold may use any of them. */
  readonly taskReads: TaskRecord[] = [];
  readonly counterReads: (readonly ShardCounter[])[] = [];
  /** Broken invariants, named; checked in plain code since a property run makes hundreds of steps. */
  readonly violations: string[] = [];
  private readonly shardOfId: ReadonlyMap<string, number>;
  private clock = T0;

  constructor(scenario: Scenario) {
    const request = initializeRequest(TASK_ID, scenario.ids, {
      ...(scenario.toleratedFailurePercentage === undefined
        ? {}
        : { toleratedFailurePercentage: scenario.toleratedFailurePercentage }),
    });
    const initialized = initializeTask(request, T0, GENERATION);
    // The shard count is set directly for small tasks, as initialize would set it for large ones.
    const task: TaskRecord = {
      ...initialized.task,
      ready: true,
      write_shards: scenario.writeShards,
      shard_sizes: shardSizes(scenario.ids, scenario.writeShards),
    };
    this.task = task;
    this.items = new Map(initialized.subtasks.map((record) => [record.subtask_id, record]));
    this.counters = task.shard_sizes.map((_, shard) => shardCounter(task, shard));
    this.shardOfId = new Map(scenario.ids.map((id) => [id, shardOf(id, task.write_shards)]));
  }

  now(): number {
    this.clock += 1_000;
    return this.clock;
  }

  shardItems(shard: number): SubtaskRecord[] {
    return [...this.items.values()].filter((item) => this.shardOfId.get(item.subtask_id) === shard);
  }

  /** The applier: one call per batch, each changed subtask written under its version condition. */
  deliver(batch: readonly SubtaskStatus[]): void {
    const read = new Map(this.items);
    const result = applyStatuses(
      this.task,
      read,
      batch.map((status) => ({ subtaskId: status.task_id, status })),
      this.now(),
    );
    for (const record of result.changed) {
      const before = this.items.get(record.subtask_id);
      if (before !== undefined && isTerminalState(before.status.state)) {
        this.violations.push(`${record.subtask_id} left terminal state ${before.status.state}`);
      }
      if (record.version !== (before?.version ?? Number.NaN) + 1) {
        this.violations.push(
          `${record.subtask_id} written at version ${record.version} over ${before?.version}`,
        );
      }
      this.items.set(record.subtask_id, record);
    }
  }

  recount(shard: number): void {
    const index = shard % this.task.write_shards;
    this.recounts.push(recountShard(this.task, index, this.shardItems(index)));
  }

  /** `attribute_exists AND generation = :generation AND vsum < :vsum`. */
  writeCounter(counter: ShardCounter): void {
    const stored = this.counters[counter.shard];
    if (stored === undefined || stored.generation !== counter.generation || stored.vsum >= counter.vsum)
      return;
    this.counters[counter.shard] = counter;
  }

  /** The aggregator's refresh: fold the counters as read into the task as read, and write under the guards. */
  fold(read: TaskRecord, counters: readonly ShardCounter[]): void {
    const result = foldTask(read, counters, this.now());
    if (result === undefined) return;
    // foldTask's own guard: older or equal counters, or an ended task, give nothing to write.
    if (read.task_state !== 'PROGRESS' || result.task.counters_vsum <= read.counters_vsum) {
      this.violations.push(
        `foldTask folded counters at ${result.task.counters_vsum} into a task at ${read.counters_vsum}`,
      );
    }
    const stored = this.task;
    const ending = result.task.task_state !== 'PROGRESS';
    const passes =
      stored.generation === read.generation &&
      stored.task_state === 'PROGRESS' &&
      stored.counters_vsum < result.task.counters_vsum &&
      !(ending && read.cancel_requested !== true && stored.cancel_requested === true);
    if (!passes) return;
    const { task } = result;
    this.task = {
      ...stored,
      version: stored.version + 1,
      task_state: task.task_state,
      task_output: task.task_output,
      in_flight: task.in_flight,
      subtasks: task.subtasks,
      counters_vsum: task.counters_vsum,
      updated_at: task.updated_at,
      ...(task.ended_at === undefined ? {} : { ended_at: task.ended_at }),
    };
  }

  /** A fresh fold: read the task and every counter now, as `refreshTask` does. */
  refresh(): void {
    const counters = [...this.counters];
    this.taskReads.push(this.task);
    this.counterReads.push(counters);
    this.fold(this.task, counters);
  }

  cancel(): void {
    if (this.task.task_state !== 'PROGRESS') return;
    this.task = { ...this.task, cancel_requested: true, version: this.task.version + 1 };
  }

  run(op: FoldOp): void {
    switch (op.kind) {
      case 'recount':
        this.recount(op.shard);
        return;
      case 'write': {
        const recount = this.recounts[op.pick % Math.max(this.recounts.length, 1)];
        if (recount !== undefined) this.writeCounter(recount);
        this.refresh();
        return;
      }
      case 'late-fold': {
        const read = this.taskReads[op.taskPick % Math.max(this.taskReads.length, 1)];
        const counters = this.counterReads[op.countersPick % Math.max(this.counterReads.length, 1)];
        if (read !== undefined && counters !== undefined) {
          this.fold(read, counters);
          this.fold(this.task, counters);
        }
        return;
      }
      case 'cancel':
        this.cancel();
        return;
    }
  }

  /** `reconcile`: every shard recounted and written, then the totals. */
  reconcile(): void {
    for (let shard = 0; shard < this.task.write_shards; shard++) {
      this.recount(shard);
      const recount = this.recounts.at(-1);
      if (recount !== undefined) this.writeCounter(recount);
    }
    this.refresh();
  }
}

// ---------------------------------------------------------------------------------------------------------
// What must hold

interface Truth {
  readonly counts: ItemCounts;
  readonly subtasks: { readonly total: number; readonly succeeded: number; readonly failed: number };
}

/** Each subtask's one terminal status, counted once. */
function groundTruth(histories: Histories): Truth {
  const ends = [...histories.values()].map((statuses) => {
    const end = statuses.find((status) => isTerminalState(status.state));
    if (end === undefined) throw new RangeError('every history ends in a terminal status');
    return end;
  });
  const sum = (field: keyof ItemCounts) => ends.reduce((total, end) => total + end[field], 0);
  const succeeded = ends.filter((end) => end.state === 'SUCCESS').length;
  return {
    counts: {
      attempted: sum('attempted'),
      succeeded: sum('succeeded'),
      failed: sum('failed'),
      skipped: sum('skipped'),
    },
    subtasks: { total: ends.length, succeeded, failed: ends.length - succeeded },
  };
}

function totalsOf(task: TaskRecord) {
  const { attempted, succeeded, failed, skipped } = task.task_output;
  return { counts: { attempted, succeeded, failed, skipped }, subtasks: task.subtasks };
}

/**
 * What may only grow: the task's version, guard sum and duration, and each counter's `vsum`. (Subtask versions
 * are checked where they change, in `deliver`.)
 */
type Watermarks = readonly number[];

const WATERMARK_NAMES = ['task version', 'task counters_vsum', 'task duration_ms'];

function watermarks(table: Table): Watermarks {
  const { task } = table;
  return [
    task.version,
    task.counters_vsum,
    task.task_output.duration_ms,
    ...table.counters.map((counter) => counter.vsum),
  ];
}

function lowered(after: Watermarks, before: Watermarks): string[] {
  return after.flatMap((value, index) =>
    value < (before[index] ?? 0)
      ? [`${WATERMARK_NAMES[index] ?? `counter ${index - 3} vsum`} went down`]
      : [],
  );
}

/** The ending rule applied to the ground truth, or `CANCELED` once a cancel was requested. */
function expectedEnding(task: TaskRecord, truth: Truth): TaskRecord['task_state'] {
  if (task.cancel_requested === true) return 'CANCELED';
  return endingState(truth.counts, truth.subtasks, task.options.tolerated_failure_bp);
}

function check(scenario: Scenario): void {
  const table = new Table(scenario);
  const truth = groundTruth(scenario.histories);
  let endedAs: TaskRecord | undefined;

  const afterEachChange = (before: Watermarks) => {
    const { violations } = table;
    if (remainingSubtasks(table.task) < 0) violations.push(`remaining ${remainingSubtasks(table.task)}`);
    violations.push(...lowered(watermarks(table), before));
    if (endedAs !== undefined) {
      // An ended task never changes again, and no fold of anything would change it.
      if (table.task !== endedAs) violations.push('the ended task changed');
      if (foldTask(table.task, table.counters, T0) !== undefined)
        violations.push('foldTask changed an ended task');
    } else if (table.task.task_state !== 'PROGRESS') {
      // It ends exact: every subtask's terminal status counted once.
      if (JSON.stringify(totalsOf(table.task)) !== JSON.stringify(truth)) {
        violations.push(`ended with ${JSON.stringify(totalsOf(table.task))}, truth ${JSON.stringify(truth)}`);
      }
      endedAs = table.task;
    }
  };

  for (const step of scenario.steps) {
    const beforeDelivery = watermarks(table);
    table.deliver(step.batch);
    afterEachChange(beforeDelivery);
    for (const op of step.ops) {
      const before = watermarks(table);
      table.run(op);
      afterEachChange(before);
    }
  }

  // The last recount after the last change: the task ends, exact.
  const beforeReconcile = watermarks(table);
  table.reconcile();
  afterEachChange(beforeReconcile);
  expect(table.violations).toEqual([]);
  expect(table.task.task_state).toBe(expectedEnding(table.task, truth));
  expect(totalsOf(table.task)).toEqual(truth);
  expect(table.task.in_flight).toEqual(ZERO_COUNTS);
  expect(remainingSubtasks(table.task)).toBe(0);

  // Every recount ever made, replayed late in any order, and every late fold: nothing changes.
  const final = table.task;
  const finalCounters = [...table.counters];
  const random = seededRandom(scenario.replaySeed);
  for (const recount of shuffled(table.recounts, random)) {
    table.writeCounter(recount);
    table.refresh();
    const read = table.taskReads[Math.floor(random() * table.taskReads.length)];
    const counters = table.counterReads[Math.floor(random() * table.counterReads.length)];
    if (read !== undefined && counters !== undefined) table.fold(read, counters);
  }
  expect(table.task).toBe(final);
  expect(table.counters).toEqual(finalCounters);
}

describe('the fold under replays, reordering and duplicates', () => {
  it('ends every task exact, never goes below zero remaining, and never changes an ended task', () => {
    fc.assert(fc.property(smallScenarioArb, check), { numRuns: 60 });
  });

  it('does the same for tasks of over 1,000 subtasks, whose write shards initialize sets', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const scenario = largeScenario(seed);
        const { task } = initializeTask(initializeRequest(TASK_ID, scenario.ids), T0, GENERATION);
        expect(task.write_shards).toBe(scenario.writeShards);

        check(scenario);
      }),
      { numRuns: 2 },
    );
  });
});
