/**
 * What workers send for a task, delivered as SQS would deliver it: each subtask reports some progress or retry
 * statuses and then exactly one terminal status; a share of all statuses is delivered twice; everything arrives
 * in random order. Seeded, so every strategy of a bench run, two runs, and a failing property test replay the
 * same deliveries. The bench and the test suites share this module.
 */
import type { StatusUpdate } from '../../lambdas/core/apply-statuses';
import { statusMessageBody } from '../../lambdas/core/status-message';
import {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  type TerminalState,
} from '../../lambdas/core/subtask-status';

/** How often a non-terminal status is a retry (bumps `retried_withmax`, state `RETRY`) rather than progress. */
const RETRY_SHARE = 0.3;

export interface WorkloadShape {
  /** Share of sent statuses delivered a second time. */
  readonly duplicateShare: number;
  /** Progress and retry statuses before the terminal one: a random count in this range. */
  readonly minProgressSteps: number;
  readonly maxProgressSteps: number;
}

/** The bench's shape: 1–3 progress or retry statuses per subtask, 10% duplicates. */
export const BENCH_SHAPE: WorkloadShape = { duplicateShare: 0.1, minProgressSteps: 1, maxProgressSteps: 3 };

/** One delivery of a status message; `id` stands in for the SQS message id. */
export interface Delivery {
  readonly id: number;
  readonly update: StatusUpdate;
  /** The SQS body a worker sends for it, for the strategy that parses bodies as the Lambda does. */
  readonly body: string;
}

/**
 * The ground truth for a set of deliveries: each subtask whose terminal status was delivered counts that status
 * once; the others must still be running.
 */
export interface ExpectedProgress {
  /** Subtasks the task has, finished or not. */
  readonly subtasks: number;
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly subtasksSucceeded: number;
  readonly subtasksFailed: number;
  /** The terminal status each finished subtask must hold. */
  readonly finals: ReadonlyMap<string, SubtaskStatus>;
}

export interface Workload {
  readonly taskId: string;
  readonly subtaskIds: readonly string[];
  /** Per subtask, every status its worker sent, the terminal one last. */
  readonly histories: ReadonlyMap<string, readonly SubtaskStatus[]>;
  readonly deliveries: readonly Delivery[];
  /** Statuses sent, before duplication. */
  readonly sent: number;
  readonly expected: ExpectedProgress;
}

/**
 * sfc32, a small generator with a 128-bit state: good enough to shuffle and to draw counts, and seedable, which
 * `Math.random` is not.
 */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4_294_967_296;
  };
  // The first outputs still carry the seed's structure; discard them.
  for (let warmUp = 0; warmUp < 12; warmUp++) next();
  return next;
}

function integerBelow(limit: number, random: () => number): number {
  return Math.floor(random() * limit);
}

/** Fisher–Yates on a copy. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const result = [...items];
  for (let last = result.length - 1; last > 0; last--) {
    const other = integerBelow(last + 1, random);
    [result[last], result[other]] = [result[other] as T, result[last] as T];
  }
  return result;
}

function terminalState(random: () => number): TerminalState {
  const draw = random();
  if (draw < 0.85) return 'SUCCESS';
  return draw < 0.95 ? 'FAILURE' : 'REVOKED';
}

/** One subtask's cumulative statuses in the order its worker sent them; the last one is terminal. */
export function subtaskHistory(
  subtaskId: string,
  shape: WorkloadShape,
  random: () => number,
): SubtaskStatus[] {
  const history: SubtaskStatus[] = [];
  let current = createSubtaskStatus(subtaskId, { state: 'PROGRESS' });
  const progressStatuses =
    shape.minProgressSteps + integerBelow(shape.maxProgressSteps - shape.minProgressSteps + 1, random);
  for (let step = 0; step < progressStatuses; step++) {
    const retry = random() < RETRY_SHARE;
    current = incrementSubtaskStatus(current, {
      succeeded: integerBelow(20, random),
      failed: integerBelow(3, random),
      skipped: integerBelow(2, random),
      ...(retry ? { retried_withmax: 1, state: 'RETRY' } : { state: 'PROGRESS' }),
    });
    history.push(current);
  }
  history.push(
    incrementSubtaskStatus(current, {
      succeeded: integerBelow(50, random),
      failed: integerBelow(5, random),
      skipped: integerBelow(3, random),
      state: terminalState(random),
    }),
  );
  return history;
}

/** What the task must hold once exactly `delivered` were applied, whatever their order and repetitions. */
export function expectedProgress(subtasks: number, delivered: Iterable<Delivery>): ExpectedProgress {
  const finals = new Map<string, SubtaskStatus>();
  for (const { update } of delivered) {
    if (isTerminalState(update.status.state)) finals.set(update.subtaskId, update.status);
  }
  const statuses = [...finals.values()];
  const sum = (field: 'attempted' | 'succeeded' | 'failed' | 'skipped') =>
    statuses.reduce((total, status) => total + status[field], 0);
  const subtasksSucceeded = statuses.filter((status) => status.state === 'SUCCESS').length;
  return {
    subtasks,
    attempted: sum('attempted'),
    succeeded: sum('succeeded'),
    failed: sum('failed'),
    skipped: sum('skipped'),
    subtasksSucceeded,
    subtasksFailed: statuses.length - subtasksSucceeded,
    finals,
  };
}

export function subtaskIdsFor(fanOut: number): string[] {
  return Array.from({ length: fanOut }, (_, index) => `sub-${String(index).padStart(5, '0')}`);
}

/** The deliveries for one task of `subtaskIds`, the same every time for the same `random` sequence. */
export function workloadFor(
  taskId: string,
  subtaskIds: readonly string[],
  shape: WorkloadShape,
  random: () => number,
): Workload {
  const histories = new Map(
    subtaskIds.map((subtaskId) => [subtaskId, subtaskHistory(subtaskId, shape, random)]),
  );
  const sent: StatusUpdate[] = [...histories.values()]
    .flat()
    .map((status) => ({ subtaskId: status.task_id, status }));
  // Exactly `duplicateShare` of the statuses, drawn without replacement, are delivered a second time.
  const redelivered = shuffle(sent, random).slice(0, Math.round(sent.length * shape.duplicateShare));
  const updates = shuffle([...sent, ...redelivered], random);
  const deliveries = updates.map(
    (update, id): Delivery => ({
      id,
      update,
      body: JSON.stringify(statusMessageBody(taskId, update.status)),
    }),
  );
  return {
    taskId,
    subtaskIds,
    histories,
    deliveries,
    sent: sent.length,
    expected: expectedProgress(subtaskIds.length, deliveries),
  };
}

/** The bench's workload for one task of `fanOut` subtasks, the same for every strategy given the same seed. */
export function generateWorkload(taskId: string, fanOut: number, seed: number): Workload {
  return workloadFor(
    taskId,
    subtaskIdsFor(fanOut),
    BENCH_SHAPE,
    seededRandom(seed ^ Math.imul(fanOut, 0x9e3779b1)),
  );
}
