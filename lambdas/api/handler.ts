/** Lambda entry point of the API. Everything here runs once per cold start. */

import { Logger } from '@aws-lambda-powertools/logger';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { documentClient } from '../aws-clients';
import { readTableConfig } from '../config';
import { METRICS, serviceName } from '../service-settings';
import { TaskStore } from '../store/task-store';
import { createApiHandler } from './task-api';

const config = readTableConfig(process.env);
const tracer = new Tracer({ serviceName: METRICS.services.api });

export const handler = createApiHandler({
  store: new TaskStore(documentClient(undefined, tracer), config.tableName),
  logger: new Logger({ serviceName: serviceName('api') }),
});
