/** Lambda entry point of the sweeper, invoked by a schedule. Everything at module level runs once per cold start. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { documentClient, eventBridgeClient } from '../aws-clients';
import { readSweeperConfig } from '../config';
import { EventBridgePublisher } from '../events/event-publisher';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { type SweepSummary, sweep } from './sweep';

const config = readSweeperConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.sweeper });
const store = new TaskStore(documentClient(undefined, tracer), config.tableName);
const events = new EventBridgePublisher(eventBridgeClient(tracer), config.eventBusName);
const logger = new Logger({ serviceName: serviceName('sweeper') });
const metrics = new Metrics({ namespace: METRICS.namespace, serviceName: METRICS.services.sweeper });

export async function handler(_event: unknown, context: Context): Promise<SweepSummary> {
  logger.addContext(context);
  const summary = await sweep({
    store,
    events,
    log: logger,
    now: Date.now,
    remainingTimeMs: () => context.getRemainingTimeInMillis(),
    ...(config.subtasksPerRun === undefined ? {} : { subtasksPerRun: config.subtasksPerRun }),
  });
  metrics.addMetric('TasksDue', MetricUnit.Count, summary.tasksDue);
  metrics.addMetric('TasksDeferred', MetricUnit.Count, summary.tasksDeferred);
  metrics.addMetric('SubtasksEnded', MetricUnit.Count, summary.subtasksEnded);
  metrics.addMetric('EventsRepublished', MetricUnit.Count, summary.eventsPublished);
  metrics.addMetric(METRICS.names.eventsUndeliverable, MetricUnit.Count, summary.eventsUndeliverable);
  metrics.addMetric(METRICS.names.unfoldedShards, MetricUnit.Count, summary.unfoldedShards);
  metrics.addMetric(METRICS.names.sweepErrors, MetricUnit.Count, summary.errors);
  metrics.publishStoredMetrics();
  logger.info('Sweep done', { ...summary });
  return summary;
}
