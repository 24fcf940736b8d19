/** Lambda entry point of the status applier. Everything here runs once per cold start. */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { documentClient, sqsClient } from '../aws-clients';
import { readApplierConfig } from '../config';
import { DeadLetterQueue } from '../queue/dead-letter-queue';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { createApplierHandler } from './sqs-batch-handler';

const config = readApplierConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.applier });

export const handler = createApplierHandler({
  store: new TaskStore(documentClient(undefined, tracer), config.tableName),
  deadLetters: new DeadLetterQueue(sqsClient(tracer), config.deadLetterQueueUrl),
  receiveLimit: config.receiveLimit,
  logger: new Logger({ serviceName: serviceName('applier') }),
  metrics: new Metrics({ namespace: METRICS.namespace, serviceName: METRICS.services.applier }),
});
