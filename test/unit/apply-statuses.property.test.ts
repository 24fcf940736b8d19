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
import { initializeTask, type SubtaskRecord, type TaskRecord } from '../../lambdas/core/task';
import { initializeRequest, subtaskIds, T0 } from '../support/factories';

const TASK_ID = 'task-1';
const NUM_RUNS = 300;

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

function historiesArb(retries: fc.Arbitrary<Retry>): fc.Arbitrary<Histories> {
  const running = fc.record({
    succeeded: fc.nat({ max: 20 }),
    failed: fc.nat({ max: 3 }),
    skipped: fc.nat({ max: 2 }),
    retry: retries,
  });
  const end = fc.record({
    succeeded: fc.nat({ max: 50 }),
    failed: fc.nat({ max: 5 }),
    skipped: fc.nat({ max: 3 }),
    retry: fc.constantFrom<Retry>('none', 'nomax', 'withmax'),
    state: fc.constantFrom(...TERMINAL_STATES),
  });
  return fc
    .integer({ min: 1, max: 60 })
    .chain((count) =>
      fc.array(fc.tuple(fc.array(running, { maxLength: 4 }), end), { minLength: count, maxLength: count }),
    )
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

interface Scenario {
  readonly histories: Histories;
  readonly batches: readonly (readonly SubtaskStatus[])[];
  /** Clock readings for the successive calls, in ms after start; they may go backwards. */
  readonly clock: readonly number[];
}

const scenarioArb: fc.Arbitrary<Scenario> = historiesArb(
  fc.constantFrom<Retry>('none', 'nomax', 'withmax'),
).chain((histories) =>
  fc.record({
    histories: fc.constant(histories),
    batches: deliveredArb(histories.flat()).chain((delivered) => batchesArb(delivered)),
    clock: fc.array(fc.integer({ min: -5_000, max: 600_000 }), { minLength: 1, maxLength: 20 }),
  }),
);

interface Progress {
  readonly task: TaskRecord;
  readonly subtasks: ReadonlyMap<string, SubtaskRecord>;
}

function started(histories: Histories): Progress {
  const ids = histories.map((statuses) => statuses[0]?.task_id ?? '');
  const { task, subtasks } = initializeTask(initializeRequest(TASK_ID, ids), T0);
  return { task, subtasks: new Map(subtasks.map((record) => [record.subtask_id, record])) };
}

function updates(statuses: readonly SubtaskStatus[]): StatusUpdate[] {
  return statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus }));
}

function stored(progress: Progress, result: ApplyResult): Progress {
  const subtasks = new Map(progress.subtasks);
  for (const record of result.changed) subtasks.set(record.subtask_id, record);
  return { task: result.task, subtasks };
}

function terminalOf(statuses: readonly SubtaskStatus[]): SubtaskStatus {
  const ends = statuses.filter((subtaskStatus) => isTerminalState(subtaskStatus.state));
  const [end] = ends;
  if (end === undefined || ends.length !== 1)
    throw new RangeError('a history ends in exactly one terminal status');
  return end;
}

describe('applyStatuses under at-least-once, unordered delivery', () => {
  it('counts every subtask exactly once, by its terminal status, whatever the duplicates, order and batching', () => {
    fc.assert(
      fc.property(scenarioArb, ({ histories, batches, clock }) => {
        const initial = started(histories);
        let progress = initial;
        let applyingCalls = 0;
        const outcomeKinds: string[] = [];

        batches.forEach((batch, index) => {
          const nowMs = T0 + (clock[index % clock.length] ?? 0);
          const result = applyStatuses(progress.task, progress.subtasks, updates(batch), nowMs);

          outcomeKinds.push(...result.outcomes.map((outcome) => outcome.kind));
          if (result.changed.length > 0) {
            applyingCalls += 1;
            expect(result.task.version).toBe(progress.task.version + 1);
            expect(result.task.task_output.duration_ms).toBeGreaterThanOrEqual(
              progress.task.task_output.duration_ms,
            );
            for (const record of result.changed) expect(record.updated_version).toBe(result.task.version);
          } else {
            expect(result.task).toBe(progress.task);
          }
          progress = stored(progress, result);
        });

        const ends = histories.map(terminalOf);
        const total = (field: 'attempted' | 'succeeded' | 'failed' | 'skipped') =>
          ends.reduce((sum, end) => sum + end[field], 0);
        const succeededSubtasks = ends.filter((end) => end.state === 'SUCCESS').length;
        expect(progress.task.task_output).toMatchObject({
          attempted: total('attempted'),
          succeeded: total('succeeded'),
          failed: total('failed'),
          skipped: total('skipped'),
        });
        expect(progress.task.subtasks).toEqual({
          total: histories.length,
          succeeded: succeededSubtasks,
          failed: histories.length - succeededSubtasks,
        });
        expect(progress.task.task_state).toBe('SUCCESS');
        expect(progress.task.version).toBe(initial.task.version + applyingCalls);
        expect(outcomeKinds).not.toContain('rejected');
        for (const end of ends) {
          const record = progress.subtasks.get(end.task_id);
          expect(record !== undefined && sameStatus(record.status, end)).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('applying the same batch a second time', () => {
  /** A state reached by some deliveries, then a batch of further deliveries to apply twice. */
  function replayArb(retries: fc.Arbitrary<Retry>) {
    return historiesArb(retries).chain((histories) => {
      const sent = histories.flat();
      return fc.record({
        histories: fc.constant(histories),
        before: fc.subarray(sent).chain(deliveredArb),
        batch: fc.subarray(sent, { minLength: 1 }).chain(deliveredArb),
      });
    });
  }

  it('changes nothing when the running statuses of a subtask differ in retry count', () => {
    fc.assert(
      fc.property(
        replayArb(fc.constantFrom<Retry>('nomax', 'withmax')),
        ({ histories, before: earlier, batch }) => {
          const initial = started(histories);
          const reached = stored(
            initial,
            applyStatuses(initial.task, initial.subtasks, updates(earlier), T0 + 1_000),
          );
          const once = stored(
            reached,
            applyStatuses(reached.task, reached.subtasks, updates(batch), T0 + 2_000),
          );

          const twice = applyStatuses(once.task, once.subtasks, updates(batch), T0 + 3_000);

          expect(
            twice.outcomes.filter((outcome) => outcome.kind !== 'duplicate' && outcome.kind !== 'stale'),
          ).toEqual([]);
          expect(twice.task).toBe(once.task);
          expect(twice.changed).toEqual([]);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('never changes a count, a stored status or the task state', () => {
    fc.assert(
      fc.property(
        replayArb(fc.constantFrom<Retry>('none', 'nomax', 'withmax')),
        ({ histories, before: earlier, batch }) => {
          const initial = started(histories);
          const reached = stored(
            initial,
            applyStatuses(initial.task, initial.subtasks, updates(earlier), T0 + 1_000),
          );
          const once = stored(
            reached,
            applyStatuses(reached.task, reached.subtasks, updates(batch), T0 + 2_000),
          );

          const twice = stored(once, applyStatuses(once.task, once.subtasks, updates(batch), T0 + 3_000));

          expect(twice.task.task_output).toEqual({
            ...once.task.task_output,
            duration_ms: twice.task.task_output.duration_ms,
          });
          expect(twice.task.subtasks).toEqual(once.task.subtasks);
          expect(twice.task.task_state).toBe(once.task.task_state);
          const statuses = (progress: { subtasks: ReadonlyMap<string, SubtaskRecord> }) =>
            [...progress.subtasks.values()].map((record) => record.status);
          expect(statuses(twice)).toEqual(statuses(once));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
