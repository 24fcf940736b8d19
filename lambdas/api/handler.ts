import { Logger } from '@aws-lambda-powertools/logger';
import { documentClient } from '../aws-clients';
import { readApiConfig } from '../config';
import { TaskStore } from '../store/task-store';
import { CursorCodec } from './cursor';
import { createProgressApi } from './progress-api';

/** Lambda entry point of the progress API. Everything here runs once per cold start. */

const config = readApiConfig(process.env);

export const handler = createProgressApi({
  store: new TaskStore(documentClient(), config.tableName),
  cursors: new CursorCodec(config.cursorKey),
  logger: new Logger({ serviceName: 'subtask-progress-api' }),
});
