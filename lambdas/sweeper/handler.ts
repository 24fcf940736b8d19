/** Lambda entry point of the sweeper, invoked by a schedule. Everything here runs once per cold start. */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { documentClient, eventBridgeClient } from '../aws-clients';
import { readSweeperConfig } from '../config';
import { EventBridgePublisher } from '../events/event-publisher';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { createSweeperHandler } from './schedule-handler';

const config = readSweeperConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.sweeper });

export const handler = createSweeperHandler({
  store: new TaskStore(documentClient(undefined, tracer), config.tableName),
  events: new EventBridgePublisher(eventBridgeClient(tracer), config.eventBusName),
  logger: new Logger({ serviceName: serviceName('sweeper') }),
  metrics: new Metrics({ namespace: METRICS.namespace, serviceName: METRICS.services.sweeper }),
  now: Date.now,
  ...(config.subtasksPerRun === undefined ? {} : { subtasksPerRun: config.subtasksPerRun }),
});
