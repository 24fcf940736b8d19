/**
 * The sweeper with an injected clock, on DynamoDB Local: deadlines, subtask timeouts, cancel in bounded pages,
 * initializations that never finished, idle recounts, and that it reads only the tasks that are due. Each test
 * has a table of its own, since the due index is the table's. The fold runs from the table's real stream.
 */

import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { documentClient } from '../../lambdas/aws-clients';
import { EVENTS, SWEEPER } from '../../lambdas/service-settings';
import { TaskStore } from '../../lambdas/store/task-store';
import { dynamoClient, type TestTable, uniqueName } from '../support/aws';
import { initializeRequest, T0, terminal } from '../support/factories';
import { StoreRecorder } from '../support/store-recorder';
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

describe('subtask timeouts and deadlines', () => {
  it('ends a subtask not heard from for subtask_timeout_seconds FAILURE TIMED_OUT; the fold then ends its task', async () => {
    const scene = await newScene();
    const taskId = uniqueName('timeout');
    await initialize(scene, initializeRequest(taskId, 2, { subtaskTimeoutSeconds: 60 }));
    scene.clock = T0 + 10_000;
    await apply(scene, taskId, [terminal('sub-00000')]);
    await fold(scene);

    scene.clock = T0 + 59_000;
    const early = await runSweep(scene);
    scene.clock = T0 + 60_000;
    const onTime = await runSweep(scene);
    await fold(scene);

    expect(early).toMatchObject({ tasksDue: 0, subtasksEnded: 0 });
    expect(onTime).toMatchObject({ tasksDue: 1, subtasksEnded: 1, errors: 0 });
    const timedOut = (await subtasks(scene, taskId)).find((subtask) => subtask.subtask_id === 'sub-00001');
    expect(timedOut).toMatchObject({ reason: 'TIMED_OUT', status: { state: 'FAILURE' }, version: 1 });
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 2, succeeded: 1, failed: 1 },
    });
    expect(scene.events.of(taskId, EVENTS.subtaskTimedOut).map((event) => event.detail.subtask_id)).toEqual([
      'sub-00001',
    ]);
    expect(scene.events.of(taskId, EVENTS.taskEnded)).toHaveLength(1);
  });

  it('takes a real status that comes after the timeout as a duplicate', async () => {
    const scene = await newScene();
    const taskId = uniqueName('late');
    await initialize(scene, initializeRequest(taskId, 1, { subtaskTimeoutSeconds: 60 }));
    scene.clock = T0 + 16 * MINUTE;
    await runSweep(scene);

    const late = await apply(scene, taskId, [terminal('sub-00000')]);

    expect(late.outcomes).toEqual([{ kind: 'duplicate' }]);
    expect((await subtasks(scene, taskId))[0]).toMatchObject({ reason: 'TIMED_OUT', version: 1 });
  });

  it('ends every running subtask at the deadline, and the fold ends the task', async () => {
    const scene = await newScene();
    const taskId = uniqueName('deadline');
    const deadline = T0 + 5 * MINUTE;
    await initialize(scene, initializeRequest(taskId, 3, { deadline: new Date(deadline).toISOString() }));
    scene.clock = T0 + MINUTE;
    await apply(scene, taskId, [terminal('sub-00000')]);
    await fold(scene);

    scene.clock = deadline - 1_000;
    const early = await runSweep(scene);
    scene.clock = deadline;
    const onTime = await runSweep(scene);
    await fold(scene);

    expect(early.subtasksEnded).toBe(0);
    expect(onTime).toMatchObject({ tasksDue: 1, subtasksEnded: 2 });
    expect(
      (await subtasks(scene, taskId)).map((subtask) => [
        subtask.subtask_id,
        subtask.status.state,
        subtask.reason,
      ]),
    ).toEqual([
      ['sub-00000', 'SUCCESS', undefined],
      ['sub-00001', 'FAILURE', 'TIMED_OUT'],
      ['sub-00002', 'FAILURE', 'TIMED_OUT'],
    ]);
    // No tolerance given: not every subtask failed, nor every item, so the ending rule says SUCCESS.
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 3, succeeded: 1, failed: 2 },
    });
  });
});

