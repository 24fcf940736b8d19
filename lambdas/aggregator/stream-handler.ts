/**
 * The Lambda edge of the aggregator: a DynamoDB stream batch in, a partial batch response out (the first record
 * to resume from). Invoked directly with `{"reconcile": "<task_id>"}`, it recounts every shard of that task.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { z } from 'zod';
import { idSchema } from '../core/identifiers';
import { METRICS } from '../service-settings';
import { type FoldBatchDependencies, foldBatch } from './fold-batch';
import { reconcileTask } from './fold-shard';

export interface AggregatorHandlerDependencies extends Omit<FoldBatchDependencies, 'log'> {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

const reconcileSchema = z.strictObject({ reconcile: idSchema });

export type AggregatorEvent = DynamoDBStreamEvent | z.input<typeof reconcileSchema>;

export interface ReconcileResponse {
  readonly task_id: string;
  readonly folded: boolean;
}

export function createAggregatorHandler(deps: AggregatorHandlerDependencies) {
  const { logger, metrics } = deps;
  return async (
    event: AggregatorEvent,
    context: Context,
  ): Promise<DynamoDBBatchResponse | ReconcileResponse> => {
    logger.addContext(context);
    if (!('Records' in event)) {
      const { reconcile } = reconcileSchema.parse(event);
      const outcome = await reconcileTask(deps.store, reconcile, deps.now);
      logger.info('Task reconciled', { taskId: reconcile, outcome });
      return { task_id: reconcile, folded: outcome.kind === 'folded' };
    }
    const { resumeFrom, summary } = await foldBatch(event.Records, { ...deps, log: logger });
    metrics.addMetric('ShardsFolded', MetricUnit.Count, summary.shardsFolded);
    metrics.addMetric('FoldsNothingToDo', MetricUnit.Count, summary.nothingToDo);
    metrics.addMetric(METRICS.names.foldsSkipped, MetricUnit.Count, summary.skipped);
    metrics.addMetric('FoldsRetried', MetricUnit.Count, summary.retried);
    metrics.addMetric('EventsPublished', MetricUnit.Count, summary.eventsPublished);
    metrics.addMetric('EventsDeferred', MetricUnit.Count, summary.eventsDeferred);
    metrics.publishStoredMetrics();
    logger.info('Stream batch folded', { ...summary, ...(resumeFrom === undefined ? {} : { resumeFrom }) });
    return { batchItemFailures: resumeFrom === undefined ? [] : [{ itemIdentifier: resumeFrom }] };
  };
}
