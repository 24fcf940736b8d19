/**
 * Events that EventBridge does not accept, on DynamoDB Local and the table's real stream: the ending write marks
 * its task's `Task Ended` unpublished, the aggregator clears the mark once it published and otherwise leaves the
 * event to the sweeper without holding up the stream, and the sweeper publishes what is still marked until it
 * goes out, the same `event_id` each time.
 */

import { AccessDeniedException, ThrottlingException } from '@aws-sdk/client-eventbridge';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENTS, SWEEPER } from '../../lambdas/service-settings';
import { uniqueName } from '../support/aws';
import { initializeRequest, T0, terminal } from '../support/factories';
import {
  apply,
  fold,
  initialize,
  MINUTE,
  newScene,
  runSweep,
  stopScenes,
  task,
} from '../support/sweep-scene';

afterEach(stopScenes);

const GRACE_MS = SWEEPER.eventGraceSeconds * 1000;
const denied = () =>
  new AccessDeniedException({ message: 'no events:PutEvents', $metadata: { httpStatusCode: 400 } });
const throttled = () =>
  new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });

describe('Task Ended', () => {
  it('is marked on the ending task and cleared once the aggregator published it; the sweeper then never sends it', async () => {
    const scene = await newScene();
    const taskId = uniqueName('published');
    await initialize(scene, initializeRequest(taskId, 1));
    await apply(scene, taskId, [terminal('sub-00000')]);

    await fold(scene);
    scene.clock = T0 + GRACE_MS + MINUTE;
    const later = await runSweep(scene);

    expect(await task(scene, taskId)).not.toHaveProperty('event_pending');
    expect(later).toMatchObject({ tasksDue: 0, eventsPublished: 0 });
    expect(scene.events.of(taskId, EVENTS.taskEnded)).toHaveLength(1);
  });

  it('refused for good is neither skipped nor retried in the stream: it stays marked, is counted, and goes out once accepted', async () => {
    const scene = await newScene();
    const taskId = uniqueName('refused');
    await initialize(scene, initializeRequest(taskId, 1));
    await apply(scene, taskId, [terminal('sub-00000')]);
    scene.events.failure = denied();

    // `fold` asserts that the batch neither asked for a retry nor skipped a record.
    await fold(scene);
    const marked = await task(scene, taskId);
    scene.clock = T0 + GRACE_MS;
    const refused = await runSweep(scene);
    scene.clock += MINUTE;
    const backingOff = await runSweep(scene);
    scene.events.failure = undefined;
    scene.clock += SWEEPER.permanentEventRetryMinutes * MINUTE;
    const accepted = await runSweep(scene);
    scene.clock += SWEEPER.permanentEventRetryMinutes * MINUTE;
    const settled = await runSweep(scene);

    expect(marked).toMatchObject({ task_state: 'SUCCESS', event_pending: true });
    expect(refused).toMatchObject({ tasksDue: 1, eventsPublished: 0, eventsUndeliverable: 1, errors: 0 });
    expect(backingOff.tasksDue).toBe(0);
    expect(accepted).toMatchObject({ tasksDue: 1, eventsPublished: 1, eventsUndeliverable: 0 });
    expect(settled.tasksDue).toBe(0);
    expect(await task(scene, taskId)).not.toHaveProperty('event_pending');
    expect(scene.events.of(taskId, EVENTS.taskEnded).map((event) => event.detail.event_id)).toEqual([
      `${marked.task_id}:${marked.generation}:SUCCESS`,
    ]);
  });

  it('of a task that never finished initializing is marked by the ending write too', async () => {
    const scene = await newScene();
    const taskId = uniqueName('incomplete');
    await scene.table.store.initialize(initializeRequest(taskId, 2), T0, { mayContinue: () => false });
    scene.events.failure = throttled();
    scene.clock = T0 + SWEEPER.initializeGraceMinutes * MINUTE;

    await runSweep(scene);
    await fold(scene);
    scene.events.failure = undefined;
    scene.clock += GRACE_MS;
    const retried = await runSweep(scene);

    expect(retried).toMatchObject({ eventsPublished: 1, eventsUndeliverable: 0 });
    expect(scene.events.of(taskId, EVENTS.taskEnded).map((event) => event.detail.end_reason)).toEqual([
      'INITIALIZE_INCOMPLETE',
    ]);
  });
});

describe('Subtask Timed Out', () => {
  it('that fails is deferred to its task by the aggregator and published by the next sweep, once', async () => {
    const scene = await newScene();
    const taskId = uniqueName('deferred');
    await initialize(scene, initializeRequest(taskId, 2, { subtaskTimeoutSeconds: 60 }));
    scene.clock = T0 + 10_000;
    await apply(scene, taskId, [terminal('sub-00000')]);
    await fold(scene);
    scene.clock = T0 + MINUTE;
    await runSweep(scene);
    scene.events.failure = throttled();

    await fold(scene);
    const deferred = await task(scene, taskId);
    scene.events.failure = undefined;
    scene.clock += MINUTE;
    const published = await runSweep(scene);
    scene.clock += GRACE_MS + SWEEPER.permanentEventRetryMinutes * MINUTE;
    const settled = await runSweep(scene);

    expect(deferred).toMatchObject({ task_state: 'SUCCESS', outbox_pending: true, event_pending: true });
    expect(published).toMatchObject({ tasksDue: 1, eventsPublished: 2 });
    expect(settled.tasksDue).toBe(0);
    expect(scene.events.of(taskId, EVENTS.subtaskTimedOut).map((event) => event.detail.subtask_id)).toEqual([
      'sub-00001',
    ]);
    expect(scene.events.of(taskId, EVENTS.taskEnded)).toHaveLength(1);
    expect(await task(scene, taskId)).not.toHaveProperty('outbox_pending');
  });
});