describe('cancel', () => {
  /** A run's budget well below a task's size, so that the cancel takes two runs over two write shards. */
  const PER_RUN = 100;

  it('revokes every running subtask in bounded runs, shard after shard; the fold then ends it CANCELED', async () => {
    const scene = await newScene();
    const taskId = uniqueName('cancel');
    const total = PER_RUN + 50;
    const read = (
      await scene.table.store.initialize(initializeRequest(taskId, total), scene.clock, { writeShards: 2 })
    ).task;
    scene.clock = T0 + MINUTE;
    await apply(scene, taskId, [terminal('sub-00000')]);
    await scene.table.store.requestCancel(read, scene.clock);
    const bounded = () => runSweep(scene, scene.table.store, PER_RUN);

    const first = await bounded();
    await fold(scene);
    const between = await task(scene, taskId);
    const second = await bounded();
    await fold(scene);

    expect(first).toMatchObject({ tasksDue: 1, subtasksEnded: PER_RUN });
    expect(between.task_state).toBe('PROGRESS');
    expect(second).toMatchObject({ tasksDue: 1, subtasksEnded: total - 1 - PER_RUN });
    const revoked = (await subtasks(scene, taskId)).filter((subtask) => subtask.status.state === 'REVOKED');
    expect(revoked).toHaveLength(total - 1);
    expect(revoked.every((subtask) => subtask.reason === 'CANCELED')).toBe(true);
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'CANCELED',
      write_shards: 2,
      subtasks: { total, succeeded: 1, failed: total - 1 },
    });
  });
});

describe('initializations and idle tasks', () => {
  it('ends a task still not ready 15 minutes after its creation FAILURE, INITIALIZE_INCOMPLETE', async () => {
    const scene = await newScene();
    const taskId = uniqueName('incomplete');
    await scene.table.store.initialize(initializeRequest(taskId, 2), T0, { mayContinue: () => false });

    scene.clock = T0 + SWEEPER.initializeGraceMinutes * MINUTE - 1_000;
    const early = await runSweep(scene);
    scene.clock = T0 + SWEEPER.initializeGraceMinutes * MINUTE;
    const onTime = await runSweep(scene);
    await fold(scene);

    expect(early.tasksEndedIncomplete).toBe(0);
    expect(onTime).toMatchObject({ tasksDue: 1, tasksEndedIncomplete: 1 });
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'FAILURE',
      end_reason: 'INITIALIZE_INCOMPLETE',
      ready: false,
    });
    expect(scene.events.of(taskId, EVENTS.taskEnded).map((event) => event.detail.end_reason)).toEqual([
      'INITIALIZE_INCOMPLETE',
    ]);
  });

  it('never ends an initialization still advancing: the grace runs from its last saved page', async () => {
    const scene = await newScene();
    const taskId = uniqueName('advancing');
    const request = initializeRequest(taskId, 30);
    const onePage = () => {
      let pages = 0;
      return { mayContinue: () => pages++ === 0, pageSize: 10 };
    };
    const lastPage = T0 + 10 * MINUTE;
    await scene.table.store.initialize(request, T0, onePage());
    await scene.table.store.initialize(request, lastPage, onePage());

    scene.clock = T0 + SWEEPER.initializeGraceMinutes * MINUTE;
    const graceAfterStart = await runSweep(scene);
    scene.clock = lastPage + SWEEPER.initializeGraceMinutes * MINUTE;
    const graceAfterLastPage = await runSweep(scene);

    expect(graceAfterStart.tasksEndedIncomplete).toBe(0);
    expect(graceAfterLastPage).toMatchObject({ tasksDue: 1, tasksEndedIncomplete: 1 });
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'FAILURE',
      end_reason: 'INITIALIZE_INCOMPLETE',
    });
  });

  it('recounts an idle task whose stream records were lost, and the recount ends it', async () => {
    const scene = await newScene();
    const taskId = uniqueName('idle');
    await initialize(scene, initializeRequest(taskId, 3));
    scene.clock = T0 + MINUTE;
    await apply(
      scene,
      taskId,
      ['sub-00000', 'sub-00001', 'sub-00002'].map((id) => terminal(id)),
    );
    await scene.tap.next(); // never folded: the records are lost

    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE;
    const summary = await runSweep(scene);

    expect(summary).toMatchObject({ tasksDue: 1, tasksReconciled: 1 });
    expect(await task(scene, taskId)).toMatchObject({
      task_state: 'SUCCESS',
      subtasks: { total: 3, succeeded: 3, failed: 0 },
      task_output: { attempted: 300, succeeded: 300 },
    });
  });

  it('reads only the tasks that are due: an ended task and a task due later are never read', async () => {
    const scene = await newScene();
    const [ended, due, later] = [uniqueName('ended'), uniqueName('due'), uniqueName('later')];
    await initialize(scene, initializeRequest(ended, 1));
    await initialize(scene, initializeRequest(due, 1));
    await apply(scene, ended, [terminal('sub-00000')]);
    await reconcileTask(scene.table.store, ended, scene.now);
    // Its `Task Ended` went out, as the aggregator does from the ending's stream record.
    await scene.table.store.pendingEvents.clearTaskEnded(await task(scene, ended));
    scene.clock = T0 + 10 * MINUTE;
    await initialize(scene, initializeRequest(later, 1));
    const read: string[] = [];
    class ReadingStore extends TaskStore {
      override async getTask(taskId: string) {
        read.push(taskId);
        return super.getTask(taskId);
      }
    }

    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE;
    const summary = await runSweep(
      scene,
      new ReadingStore(documentClient(scene.table.client), scene.table.tableName),
    );

    expect((await task(scene, ended)).task_state).toBe('SUCCESS');
    expect(summary.tasksDue).toBe(1);
    expect(new Set(read)).toEqual(new Set([due]));
  });
});

