/**
 * The sweeper's Lambda edge: one scheduled invocation is one bounded sweep (`sweep.ts`), its remaining time the
 * run's budget; the summary becomes the metrics the alarms watch and one log line.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import type { EventPublisher } from '../events/event-publisher';
import { METRICS } from '../service-settings';
import type { TaskStore } from '../store/task-store';
import { type SweepSummary, sweep } from './sweep';

export interface SweeperHandlerDependencies {
  readonly store: TaskStore;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  /** Subtasks one run ends at most. @default SWEEPER.subtasksPerRun */
  readonly subtasksPerRun?: number;
}

export function createSweeperHandler(deps: SweeperHandlerDependencies) {
  const { logger, metrics } = deps;
  return async (_event: unknown, context: Context): Promise<SweepSummary> => {
    logger.addContext(context);
    const summary = await sweep({
      store: deps.store,
      events: deps.events,
      log: logger,
      now: deps.now,
      remainingTimeMs: () => context.getRemainingTimeInMillis(),
      ...(deps.subtasksPerRun === undefined ? {} : { subtasksPerRun: deps.subtasksPerRun }),
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
  };
}
