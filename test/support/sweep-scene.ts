/**
 * A sweeper test's world: a table of its own (the due index is the table's), the fold run from the table's
 * real stream by hand, an injected clock, and an event bus that accepts or refuses on demand.
 */

import { expect } from 'vitest';
import { foldBatch } from '../../lambdas/aggregator/fold-batch';
import type { ServiceEvent } from '../../lambdas/core/events';
import type { SubtaskStatus } from '../../lambdas/core/subtask-status';
import type { InitializeRequest, SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { applyToTask } from '../../lambdas/store/apply-to-task';
import type { TaskStore } from '../../lambdas/store/task-store';
import { type SweepDependencies, type SweepSummary, sweep } from '../../lambdas/sweeper/sweep';
import { SILENT_LOG } from './applier-harness';
import { newTaskTable, type TestTable } from './aws';
import { T0 } from './factories';
import { CollectingPublisher, StreamTap } from './fold-harness';

/** Keeps what it accepts; while `failure` is set, every publish throws it and nothing is kept. */
export class SwitchablePublisher extends CollectingPublisher {
  failure: unknown;
  /** Publish calls made, refused ones included. */
  attempts = 0;

  override async publish(events: readonly ServiceEvent[]): Promise<void> {
    this.attempts++;
    if (this.failure !== undefined) throw this.failure;
    await super.publish(events);
  }
}

export const MINUTE = 60_000;

export interface Scene {
  readonly table: TestTable;
  readonly tap: StreamTap;
  readonly events: SwitchablePublisher;
  /** The injected clock, epoch ms. */
  clock: number;
  readonly now: () => number;
}

const scenes: Scene[] = [];

/** Stops the stream taps of every scene so far: call it after each test. */
export async function stopScenes(): Promise<void> {
  await Promise.all(scenes.splice(0).map((scene) => scene.tap.stop()));
}

export async function newScene(table?: TestTable): Promise<Scene> {
  const resolved = table ?? (await newTaskTable());
  const scene: Scene = {
    table: resolved,
    tap: new StreamTap(resolved.streamArn),
    events: new SwitchablePublisher(),
    clock: T0,
    now: () => scene.clock,
  };
  scenes.push(scene);
  return scene;
}

export function runSweep(
  scene: Scene,
  store: TaskStore = scene.table.store,
  subtasksPerRun?: number,
  more: Partial<SweepDependencies> = {},
): Promise<SweepSummary> {
  return sweep({
    store,
    events: scene.events,
    log: SILENT_LOG,
    now: scene.now,
    ...(subtasksPerRun === undefined ? {} : { subtasksPerRun }),
    ...more,
  });
}

/** The aggregator over everything the stream carries, and over what its own writes add (the ending's event). */
export async function fold(scene: Scene): Promise<void> {
  for (let round = 0; round < 2; round++) {
    const records = await scene.tap.next();
    if (records.length === 0) return;
    const { resumeFrom, summary } = await foldBatch(records, {
      store: scene.table.store,
      events: scene.events,
      log: SILENT_LOG,
      now: scene.now,
    });
    expect({ resumeFrom, skipped: summary.skipped }).toEqual({ resumeFrom: undefined, skipped: 0 });
  }
}

export async function initialize(scene: Scene, request: InitializeRequest) {
  return (await scene.table.store.initialize(request, scene.clock)).task;
}

export async function apply(scene: Scene, taskId: string, statuses: readonly SubtaskStatus[]) {
  return applyToTask(
    scene.table.store,
    taskId,
    statuses.map((subtaskStatus) => ({ subtaskId: subtaskStatus.task_id, status: subtaskStatus })),
    { now: scene.now },
  );
}

export async function task(scene: Scene, taskId: string): Promise<TaskRecord> {
  const found = await scene.table.store.getTask(taskId);
  if (found === undefined) throw new Error(`no task ${taskId}`);
  return found;
}

export async function subtasks(scene: Scene, taskId: string): Promise<SubtaskRecord[]> {
  const read = await task(scene, taskId);
  const shards = await Promise.all(
    Array.from({ length: read.write_shards }, (_, shard) => scene.table.store.readShard(read, shard)),
  );
  return shards.flat();
}
