import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { documentClient } from '../aws-clients';
import { readTableConfig } from '../config';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { type SweepSummary, sweep } from './sweep';

/** Lambda entry point of the sweeper, invoked by a schedule. Everything at module level runs once per cold start. */

const config = readTableConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.sweeper });
const store = new TaskStore(documentClient(undefined, tracer), config.tableName);
const logger = new Logger({ serviceName: serviceName('sweeper') });
const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: METRICS.services.sweeper });

export async function handler(_event: unknown, context: Context): Promise<SweepSummary> {
  logger.addContext(context);
  const summary = await sweep({ store, log: logger, now: Date.now });
  metrics.addMetric('TasksDue', MetricUnit.Count, summary.tasksDue);
  metrics.addMetric('SubtasksEnded', MetricUnit.Count, summary.subtasksEnded);
  metrics.addMetric(METRICS.names.sweepErrors, MetricUnit.Count, summary.errors);
  metrics.publishStoredMetrics();
  logger.info('Sweep done', { ...summary });
  return summary;
}
