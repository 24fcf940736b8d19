/** What each command does. Loaded only once the command line is valid: it pulls in the AWS SDK. */

import { numberedSubtaskIds } from '../../lambdas/core/subtask-ids';
import { retryCount } from '../../lambdas/core/subtask-status';
import { sendSubtaskStatus } from '../producer';
import { getProgress, listSubtasks, type SubtaskListing } from '../progress-api';
import { cancelTask, type InitializeTaskRequest, initializeTask } from '../task-api';
import { listTasks } from '../task-list-api';
import type { Command } from './arguments';
import { EXIT } from './exit-codes';
import { finalLine, progressSummary, subtaskLine, taskLine } from './format';
import { serveDashboard } from './serve-dashboard';
import { watchTask } from './watch';

type RunnableCommand = Exclude<Command, { kind: 'help' }>;

/** `a … z` of the ids a request names, or of the numbered ones it asks for. */
function idRange(request: InitializeTaskRequest): string {
  const ids = request.subtaskIds ?? numberedSubtaskIds(request.subtaskCount ?? 0, request.prefix);
  return ids.length === 1 ? `${ids[0]}` : `${ids[0]} … ${ids.at(-1)}`;
}

/** Pages `--all` follows at most: a task of a million subtasks is 10,000 pages of 100; stop far short of that. */
const MAX_PAGES = 1_000;

async function listing(command: Extract<RunnableCommand, { kind: 'subtasks' }>): Promise<number> {
  const subtasks: SubtaskListing[] = [];
  let cursor = command.query.cursor;
  let pages = 0;
  do {
    const page = await listSubtasks(command.taskId, {
      ...command.query,
      ...(cursor === undefined ? {} : { cursor }),
    });
    pages += 1;
    if (command.json && !command.all) {
      console.log(JSON.stringify(page, null, 2));
      return EXIT.ok;
    }
    if (command.json) subtasks.push(...page.subtasks);
    else for (const subtask of page.subtasks) console.log(subtaskLine(subtask));
    cursor = page.next_cursor ?? undefined;
  } while (command.all && cursor !== undefined && pages < MAX_PAGES);
  if (command.json) console.log(JSON.stringify({ task_id: command.taskId, subtasks }, null, 2));
  else if (cursor !== undefined) {
    // On stderr, so that the listing itself pipes cleanly.
    console.error(
      command.all
        ? `Stopped after ${pages} pages; carry on with --cursor ${cursor}`
        : `More: --cursor ${cursor} (or --all)`,
    );
  }
  return EXIT.ok;
}

export async function execute(command: RunnableCommand): Promise<number> {
  switch (command.kind) {
    case 'init': {
      const { request } = command;
      const { created, progress, requests } = await initializeTask(request);
      const pages = requests > 1 ? ` in ${requests} requests` : '';
      console.log(
        created
          ? `Task ${progress.task_id} initialized${pages}: ${progress.subtasks.total} subtasks ` +
              `(${idRange(request)}), ` +
              `${progress.task_progress.total} items to be ${progress.task_progress.action_name}.`
          : `Task ${progress.task_id} was already initialized with this request; nothing changed ` +
              `(state ${progress.task_state}, version ${progress.version}).`,
      );
      return EXIT.ok;
    }

    case 'send': {
      const { status } = command;
      const result = await sendSubtaskStatus(command.taskId, status);
      const failure = result.failed[0];
      if (failure !== undefined) {
        console.error(`The status was not queued: ${failure.reason}`);
        return EXIT.failed;
      }
      console.log(
        `Queued ${status.state} for subtask ${status.task_id} of task ${command.taskId}: ` +
          `${status.attempted} attempted (${status.succeeded} succeeded, ${status.failed} failed), ` +
          `${status.skipped} skipped, ${retryCount(status)} retries.`,
      );
      return EXIT.ok;
    }

    case 'status': {
      const result = await getProgress(command.taskId);
      if (result.status !== 200) throw new Error('The progress API answered 304 to an unconditional request');
      console.log(command.json ? JSON.stringify(result.progress, null, 2) : progressSummary(result.progress));
      return EXIT.ok;
    }

    case 'list': {
      const result = await listTasks(command.query);
      if (result.status !== 200) throw new Error('The progress API answered 304 to an unconditional request');
      if (command.json) {
        console.log(JSON.stringify(result.page, null, 2));
        return EXIT.ok;
      }
      for (const task of result.page.tasks) console.log(taskLine(task));
      // On stderr, so that the listing itself pipes cleanly.
      if (result.page.next_cursor !== null) console.error(`More: --cursor ${result.page.next_cursor}`);
      return EXIT.ok;
    }

    case 'dashboard':
      return serveDashboard(command);

    case 'subtasks':
      return listing(command);

    case 'watch': {
      const progress = await watchTask(command.taskId, { intervalMs: command.intervalMs });
      if (progress === undefined) return EXIT.interrupted;
      console.log(finalLine(progress));
      return EXIT.ok;
    }

    case 'cancel': {
      const progress = await cancelTask(command.taskId);
      console.log(
        `Cancel requested for task ${progress.task_id}: its ${progress.subtasks.remaining} subtasks not yet ` +
          'ended will be REVOKED (reason CANCELED) and the task will end CANCELED.',
      );
      return EXIT.ok;
    }
  }
}
