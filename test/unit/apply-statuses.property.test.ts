import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ApplyResult, applyStatuses, type StatusUpdate } from '../../lambdas/core/apply-statuses';
import {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  type SubtaskStatus,
  sameStatus,
  TERMINAL_STATES,
} from '../../lambdas/core/subtask-status';
import { initializeTask, type SubtaskRecord } from '../../lambdas/core/task';
import { GENERATION, initializeRequest, subtaskIds, T0 } from '../support/factories';

const TASK_ID = 'task-1';
const TASK = { task_id: TASK_ID, generation: GENERATION };
const NUM_RUNS = 150;

type Retry = 'none' | 'nomax' | 'withmax';

interface Step {
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly retry: Retry;
}

interface EndStep extends Step {
  readonly state: (typeof TERMINAL_STATES)[number];
}

/** Per subtask, what its worker sent: cumulative statuses, retry counts never falling, one terminal status last. */
type Histories = readonly (readonly SubtaskStatus[])[];
type Subtasks = ReadonlyMap<string, SubtaskRecord>;

function retryIncrement(retry: Retry) {
  if (retry === 'nomax') return { retried_nomax: 1 };
  if (retry === 'withmax') return { retried_withmax: 1 };
  return {};
}

function history(subtaskId: string, running: readonly Step[], end: EndStep): SubtaskStatus[] {
  const statuses: SubtaskStatus[] = [];
  let current = createSubtaskStatus(subtaskId);
  for (const step of running) {
    current = incrementSubtaskStatus(current, {
      succeeded: step.succeeded,
      failed: step.failed,
      skipped: step.skipped,
      ...retryIncrement(step.retry),
      state: step.retry === 'none' ? 'PROGRESS' : 'RETRY',
    });
    statuses.push(current);
  }
  statuses.push(
    incrementSubtaskStatus(current, {
      succeeded: end.succeeded,
      failed: end.failed,
      skipped: end.skipped,
      ...retryIncrement(end.retry),
      state: end.state,
    }),
  );
  return statuses;
}

/**
 * Running steps as workers send them. With `ordered`, every running status of a subtask is newer than the one
 * before by rule 5 (one more retry, or as many retries and more attempted items); without, two of them may tie
 * (only `skipped` or the state moved), which rule 5 cannot order.
 */
function runningStepArb(ordered: boolean): fc.Arbitrary<Step> {
  return fc
    .record({
      succeeded: fc.nat({ max: 20 }),
      failed: fc.nat({ max: 3 }),
      skipped: fc.nat({ max: 2 }),
      retry: fc.constantFrom<Retry>('none', 'nomax', 'withmax'),
    })
    .map((step) =>
      ordered && step.retry === 'none' && step.succeeded + step.failed === 0
        ? { ...step, succeeded: 1 }
        : step,
    );
}

function historiesArb(ordered: boolean): fc.Arbitrary<Histories> {
  const end = fc.record({
    succeeded: fc.nat({ max: 50 }),
    failed: fc.nat({ max: 5 }),
    skipped: fc.nat({ max: 3 }),
    retry: fc.constantFrom<Retry>('none', 'nomax', 'withmax'),
    state: fc.constantFrom(...TERMINAL_STATES),
  });
  return fc
    .array(fc.tuple(fc.array(runningStepArb(ordered), { maxLength: 4 }), end), {
      minLength: 1,
      maxLength: 40,
    })
    .map((subtasks) => {
      const ids = subtaskIds(subtasks.length);
      return subtasks.map(([steps, last], index) => history(ids[index] ?? `sub-${index}`, steps, last));
    });
}

/** `statuses`, some of them repeated, in a random order that ignores each subtask's own order. */
function deliveredArb(statuses: readonly SubtaskStatus[]): fc.Arbitrary<SubtaskStatus[]> {
  const repeats =
    statuses.length === 0
      ? fc.constant([])
      : fc.array(fc.constantFrom(...statuses), { maxLength: statuses.length });
  return repeats.chain((extra) => {
    const all = [...statuses, ...extra];
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
  });
}

/** `items` cut into consecutive non-empty batches at random positions. */
function batchesArb<T>(items: readonly T[]): fc.Arbitrary<T[][]> {
  const positions = Array.from({ length: Math.max(items.length - 1, 0) }, (_, index) => index + 1);
  return fc.subarray(positions).map((cuts) => {
    const bounds = [0, ...cuts, items.length];
    return bounds.slice(1).map((end, index) => items.slice(bounds[index], end));
  });
}

const scenarioArb = historiesArb(false).chain((histories) =>
  fc.record({
    histories: fc.constant(histories),
    batches: deliveredArb(histories.flat()).chain((delivered) => batchesArb(delivered)),
  }),
);

function started(histories: Histories): Subtasks {
  const ids = histories.map((statuses) => statuses[0]?.task_id ?? '');
  const { subtasks } = initializeTask(initializeRequest(TASK_ID, ids), T0, GENERATION);
  return new Map(subtasks.map((record) => [record.subtask_id, record]));
}

