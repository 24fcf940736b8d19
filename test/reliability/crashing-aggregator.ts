/**
 * The aggregator Lambda in a process of its own, built as `lambdas/aggregator/handler.ts` builds it, from the
 * same environment variables, except that its store can stop dead at a planned point of a stream batch and its
 * events go to a file (`EVENTS_FILE`, one JSON line each) instead of EventBridge, which has no emulator here.
 */

import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createAggregatorHandler } from '../../lambdas/aggregator/stream-handler';
import { documentClient } from '../../lambdas/aws-clients';
import { readAggregatorConfig } from '../../lambdas/config';
import type { ServiceEvent } from '../../lambdas/core/events';
import type { ShardCounter, SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import type { EventPublisher } from '../../lambdas/events/event-publisher';
import { TaskStore } from '../../lambdas/store/task-store';
import { lambdaContext } from '../support/factories';
import { type FoldInput, type FoldKillPoint, freeze, KillSwitch, RESPONSE_MARKER } from './crash-protocol';

/** Appends each event before `publish` returns: what was published before a kill stays published. */
class FilePublisher implements EventPublisher {
  constructor(private readonly path: string) {}
  async publish(events: readonly ServiceEvent[]): Promise<void> {
    for (const event of events) appendFileSync(this.path, `${JSON.stringify(event)}\n`);
  }
}

class CrashingFoldStore extends TaskStore {
  constructor(
    db: DynamoDBDocumentClient,
    tableName: string,
    private readonly kill: KillSwitch<FoldKillPoint>,
  ) {
    super(db, tableName);
  }

  override async readShard(task: TaskRecord, shard: number): Promise<SubtaskRecord[]> {
    if (this.kill.due('before-recount'))
      await freeze({ point: 'before-recount', taskId: task.task_id, shard });
    return super.readShard(task, shard);
  }

  override async writeCounter(counter: ShardCounter): Promise<boolean> {
    const written = await super.writeCounter(counter);
    if (this.kill.due('between-writes')) {
      await freeze({
        point: 'between-writes',
        taskId: counter.task_id,
        shard: counter.shard,
        vsum: counter.vsum,
        counterWritten: written,
      });
    }
    return written;
  }
}

async function main(): Promise<void> {
  const config = readAggregatorConfig(process.env);
  const eventsFile = process.env.EVENTS_FILE;
  if (eventsFile === undefined) throw new Error('EVENTS_FILE is not set');
  const db = documentClient();
  const events = new FilePublisher(eventsFile);
  const logger = new Logger({ serviceName: 'crashing-aggregator' });
  const metrics = new Metrics({ namespace: 'Reliability' });
  for await (const line of createInterface({ input: process.stdin })) {
    const input = JSON.parse(line) as FoldInput;
    const handler = createAggregatorHandler({
      store: new CrashingFoldStore(db, config.tableName, new KillSwitch(input.kill)),
      events,
      now: Date.now,
      logger,
      metrics,
    });
    const response = await handler(input.event, lambdaContext());
    // A planned kill always happens: a batch that never reached its point dies here.
    if (input.kill !== undefined) await freeze({ point: 'fold-before-response' });
    process.stdout.write(`${RESPONSE_MARKER}${JSON.stringify(response)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
