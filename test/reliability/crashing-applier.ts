import { createInterface } from 'node:readline';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createSqsBatchHandler } from '../../lambdas/applier/sqs-batch-handler';
import { documentClient, sqsClient } from '../../lambdas/aws-clients';
import { readApplierConfig } from '../../lambdas/config';
import type { SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import { sleep } from '../../lambdas/store/backoff';
import { TaskStore, type TransactionWrite } from '../../lambdas/store/task-store';
import { lambdaContext } from '../support/factories';
import {
  type CrashInput,
  KILL_MARKER,
  type KillPlan,
  type KillPoint,
  type KillReport,
  RESPONSE_MARKER,
} from './crash-protocol';

/**
 * The applier Lambda in a process of its own, built as `lambdas/applier/handler.ts` builds it, from the same
 * environment variables, with one difference: its store can stop dead at a planned point of a batch. There it
 * prints the point and waits for the test to SIGKILL it, so the process dies exactly where a crash would leave it.
 */

function freeze(report: KillReport): Promise<never> {
  process.stdout.write(`${KILL_MARKER}${JSON.stringify(report)}\n`);
  // Keep the event loop alive: the process must end by the parent's SIGKILL, as a crash ends it, not by itself.
  setInterval(() => undefined, 60_000);
  return new Promise<never>(() => undefined);
}

class CrashingTaskStore extends TaskStore {
  private passages = 0;

  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    private readonly plan: KillPlan | undefined,
  ) {
    super(db, tableName);
  }

  /** True on the planned passage of `point`. */
  private due(point: KillPoint): boolean {
    if (this.plan?.point !== point) return false;
    this.passages += 1;
    return this.passages === this.plan.occurrence;
  }

  override async getTask(taskId: string): Promise<TaskRecord | undefined> {
    if (this.due('before-task-read')) await freeze({ point: 'before-task-read', taskId });
    return super.getTask(taskId);
  }

  override async commit(
    read: TaskRecord,
    next: TaskRecord,
    changed: readonly SubtaskRecord[],
    readSubtasks: ReadonlyMap<string, SubtaskRecord>,
  ): Promise<TransactionWrite> {
    const at = { taskId: read.task_id, version: next.version };
    if (this.due('before-commit')) await freeze({ point: 'before-commit', ...at });
    if (this.due('during-commit')) {
      // Send the transaction and die while it is under way; whether DynamoDB committed it is left to the race.
      super.commit(read, next, changed, readSubtasks).catch(() => undefined);
      const delayMs = this.plan?.delayMs ?? 0;
      // Without a delay the marker goes out before the request has even left the process.
      if (delayMs > 0) await sleep(delayMs);
      await freeze({ point: 'during-commit', ...at });
    }
    const write = await super.commit(read, next, changed, readSubtasks);
    if (write.committed && this.due('after-commit')) await freeze({ point: 'after-commit', ...at });
    return write;
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
    const input = JSON.parse(line) as CrashInput;
    const handler = createSqsBatchHandler({
      store: new CrashingTaskStore(db, config.tableName, input.kill),
      deadLetters,
      receiveLimit: config.receiveLimit,
      logger,
      metrics,
    });
    const response = await handler(input.event, lambdaContext());
    // A planned kill always happens: a batch that never reached its point (nothing to commit) dies here.
    if (input.kill !== undefined) await freeze({ point: 'before-response' });
    process.stdout.write(`${RESPONSE_MARKER}${JSON.stringify(response)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
