import {
  incrementSubtaskStatus,
  type SubtaskStatus,
  TERMINAL_STATES,
} from '../../lambdas/core/subtask-status';
import { shuffle } from './applier-harness';
import { messageBody, status } from './factories';

/**
 * What workers would send for a task: per subtask a cumulative history of statuses with growing retry counts,
 * ending in exactly one terminal status; then delivered as SQS would, duplicated and out of order.
 */

export interface Workload {
  readonly histories: ReadonlyMap<string, readonly SubtaskStatus[]>;
  /** Message bodies in delivery order, duplicates included. */
  readonly bodies: readonly string[];
}

function pick<T>(items: readonly T[], random: () => number): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new RangeError('pick from an empty list');
  return item;
}

export interface WorkloadShape {
  /** Share of sent statuses delivered a second time. */
  readonly duplicateShare: number;
  /** Progress and retry statuses before the terminal one: a random count from 0 to this. */
  readonly maxProgressSteps: number;
}

export function subtaskHistory(
  subtaskId: string,
  maxProgressSteps: number,
  random: () => number,
): SubtaskStatus[] {
  const history: SubtaskStatus[] = [];
  let current = status(subtaskId, { state: 'PROGRESS' });
  const steps = Math.floor(random() * (maxProgressSteps + 1));
  for (let step = 0; step < steps; step++) {
    const retry = random() < 0.5;
    current = incrementSubtaskStatus(current, {
      succeeded: Math.floor(random() * 20),
      failed: Math.floor(random() * 3),
      skipped: Math.floor(random() * 2),
      ...(retry ? { retried_withmax: 1, state: 'RETRY' } : { state: 'PROGRESS' }),
    });
    history.push(current);
  }
  history.push(
    incrementSubtaskStatus(current, {
      succeeded: Math.floor(random() * 50),
      failed: Math.floor(random() * 5),
      skipped: Math.floor(random() * 3),
      state: random() < 0.85 ? 'SUCCESS' : pick(TERMINAL_STATES, random),
    }),
  );
  return history;
}

export function workload(
  taskId: string,
  subtaskIds: readonly string[],
  shape: WorkloadShape,
  random: () => number,
): Workload {
  const histories = new Map(subtaskIds.map((id) => [id, subtaskHistory(id, shape.maxProgressSteps, random)]));
  const sent = [...histories.values()].flat();
  const duplicates = sent.filter(() => random() < shape.duplicateShare);
  const bodies = shuffle([...sent, ...duplicates], random).map((subtaskStatus) =>
    messageBody(taskId, subtaskStatus),
  );
  return { histories, bodies };
}

export interface ExpectedProgress {
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly subtasksSucceeded: number;
  readonly subtasksFailed: number;
}

/** The ground truth: each subtask's one terminal status, counted once. */
export function expectedProgress(histories: ReadonlyMap<string, readonly SubtaskStatus[]>): ExpectedProgress {
  const finals = [...histories.values()].map((history) => history.at(-1)).filter((s) => s !== undefined);
  const sum = (field: 'attempted' | 'succeeded' | 'failed' | 'skipped') =>
    finals.reduce((total, final) => total + final[field], 0);
  const subtasksSucceeded = finals.filter((final) => final.state === 'SUCCESS').length;
  return {
    attempted: sum('attempted'),
    succeeded: sum('succeeded'),
    failed: sum('failed'),
    skipped: sum('skipped'),
    subtasksSucceeded,
    subtasksFailed: finals.length - subtasksSucceeded,
  };
}