/** Counts the DynamoDB calls a document client makes, by command. */
function countingClient(table: TestTable) {
  const calls = new Map<string, number>();
  const client: DynamoDBDocumentClient = documentClient(dynamoClient());
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { store: (recorder: StoreRecorder) => new TaskStore(client, table.tableName, recorder), calls };
}

describe('what a sweep costs', () => {
  /** `dueTasks` tasks due for an idle recount, each of `size` subtasks with every status applied and none folded. */
  async function sweepCost(dueTasks: number, notDue: number, size: number) {
    const scene = await newScene();
    const ids = Array.from({ length: size }, (_, n) => `sub-${String(n).padStart(5, '0')}`);
    await Promise.all(
      Array.from({ length: dueTasks }, async () => {
        const taskId = uniqueName('cost');
        await initialize(scene, initializeRequest(taskId, size));
        await apply(
          scene,
          taskId,
          ids.map((id) => terminal(id)),
        );
      }),
    );
    scene.clock = T0 + 5 * MINUTE;
    await Promise.all(
      Array.from({ length: notDue }, () => initialize(scene, initializeRequest(uniqueName('not-due'), 1))),
    );
    const recorder = new StoreRecorder();
    const counting = countingClient(scene.table);
    scene.clock = T0 + SWEEPER.idleRecountMinutes * MINUTE;

    const summary = await runSweep(scene, counting.store(recorder));

    const perTask = (value: number) => Math.round((value / dueTasks) * 100) / 100;
    const readUnits = (kind: string) =>
      recorder.reads.filter((read) => read.kind === kind).reduce((sum, read) => sum + read.capacityUnits, 0);
    return {
      summary,
      calls: Object.fromEntries([...counting.calls].sort().map(([name, count]) => [name, count])),
      perDueTask: {
        calls: perTask([...counting.calls.values()].reduce((sum, count) => sum + count, 0)),
        readUnits: perTask(recorder.reads.reduce((sum, read) => sum + read.capacityUnits, 0)),
        taskReadUnits: perTask(readUnits('task')),
        subtaskReadUnits: perTask(readUnits('subtask')),
        counterReadUnits: perTask(readUnits('counter')),
        writesSeenByObserver: perTask(recorder.writes.length),
        writeCalls: perTask((counting.calls.get('PutItem') ?? 0) + (counting.calls.get('UpdateItem') ?? 0)),
      },
    };
  }

  it('is bounded per due task and does not grow with the tasks that are not due (no scan)', async () => {
    const alone = await sweepCost(4, 0, 40);
    // One page of a shard's items either way: the calls do not depend on the size.
    const crowded = await sweepCost(4, 20, 10);
    console.info('sweep of 4 idle tasks of 40 subtasks:', JSON.stringify(alone));
    console.info('the same beside 20 tasks not due:', JSON.stringify(crowded.calls));

    expect(alone.summary).toMatchObject({ tasksDue: 4, tasksReconciled: 4, errors: 0 });
    expect(crowded.summary).toMatchObject({ tasksDue: 4, tasksReconciled: 4, errors: 0 });
    expect(crowded.calls).toEqual(alone.calls);
    // Per due task: read it, recount its one shard, read the counters and write counter and task; the index once.
    expect(alone.perDueTask.calls).toBeLessThanOrEqual(10);
  });
});
