/**
 * EventBridge refusing every event with a permanent-looking error (`AccessDeniedException`: a grant removed, a
 * bus policy changed) for a while, then taking them again, while tasks keep ending on the table's real stream,
 * folded from two stream shards in batches of random size. The stream must never wait for EventBridge, and
 * every ended task's `Task Ended` must be accepted exactly once, under its one `event_id`.
 */

import { AccessDeniedException } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENTS, SWEEPER } from '../../lambdas/service-settings';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import { type SweepSummary, sweep } from '../../lambdas/sweeper/sweep';
import { SILENT_LOG } from '../support/applier-harness';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, terminal } from '../support/factories';
import { type FoldHarness, startFoldHarness } from '../support/fold-harness';
import { SwitchablePublisher } from '../support/sweep-scene';
import { seededRandom } from '../support/workload';
import { reportFigures, SEED } from './support';

const MINUTE = 60_000;
const TASKS = 12;
const SUBTASKS = 3;

let table: TestTable;
let harness: FoldHarness;
const events = new SwitchablePublisher();

beforeAll(async () => {
  table = await newTaskTable();
  harness = await startFoldHarness({
    store: table.store,
    streamArn: table.streamArn,
    random: seededRandom(SEED + 1_900),
    disorder: { shards: 2, maxBatchSize: 40 },
    events,
  });
});

afterAll(async () => {
  await harness.stop();
});

/** Every status of each task, all of them ending it. */
async function finish(taskIds: readonly string[]): Promise<void> {
  await Promise.all(
    taskIds.map((taskId) =>
      applyToTask(
        table.store,
        taskId,
        Array.from({ length: SUBTASKS }, (_, n) => {
          const status = terminal(`sub-${String(n).padStart(5, '0')}`);
          return { subtaskId: status.task_id, status };
        }),
      ),
    ),
  );
}

function runSweep(atMs: number): Promise<SweepSummary> {
  return sweep({ store: table.store, events, log: SILENT_LOG, now: () => atMs });
}

describe('an EventBridge outage', () => {
  it('blocks no stream record, and every Task Ended is accepted once per event id after it ends', async () => {
    const taskIds = Array.from({ length: TASKS }, () => uniqueName('outage'));
    const start = Date.now();
    await Promise.all(
      taskIds.map((taskId) => table.store.initialize(initializeRequest(taskId, SUBTASKS), start)),
    );
    const [beforeOutage, duringOutage, afterOutage] = [
      taskIds.slice(0, 4),
      taskIds.slice(4, 8),
      taskIds.slice(8),
    ];

    await finish(beforeOutage);
    await harness.drain();
    events.failure = new AccessDeniedException({
      message: 'not authorized to perform events:PutEvents',
      $metadata: { httpStatusCode: 400 },
    });
    await finish(duringOutage);
    const folded = await harness.drain();
    const attemptsDuringOutage = events.attempts;
    let clock = Date.now() + SWEEPER.eventGraceSeconds * 1000;
    const refused = await runSweep(clock);
    clock += MINUTE;
    const backingOff = await runSweep(clock);
    events.failure = undefined;
    await finish(afterOutage);
    const recovered = await harness.drain();
    clock = Date.now() + (SWEEPER.eventGraceSeconds + SWEEPER.permanentEventRetryMinutes * 60) * 1000;
    const republished = await runSweep(clock);
    clock += SWEEPER.permanentEventRetryMinutes * MINUTE;
    const settled = await runSweep(clock);

    reportFigures('EventBridge outage', {
      tasks: TASKS,
      publishCalls: events.attempts,
      publishCallsBeforeRecovery: attemptsDuringOutage,
      undeliverable: refused.eventsUndeliverable,
      republished: republished.eventsPublished,
      streamRetries: recovered.retried,
      streamResumes: recovered.resumes,
    });
    // The stream went on: nothing retried, resumed from or skipped, and every task of the outage ended.
    expect(folded).toMatchObject({ retried: 0, resumes: 0, skipped: 0 });
    expect(recovered).toMatchObject({ retried: 0, resumes: 0, skipped: 0 });
    const tasks = await Promise.all(taskIds.map((taskId) => table.store.getTask(taskId)));
    expect(tasks.map((task) => task?.task_state)).toEqual(taskIds.map(() => 'SUCCESS'));
    expect(refused).toMatchObject({
      eventsPublished: 0,
      eventsUndeliverable: duringOutage.length,
      errors: 0,
    });
    expect(backingOff.tasksDue).toBe(0);
    expect(republished).toMatchObject({ eventsPublished: duringOutage.length, eventsUndeliverable: 0 });
    expect(settled.tasksDue).toBe(0);
    // Accepted exactly once per task, under the event id its ending names.
    const accepted = events.events.filter((event) => event.detailType === EVENTS.taskEnded);
    expect(accepted.map((event) => event.detail.task_id).sort()).toEqual([...taskIds].sort());
    expect(new Set(accepted.map((event) => event.detail.event_id)).size).toBe(TASKS);
    expect(tasks.every((task) => task?.event_pending === undefined)).toBe(true);
  });
});