function updates(statuses: readonly SubtaskStatus[]): StatusUpdate[] {
  return statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus }));
}

function stored(subtasks: Subtasks, result: ApplyResult): Subtasks {
  const next = new Map(subtasks);
  for (const record of result.changed) next.set(record.subtask_id, record);
  return next;
}

function terminalOf(statuses: readonly SubtaskStatus[]): SubtaskStatus {
  const ends = statuses.filter((subtaskStatus) => isTerminalState(subtaskStatus.state));
  const [end] = ends;
  if (end === undefined || ends.length !== 1)
    throw new RangeError('a history ends in exactly one terminal status');
  return end;
}

describe('applyStatuses under at-least-once, unordered delivery', () => {
  it('leaves every subtask at its terminal status, whatever the duplicates, order and batching', () => {
    fc.assert(
      fc.property(scenarioArb, ({ histories, batches }) => {
        let subtasks = started(histories);
        const outcomeKinds: string[] = [];

        batches.forEach((batch, index) => {
          const result = applyStatuses(TASK, subtasks, updates(batch), T0 + index);
          outcomeKinds.push(...result.outcomes.map((outcome) => outcome.kind));
          subtasks = stored(subtasks, result);
        });

        expect(outcomeKinds).not.toContain('rejected');
        for (const end of histories.map(terminalOf)) {
          const record = subtasks.get(end.task_id);
          expect(record !== undefined && sameStatus(record.status, end)).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('writes each changed subtask once per call, at the version it read + 1, and never out of a terminal state', () => {
    fc.assert(
      fc.property(scenarioArb, ({ histories, batches }) => {
        let subtasks = started(histories);

        for (const batch of batches) {
          const result = applyStatuses(TASK, subtasks, updates(batch), T0);

          const ids = result.changed.map((record) => record.subtask_id);
          expect(new Set(ids).size).toBe(ids.length);
          for (const record of result.changed) {
            const before = subtasks.get(record.subtask_id);
            expect(record.version).toBe((before?.version ?? Number.NaN) + 1);
            expect(before !== undefined && isTerminalState(before.status.state)).toBe(false);
          }
          subtasks = stored(subtasks, result);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('gives the same outcomes and statuses for a batch as for its statuses one call at a time', () => {
    fc.assert(
      fc.property(
        historiesArb(false).chain((histories) =>
          fc.record({ histories: fc.constant(histories), delivered: deliveredArb(histories.flat()) }),
        ),
        ({ histories, delivered }) => {
          const initial = started(histories);

          const together = applyStatuses(TASK, initial, updates(delivered), T0);
          let oneByOne = initial;
          const oneByOneKinds = delivered.map((subtaskStatus) => {
            const result = applyStatuses(TASK, oneByOne, updates([subtaskStatus]), T0);
            oneByOne = stored(oneByOne, result);
            return result.outcomes[0]?.kind;
          });

          const statusesOf = (records: Subtasks) => [...records.values()].map((record) => record.status);
          expect(together.outcomes.map((outcome) => outcome.kind)).toEqual(oneByOneKinds);
          expect(statusesOf(stored(initial, together))).toEqual(statusesOf(oneByOne));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('applying the same batch a second time', () => {
  /** A state reached by some deliveries, then a batch of further deliveries to apply twice. */
  function replayArb(ordered: boolean) {
    return historiesArb(ordered).chain((histories) => {
      const sent = histories.flat();
      return fc.record({
        histories: fc.constant(histories),
        before: fc.subarray(sent).chain(deliveredArb),
        batch: fc.subarray(sent, { minLength: 1 }).chain(deliveredArb),
      });
    });
  }

  it('changes nothing when rule 5 orders every status of a subtask', () => {
    fc.assert(
      fc.property(replayArb(true), ({ histories, before, batch }) => {
        const initial = started(histories);
        const reached = stored(initial, applyStatuses(TASK, initial, updates(before), T0 + 1_000));
        const once = stored(reached, applyStatuses(TASK, reached, updates(batch), T0 + 2_000));

        const twice = applyStatuses(TASK, once, updates(batch), T0 + 3_000);

        expect(
          twice.outcomes.filter((outcome) => outcome.kind !== 'duplicate' && outcome.kind !== 'stale'),
        ).toEqual([]);
        expect(twice.changed).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never changes a terminal status, whatever the statuses', () => {
    fc.assert(
      fc.property(replayArb(false), ({ histories, before, batch }) => {
        const initial = started(histories);
        const reached = stored(initial, applyStatuses(TASK, initial, updates(before), T0 + 1_000));
        const once = stored(reached, applyStatuses(TASK, reached, updates(batch), T0 + 2_000));

        const twice = stored(once, applyStatuses(TASK, once, updates(batch), T0 + 3_000));

        for (const [id, record] of once) {
          if (isTerminalState(record.status.state)) expect(twice.get(id)).toBe(record);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
