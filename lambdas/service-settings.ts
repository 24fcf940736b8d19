/**
 * Settings that the CDK stack and the local stack (`npm start`) must agree on. Both read them from here, so the
 * emulated service behaves like the deployed one.
 */

export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB's TTL removes a task's items some time after this. */
  timeToLiveAttribute: 'expires_at',
} as const;

export const APPLIER = {
  /** Records per invocation: the larger, the more statuses of one task share one conditional write. */
  batchSize: 100,
  /** How long the event source gathers records before invoking (required for batches over 10). */
  maxBatchingWindowSeconds: 1,
  timeoutSeconds: 30,
  memoryMiB: 512,
  /** Concurrent invocations from the queue; more only adds version conflicts on a hot task. */
  maxConcurrency: 4,
} as const;

export const STATUS_QUEUE = {
  /** AWS asks for at least 6× the function timeout, so a batch is not redelivered while still running. */
  visibilityTimeoutSeconds: 6 * APPLIER.timeoutSeconds,
  /** Deliveries before SQS gives up on a message; the applier dead-letters it itself on the last one. */
  receiveLimit: 5,
  retentionDays: 4,
  deadLetterRetentionDays: 14,
} as const;

/** Environment variables the handlers read; set by the stack and by the local stack alike. */
export const ENVIRONMENT = {
  tableName: 'TABLE_NAME',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  receiveLimit: 'RECEIVE_LIMIT',
  /** The progress API's key for signing listing cursors (at least 32 characters). */
  cursorKey: 'CURSOR_KEY',
} as const;
