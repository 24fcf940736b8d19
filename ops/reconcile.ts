/**
 * `npm run reconcile -- <task_id>`: operators recount every write shard of one task from its subtask items and
 * refresh its totals, straight on the table (`SUBTASK_PROGRESS_TABLE`; needs read and write rights on it). It
 * repairs what a lost stream record left behind and is harmless on a task that is right. Deployed, the same is
 * an invoke of the aggregator with `{"reconcile": "<task_id>"}` (`docs/operations.md`).
 */

import { progressSummary } from '../client/cli/format';
import { progressSchema } from '../client/progress-api';
import { setting } from '../client/settings';
import { reconcileTask } from '../lambdas/aggregator/fold-shard';
import { documentClient } from '../lambdas/aws-clients';
import { idSchema } from '../lambdas/core/identifiers';
import { progressReport } from '../lambdas/core/progress-report';
import { TaskStore } from '../lambdas/store/task-store';

export interface ReconcileIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const USAGE = 'Usage: npm run reconcile -- <task_id>';

/** Runs the command; resolves to its exit code (0 done, 1 failed, 2 bad arguments). */
export async function runReconcile(args: readonly string[], io: ReconcileIo): Promise<number> {
  const taskId = idSchema.safeParse(args[0]);
  if (args.length !== 1 || !taskId.success) {
    io.err(USAGE);
    return 2;
  }
  const client = documentClient();
  try {
    const store = new TaskStore(client, setting('tableName', undefined, io.env));
    const outcome = await reconcileTask(store, taskId.data, Date.now);
    const task = await store.getTask(taskId.data);
    if (task === undefined) {
      io.err(`Task '${taskId.data}' does not exist in table ${store.tableName}`);
      return 1;
    }
    const shards = `${task.write_shards} write shard${task.write_shards === 1 ? '' : 's'}`;
    io.out(
      outcome.kind === 'folded'
        ? `Recounted ${shards} of task ${task.task_id}` +
            `${outcome.counterWritten || outcome.taskWritten ? ', and repaired its totals' : '; its totals were right'}.`
        : `Nothing to recount: task ${task.task_id} is ${task.ready ? task.task_state : 'still being initialized'}.`,
    );
    // Shown as the CLI's `status` shows it: the API's answer is this same report.
    io.out(progressSummary(progressSchema.parse(progressReport(task))));
    return 0;
  } catch (error) {
    io.err(error instanceof Error ? error.message : String(error));
    return 1;
  } finally {
    client.destroy();
  }
}
