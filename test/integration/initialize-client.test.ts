/**
 * The client's `initializeTask` against the API handler on DynamoDB Local: its fetch is served by the handler
 * itself, so every answer is the API's own.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { beforeAll, describe, expect, it } from 'vitest';
import { SubtaskProgressClientError } from '../../client/errors';
import { initializeTask, TaskEndedError } from '../../client/task-api';
import { reconcileTask } from '../../lambdas/aggregator/fold-shard';
import { createApiHandler } from '../../lambdas/api/task-api';
import { ROUTES } from '../../lambdas/core/routes';
import { sweep } from '../../lambdas/sweeper/sweep';
import { SILENT_LOG } from '../support/applier-harness';
import { newTaskTable, type TestTable, uniqueName } from '../support/aws';
import { apiEvent, initializeRequest, lambdaContext } from '../support/factories';
import { RecordingPublisher } from '../support/recording-publisher';

let table: TestTable;
let fetchFromApi: typeof fetch;

beforeAll(async () => {
  table = await newTaskTable();
  const api = createApiHandler({ store: table.store, logger: new Logger({ serviceName: 'test' }) });
  fetchFromApi = async (input, init) => {
    const taskId = decodeURIComponent(new URL(String(input)).pathname.split('/')[2] ?? '');
    const result = await api(
      apiEvent({ routeKey: ROUTES.initialize, taskId, body: String(init?.body) }),
      lambdaContext(),
    );
    return new Response(result.body ?? null, {
      status: result.statusCode ?? 500,
      headers: result.headers as Record<string, string>,
    });
  };
});

const options = () => ({ apiUrl: 'http://127.0.0.1:1', fetch: fetchFromApi });

describe('initializeTask on a task that has already ended', () => {
  it('throws TaskEndedError naming the state and reason when the initialization was given up', async () => {
    const taskId = uniqueName('given-up');
    const request = initializeRequest(taskId, 2);
    const { task } = await table.store.initialize(request, Date.now(), { mayContinue: () => false });
    await table.store.endIncomplete(task, 'FAILURE', 'INITIALIZE_INCOMPLETE', Date.now());

    const error = await initializeTask(
      { taskId, actionName: request.actionName, total: request.total, subtaskIds: request.subtaskIds },
      options(),
    ).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(TaskEndedError);
    expect(error).toBeInstanceOf(SubtaskProgressClientError);
    expect(error).toMatchObject({
      state: 'FAILURE',
      reason: 'INITIALIZE_INCOMPLETE',
      message: expect.stringMatching(/already ended FAILURE \(INITIALIZE_INCOMPLETE\)/),
    });
  });

  it('throws TaskEndedError for a canceled task initialized again with the same request', async () => {
    const taskId = uniqueName('canceled');
    const request = initializeRequest(taskId, 1);
    const { task } = await table.store.initialize(request, Date.now());
    await table.store.requestCancel(task, Date.now());
    // The sweeper revokes the subtask; the recount then ends the task.
    await sweep({ store: table.store, events: new RecordingPublisher(), log: SILENT_LOG, now: Date.now });
    await reconcileTask(table.store, taskId, Date.now);

    const error = await initializeTask(
      { taskId, actionName: request.actionName, total: request.total, subtaskIds: request.subtaskIds },
      options(),
    ).catch((caught: unknown) => caught);

    expect(error).toMatchObject({
      state: 'CANCELED',
      message: expect.stringContaining('already ended CANCELED'),
    });
  });

  it('returns the task when it is in progress', async () => {
    const taskId = uniqueName('running');

    const task = await initializeTask(
      { taskId, actionName: 'emailed', total: 3, subtaskIds: ['a'] },
      options(),
    );

    expect(task).toMatchObject({ created: true, requests: 1, progress: { task_state: 'PROGRESS' } });
  });
});
