/**
 * Stands in for SQS and Lambda's event source mapping: `appliers` concurrent invocations each take the next
 * `batchSize` deliveries off one queue; what a batch hands back goes to the end of the queue, as SQS delivers it
 * again once its visibility timeout expires.
 *
 * A run has a time budget. Past it, no delivery is started for the first time (an invocation hands the rest of
 * its batch back untouched, as a Lambda near its timeout would), but those already started are seen through,
 * redeliveries included, so the table ends in a state the ground truth of exactly those deliveries describes: a
 * budgeted run is checked for exactness like a complete one, on a prefix of the same workload.
 */

import { performance } from 'node:perf_hooks';
import { sleep } from '../lambdas/core/backoff';
import type { Delivery } from '../test/support/workload';
import type { BatchOutcome, MayStart } from './types';

export interface DriveOptions {
  readonly appliers: number;
  readonly batchSize: number;
  /** Stop taking new deliveries after this long (ms). */
  readonly budgetMs: number;
  /** Give up altogether past this long (ms): the run is stuck. */
  readonly timeoutMs: number;
  /** Give up when one delivery has come back this many times: the run is not converging. */
  readonly maxDeliveries: number;
}

export interface DriveResult {
  readonly elapsedMs: number;
  /** Wall-clock time of each batch, from taking it to its outcome. */
  readonly batchLatenciesMs: readonly number[];
  readonly applied: number;
  readonly duplicate: number;
  readonly stale: number;
  readonly rejected: number;
  /** Deliveries handed back for redelivery. */
  readonly redelivered: number;
  /** Every delivery started at least once; all of them when the run finished within its budget. */
  readonly taken: readonly Delivery[];
}

/** The run did not finish: stuck past its timeout, or one delivery kept coming back. */
export class RunAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunAbortedError';
  }
}

export async function drive(
  deliveries: readonly Delivery[],
  options: DriveOptions,
  processBatch: (batch: readonly Delivery[], mayStart: MayStart) => Promise<BatchOutcome>,
): Promise<DriveResult> {
  let queue = [...deliveries];
  /** How many times each delivery taken so far was delivered. */
  const deliveryCounts = new Map<number, number>();
  const taken = new Map<number, Delivery>();
  const latencies: number[] = [];
  const totals = { applied: 0, duplicate: 0, stale: 0, rejected: 0, redelivered: 0 };
  const started = performance.now();
  let inFlight = 0;
  let budgetSpent = false;
  let aborted: string | undefined;
  // An error in one invocation stops the others before it is rethrown, so no batch outlives the run.
  let failure: { readonly error: unknown } | undefined;

  const spent = (): boolean => {
    if (!budgetSpent && performance.now() - started > options.budgetMs) {
      budgetSpent = true;
      queue = queue.filter((delivery) => taken.has(delivery.id));
    }
    return budgetSpent;
  };

  const mayStart: MayStart = (delivery) => !spent() || (deliveryCounts.get(delivery.id) ?? 0) > 1;

  const take = (): Delivery[] => {
    spent();
    const elapsed = performance.now() - started;
    if (elapsed > options.timeoutMs) aborted = `still running after ${Math.round(elapsed / 1_000)} s`;
    const batch = queue.splice(0, options.batchSize);
    for (const delivery of batch) {
      const count = deliveryCounts.get(delivery.id) ?? 0;
      if (count === 0) taken.set(delivery.id, delivery);
      if (count >= options.maxDeliveries) aborted = `delivery ${delivery.id} came back ${count} times`;
      deliveryCounts.set(delivery.id, count + 1);
    }
    return batch;
  };

  /** A delivery handed back unstarted: as if it had never been delivered this time. */
  const untake = (delivery: Delivery) => {
    const count = (deliveryCounts.get(delivery.id) ?? 1) - 1;
    if (count > 0) {
      deliveryCounts.set(delivery.id, count);
      queue.push(delivery);
    } else {
      deliveryCounts.delete(delivery.id);
      taken.delete(delivery.id);
    }
  };

  const invocation = async () => {
    while (aborted === undefined) {
      const batch = take();
      if (batch.length === 0) {
        // A batch still running may hand deliveries back.
        if (inFlight === 0) return;
        await sleep(1);
        continue;
      }
      inFlight++;
      const batchStarted = performance.now();
      try {
        const outcome = await processBatch(batch, mayStart);
        latencies.push(performance.now() - batchStarted);
        totals.applied += outcome.applied;
        totals.duplicate += outcome.duplicate;
        totals.stale += outcome.stale;
        totals.rejected += outcome.rejected;
        totals.redelivered += outcome.again.length;
        queue.push(...outcome.again);
        outcome.untouched.forEach(untake);
      } catch (error) {
        failure ??= { error };
        aborted ??= 'a batch failed';
      } finally {
        inFlight--;
      }
    }
  };

  await Promise.all(Array.from({ length: options.appliers }, invocation));
  if (failure !== undefined) throw failure.error;
  if (aborted !== undefined) throw new RunAbortedError(aborted);
  return {
    elapsedMs: performance.now() - started,
    batchLatenciesMs: latencies,
    taken: [...taken.values()],
    ...totals,
  };
}
