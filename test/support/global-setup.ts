/**
 * The emulators for the whole run: one DynamoDB Local per test worker and one SQS emulator; each test file makes
 * its own table and queues. A DynamoDB Local per worker, because the emulator serializes transactions across all of
 * its tables: one file's initialize transactions made another file's writes wait up to the emulator's lock
 * timeout (`InternalServerError … waiting for a lock`, which DynamoDB itself never answers).
 */

import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal, startSqsEmulator } from '../../local/emulators';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const workers = Math.max(1, project.config.maxWorkers ?? 1);
  const [sqs, ...dynamos] = await Promise.all([
    startSqsEmulator(),
    ...Array.from({ length: workers }, () => startDynamoDbLocal()),
  ]);
  project.provide(
    'dynamoEndpoints',
    dynamos.map((dynamo) => dynamo.endpoint),
  );
  project.provide('sqsEndpoint', sqs.endpoint);
  return async () => {
    await Promise.all([sqs.stop(), ...dynamos.map((dynamo) => dynamo.stop())]);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** One per test worker: `dynamoEndpoint()` in `aws.ts` picks this worker's. */
    dynamoEndpoints: string[];
    sqsEndpoint: string;
  }
}
