/**
 * The sweeper's bounds and what nothing may starve, on DynamoDB Local with an injected clock: timeouts found
 * beyond the first page of running subtasks, due times that count shards never recounted, a run that stops on
 * time and leaves cursors the next run resumes from, urgent work ahead of idle recounts, and a stopped stream
 * consumer seen by the idle recount.
 */

import { afterEach, describe, expect, it } from 'vitest';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import { shardOf } from '../../lambdas/core/write-shards';
import { SWEEPER } from '../../lambdas/service-settings';
import { uniqueName } from '../support/aws';
import { initializeRequest, status, T0, terminal } from '../support/factories';
import { interceptStore } from '../support/fold-harness';
import {
  apply,
  fold,
  initialize,
  MINUTE,
  newScene,
  runSweep,
  stopScenes,
  subtasks,
  task,
} from '../support/sweep-scene';

afterEach(stopScenes);

/** `count` subtask ids that all fall into write shard `shard` of `writeShards`. */
function idsInShard(count: number, shard: number, writeShards: number, prefix: string): string[] {
  const ids: string[] = [];
  for (let n = 0; ids.length < count; n++) {
    const id = `${prefix}-${String(n).padStart(6, '0')}`;
    if (shardOf(id, writeShards) === shard) ids.push(id);
  }
  return ids;
}

describe('subtask timeouts', () => {
  it('end the silent subtasks that come after the first 1,000 running ones of a shard', async () => {
    const scene = await newScene();
    const taskId = uniqueName('beyond');
    // 2,000 subtasks over two shards; shard 0 holds 1,016: the first 1,000 (in key order) alive, 16 silent.
    const crowded = idsInShard(1_016, 0, 2, 'a');
    const others = idsInShard(2_000 - crowded.length, 1, 2, 'b');
    await scene.table.store.initialize(
      { ...initializeRequest(taskId, 1), subtaskIds: [...crowded, ...others], subtaskTimeoutSeconds: 600 },
      scene.clock,
      { writeShards: 2 },
    );
    const alive = [...crowded.slice(0, 1_000), ...others];
    const silent = crowded.slice(1_000);
    const heartbeat = async (round: number) => {
      scene.clock = T0 + round * 8 * MINUTE;
      await apply(
        scene,
        taskId,
        alive.map((id): SubtaskStatus => status(id, { succeeded: round, state: 'PROGRESS' })),
      );
      await fold(scene);
    };

    await heartbeat(1);
    for (const minutes of [10, 11]) {
      scene.clock = T0 + minutes * MINUTE;
      await runSweep(scene);
    }
    await heartbeat(2);
    await fold(scene);

    const ended = (await subtasks(scene, taskId)).filter((subtask) => subtask.reason === 'TIMED_OUT');
    expect(ended.map((subtask) => subtask.subtask_id).sort()).toEqual([...silent].sort());
    expect((await task(scene, taskId)).subtasks).toMatchObject({ failed: 16 });
  }, 120_000);

  it('are due from shards never recounted since initialize, whatever changes elsewhere', async () => {
    const scene = await newScene();
    const taskId = uniqueName('unrecounted');
    const [busy] = idsInShard(1, 0, 2, 'x');
    const [quiet] = idsInShard(1, 1, 2, 'y');
    await scene.table.store.initialize(
      {
        ...initializeRequest(taskId, 1),
        subtaskIds: [busy as string, quiet as string],
        subtaskTimeoutSeconds: 600,
      },
      scene.clock,
      { writeShards: 2 },
    );
    // Only shard 0 changes and is recounted: shard 1's counter is the one initialize wrote.
    scene.clock = T0 + 5 * MINUTE;
    await apply(scene, taskId, [status(busy as string, { succeeded: 1, state: 'PROGRESS' })]);
    await fold(scene);

    scene.clock = T0 + 10 * MINUTE;
    const summary = await runSweep(scene);

    expect(summary).toMatchObject({ tasksDue: 1, subtasksEnded: 1 });
    expect((await subtasks(scene, taskId)).find((subtask) => subtask.subtask_id === quiet)).toMatchObject({
      reason: 'TIMED_OUT',
    });
  });
});

describe('a run bounded in time', () => {
  it('stops a large recount when its time runs out, a cancel goes first, and the next run resumes the recount', async () => {
    const scene = await newScene();
    const [idle, canceled] = [uniqueName('idle'), uniqueName('canceled')];
    await scene.table.store.initialize(initializeRequest(idle, 8), scene.clock, { writeShards: 4 });
    scene.clock = T0 + 10 * MINUTE;
    const toCancel = await initialize(scene, initializeRequest(canceled, 3));
    await scene.table.store.requestCancel(toCancel, T0 + 16 * MINUTE);
    // Each shard's recount takes 20 s of the run's 60: three fit before the 10 s margin.
    let remaining = 60_000;
    const slow = interceptStore(scene.table.store, async (call) => {
      if (call.method === 'readShard') remaining -= 20_000;
      return call.proceed();
    });

    scene.clock = T0 + 16 * MINUTE;
    const first = await runSweep(scene, slow, undefined, { remainingTimeMs: () => remaining });
    const stopped = await task(scene, idle);
    remaining = 60_000;
    scene.clock += MINUTE;
    const second = await runSweep(scene, slow, undefined, { remainingTimeMs: () => remaining });
    await fold(scene);

    expect(first).toMatchObject({ tasksDue: 2, subtasksEnded: 3, tasksReconciled: 0, errors: 0 });
    expect(stopped.recount_cursor).toBe(3);
    expect(second).toMatchObject({ tasksDue: 1, tasksReconciled: 1 });
    expect(await task(scene, idle)).not.toHaveProperty('recount_cursor');
    expect((await task(scene, canceled)).task_state).toBe('CANCELED');
  });

  it('moves the due time of a routine recount that found nothing, so it is not recounted every minute', async () => {
    const scene = await newScene();
    const taskId = uniqueName('routine');
    await initialize(scene, initializeRequest(taskId, 2));

    const runs: number[] = [];
    for (const minutes of [15, 16, 29, 30]) {
      scene.clock = T0 + minutes * MINUTE;
      runs.push((await runSweep(scene)).tasksReconciled);
    }

    expect(runs).toEqual([1, 0, 0, 1]);
  });
});

describe('a stopped stream consumer', () => {
  it('is seen by the idle recount: changes minutes old that no fold counted', async () => {
    const scene = await newScene();
    const [stalled, healthy] = [uniqueName('stalled'), uniqueName('healthy')];
    await initialize(scene, initializeRequest(stalled, 2));
    await initialize(scene, initializeRequest(healthy, 2));
    scene.clock = T0 + MINUTE;
    await apply(scene, healthy, [status('sub-00000', { succeeded: 1, state: 'PROGRESS' })]);
    await fold(scene);
    await apply(scene, stalled, [status('sub-00000', { succeeded: 1, state: 'PROGRESS' })]);
    await scene.tap.next(); // the consumer is stopped: these records are never folded

    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE + MINUTE;
    const summary = await runSweep(scene);

    expect(summary).toMatchObject({ tasksDue: 2, tasksReconciled: 2, unfoldedShards: 1 });
  });

  it('is not suspected for a change the fold has not had time to count', async () => {
    const scene = await newScene();
    const taskId = uniqueName('recent');
    await initialize(scene, initializeRequest(taskId, 2));
    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE - 30_000;
    await apply(scene, taskId, [terminal('sub-00000')]);

    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE;
    const summary = await runSweep(scene);

    expect(summary).toMatchObject({ tasksReconciled: 1, unfoldedShards: 0 });
  });
});
