/**
 * The applier Lambda in a process of its own, built as `lambdas/applier/handler.ts` builds it, from the same
 * environment variables, with one difference: its store can stop dead at a planned point of a batch. There it
 * prints the point and waits for the test to SIGKILL it, so the process dies exactly where a crash would leave it.
 */

import { createInterface } from 'node:readline';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createApplierHandler } from '../../lambdas/applier/sqs-batch-handler';
import { documentClient, sqsClient } from '../../lambdas/aws-clients';
import { readApplierConfig } from '../../lambdas/config';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { TaskStore } from '../../lambdas/store/task-store';
import { lambdaContext } from '../support/factories';
import {
  type ApplierInput,
  type ApplierKillPoint,
  freeze,
  KillSwitch,
  RESPONSE_MARKER,
} from './crash-protocol';

interface HeldWrite {
  /** Sends the write; resolves with whether it was taken. */
  readonly send: () => Promise<boolean>;
}

class CrashingTaskStore extends TaskStore {
  /** Subtask writes held back per task, while `mid-batch` decides how many of them go out. */
  private readonly held = new Map<string, HeldWrite[]>();

  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    private readonly kill: KillSwitch<ApplierKillPoint>,
  ) {
    super(db, tableName);
  }

  override async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const task = await super.getTask(taskId);
    if (this.kill.due('after-task-read')) await freeze({ point: 'after-task-read', taskId });
    return task;
  }

  override async getSubtasks(task: TaskRecord, ids: readonly string[]): Promise<Map<string, SubtaskRecord>> {
    const found = await super.getSubtasks(task, ids);
    if (this.kill.due('after-subtasks-read'))
      await freeze({ point: 'after-subtasks-read', taskId: task.task_id });
    return found;
  }

  /**
   * For `mid-batch`: the applier sends a task's changed subtasks all at once, so the writes of one task are
   * gathered until the next turn of the event loop; on the planned passage only a share of them goes out and,
   * once DynamoDB has answered those, the process dies with the others never sent.
   */
  override writeSubtask(task: TaskRecord, subtask: SubtaskRecord, expectedVersion: number): Promise<boolean> {
    if (this.kill.plan?.point !== 'mid-batch') return super.writeSubtask(task, subtask, expectedVersion);
    return new Promise((resolve, reject) => {
      let group = this.held.get(task.task_id);
      if (group === undefined) {
        group = [];
        this.held.set(task.task_id, group);
        setImmediate(() => void this.release(task.task_id));
      }
      group.push({
        send: () => {
          const write = super.writeSubtask(task, subtask, expectedVersion);
          write.then(resolve, reject);
          return write;
        },
      });
    });
  }

  private async release(taskId: string): Promise<void> {
    const group = this.held.get(taskId) ?? [];
    this.held.delete(taskId);
    const plan = this.kill.plan;
    if (plan === undefined || group.length < 2 || !this.kill.due('mid-batch')) {
      for (const write of group) write.send().catch(() => undefined);
      return;
    }
    const through = Math.max(1, Math.min(group.length - 1, Math.round(plan.share * group.length)));
    const results = await Promise.allSettled(group.slice(0, through).map((write) => write.send()));
    const written = results.filter((result) => result.status === 'fulfilled' && result.value).length;
    await freeze({ point: 'mid-batch', taskId, written, of: group.length });
  }
}

/**
 * Like a warm Lambda container, one process serves invocation after invocation (one JSON line each on stdin)
 * with clients built once, until a kill point ends it.
 */
async function main(): Promise<void> {
  const config = readApplierConfig(process.env);
  const db = documentClient();
  const deadLetters = new DeadLetterQueue(sqsClient(), config.deadLetterQueueUrl);
  const logger = new Logger({ serviceName: 'crashing-applier' });
  const metrics = new Metrics({ namespace: 'Reliability' });
  for await (const line of createInterface({ input: process.stdin })) {
    const input = JSON.parse(line) as ApplierInput;
    const handler = createApplierHandler({
      store: new CrashingTaskStore(db, config.tableName, new KillSwitch(input.kill)),
      deadLetters,
      receiveLimit: config.receiveLimit,
      logger,
      metrics,
    });
    const response = await handler(input.event, lambdaContext());
    // A planned kill always happens: a batch that never reached its point dies here.
    if (input.kill !== undefined) await freeze({ point: 'before-response' });
    process.stdout.write(`${RESPONSE_MARKER}${JSON.stringify(response)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
