/**
 * The Lambda edge of the applier: SQS event in, partial batch response out. Powertools' batch processor is not
 * used because it hands records to a handler one by one, and coalescing needs the whole batch at once.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { fromLambdaAttributes } from '../queue/dead-letter-queue';
import { METRICS } from '../service-settings';
import { type ApplierDependencies, applyBatch, type QueueRecord } from './apply-batch';

export interface HandlerDependencies extends Omit<ApplierDependencies, 'log'> {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** The record's own message attributes go along, so that a dead letter keeps them as SQS's redrive would. */
function toQueueRecord(record: SQSRecord): QueueRecord {
  const receiveCount = Number.parseInt(record.attributes.ApproximateReceiveCount, 10);
  const attributes = fromLambdaAttributes(record.messageAttributes ?? {});
  return {
    messageId: record.messageId,
    body: record.body,
    receiveCount: Number.isFinite(receiveCount) ? receiveCount : 1,
    ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
  };
}

export function createApplierHandler(deps: HandlerDependencies) {
  const { logger, metrics } = deps;
  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const { retry, summary } = await applyBatch(event.Records.map(toQueueRecord), {
      ...deps,
      log: logger,
      applyOptions: { ...deps.applyOptions, remainingTimeMs: () => context.getRemainingTimeInMillis() },
    });
    metrics.addMetric('StatusesApplied', MetricUnit.Count, summary.applied);
    metrics.addMetric('StatusesDuplicate', MetricUnit.Count, summary.duplicate);
    metrics.addMetric('StatusesStale', MetricUnit.Count, summary.stale);
    metrics.addMetric(METRICS.names.statusesDeadLettered, MetricUnit.Count, summary.deadLettered);
    metrics.addMetric(METRICS.names.statusesRetried, MetricUnit.Count, summary.retried);
    metrics.addMetric('SubtaskWriteConflicts', MetricUnit.Count, summary.conflicts);
    metrics.addMetric('SubtaskWrites', MetricUnit.Count, summary.writes);
    metrics.publishStoredMetrics();
    logger.info('Batch processed', { records: event.Records.length, ...summary });
    return { batchItemFailures: retry.map((itemIdentifier) => ({ itemIdentifier })) };
  };
}
