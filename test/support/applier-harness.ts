/**
 * Stands in for SQS and Lambda's event source: `appliers` concurrent loops take batches from one pool of
 * deliveries and put back whatever a batch reports for retry, as SQS redelivers it after the visibility timeout.
 * Seeded randomness (batch sizes) comes from `test/support/workload.ts`'s `seededRandom`.
 */

import { applyBatch, type BatchSummary, type Log, type QueueRecord } from '../../lambdas/applier/apply-batch';
import { sleep } from '../../lambdas/core/backoff';
import type { DeadLetterQueue } from '../../lambdas/queue/dead-letter-queue';
import type { ApplyToTaskOptions } from '../../lambdas/store/apply-to-task';
import type { TaskStore } from '../../lambdas/store/task-store';

export const SILENT_LOG: Log = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A log that keeps its lines, to show what was logged and how. */
export function capturingLog() {
  const lines: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, attributes: Record<string, unknown>): void => {
      lines.push({ level, message, attributes });
    };
  const log: Log = { info: at('info'), warn: at('warn'), error: at('error') };
  return { log, lines };
}

export interface HarnessOptions {
  readonly store: TaskStore;
  readonly deadLetters: DeadLetterQueue;
  readonly bodies: readonly string[];
  readonly appliers: number;
  /** The largest batch one applier takes; each batch takes a random size up to it when `random` is given. */
  readonly batchSize: number;
  readonly random?: () => number;
  readonly applyOptions?: ApplyToTaskOptions;
  /** @default SILENT_LOG */
  readonly log?: Log;
  /** The queue's receive limit: a record still failing on that delivery is dead-lettered. @default unlimited */
  readonly receiveLimit?: number;
  /** Stop after this many batches, so a livelock fails the test instead of hanging it. */
  readonly maxBatches?: number;
}

export type HarnessTotals = BatchSummary & { readonly batches: number; readonly deliveries: number };

export const ZERO_TOTALS: HarnessTotals = {
  applied: 0,
  duplicate: 0,
  stale: 0,
  deadLettered: 0,
  retried: 0,
  conflicts: 0,
  writes: 0,
  batches: 0,
  deliveries: 0,
};

export function addTotals(a: HarnessTotals, b: HarnessTotals): HarnessTotals {
  const sum = { ...a };
  for (const key of Object.keys(ZERO_TOTALS) as (keyof HarnessTotals)[]) sum[key] = a[key] + b[key];
  return sum;
}

export async function runAppliers(options: HarnessOptions): Promise<HarnessTotals> {
  const pool: QueueRecord[] = options.bodies.map((body, index) => ({
    messageId: `m${index}`,
    body,
    receiveCount: 0,
  }));
  const byId = new Map(pool.map((delivery) => [delivery.messageId, delivery]));
  const maxBatches = options.maxBatches ?? 100_000;
  let totals = ZERO_TOTALS;
  let inFlight = 0;

  const applier = async () => {
    while (totals.batches < maxBatches) {
      if (pool.length === 0) {
        // Another applier's batch may still hand deliveries back for retry.
        if (inFlight === 0) return;
        await sleep(2);
        continue;
      }
      inFlight++;
      try {
        const size = options.random
          ? 1 + Math.floor(options.random() * options.batchSize)
          : options.batchSize;
        const batch = pool
          .splice(0, size)
          .map((delivery) => ({ ...delivery, receiveCount: delivery.receiveCount + 1 }));
        for (const delivery of batch) byId.set(delivery.messageId, delivery);
        const { retry, summary } = await applyBatch(batch, {
          store: options.store,
          deadLetters: options.deadLetters,
          log: options.log ?? SILENT_LOG,
          receiveLimit: options.receiveLimit ?? Number.POSITIVE_INFINITY,
          ...(options.applyOptions ? { applyOptions: options.applyOptions } : {}),
        });
        for (const messageId of retry) {
          const delivery = byId.get(messageId);
          if (delivery !== undefined) pool.push(delivery);
        }
        totals = addTotals(totals, { ...summary, batches: 1, deliveries: batch.length });
      } finally {
        inFlight--;
      }
    }
  };
  await Promise.all(Array.from({ length: options.appliers }, applier));
  if (pool.length > 0) throw new Error(`${pool.length} deliveries still pending after ${maxBatches} batches`);
  return totals;
}
