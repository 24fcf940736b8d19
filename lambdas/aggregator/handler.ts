/** Lambda entry point of the aggregator (the fold). Everything here runs once per cold start. */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { documentClient, eventBridgeClient } from '../aws-clients';
import { readAggregatorConfig } from '../config';
import { EventBridgePublisher } from '../events/event-publisher';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { createAggregatorHandler } from './stream-handler';

const config = readAggregatorConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.aggregator });

export const handler = createAggregatorHandler({
  store: new TaskStore(documentClient(undefined, tracer), config.tableName),
  events: new EventBridgePublisher(eventBridgeClient(tracer), config.eventBusName),
  now: Date.now,
  logger: new Logger({ serviceName: serviceName('aggregator') }),
  metrics: new Metrics({ namespace: METRICS.namespace, serviceName: METRICS.services.aggregator }),
});
