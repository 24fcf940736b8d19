import { retryCount } from '../../lambdas/core/subtask-status';
import { initializeTask, sendSubtaskStatus } from '../producer';
import { getProgress } from '../progress-api';
import type { Command } from './arguments';
import { EXIT } from './exit-codes';
import { finalLine, progressSummary } from './format';
import { watchTask } from './watch';

/** What each command does. Loaded only once the command line is valid: it pulls in the AWS SDK. */

type RunnableCommand = Exclude<Command, { kind: 'help' }>;

export async function execute(command: RunnableCommand): Promise<number> {
  switch (command.kind) {
    case 'init': {
      const calledAt = Date.now();
      const task = await initializeTask({
        taskId: command.taskId,
        actionName: command.actionName,
        total: command.total,
        subtaskIds: command.subtaskIds,
      });
      const first = command.subtaskIds[0];
      const last = command.subtaskIds.at(-1);
      const range = command.subtaskIds.length === 1 ? first : `${first} … ${last}`;
      // The store hands back the existing task for a repeated request: say so rather than claim a fresh start.
      const existed = Date.parse(task.created_at) < calledAt;
      console.log(
        existed
          ? `Task ${task.task_id} was already initialized with these subtasks; nothing changed ` +
              `(state ${task.task_state}, version ${task.version}).`
          : `Task ${task.task_id} initialized: ${task.subtasks.total} subtasks (${range}), ` +
              `${task.task_output.total} items to be ${task.task_output.action_name}.`,
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

    case 'watch': {
      const progress = await watchTask(command.taskId, { intervalMs: command.intervalMs });
      if (progress === undefined) return EXIT.interrupted;
      console.log(finalLine(progress));
      return EXIT.ok;
    }
  }
}
