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

/** The table's stream carries both images: the aggregator needs the keys, the ending needs the task's states. */
export const TABLE_STREAM_VIEW = 'NEW_AND_OLD_IMAGES' as const;

export const APPLIER = {
  /** Records per invocation: the larger, the more statuses of one task share one read of the task item. */
  batchSize: 100,
  /** How long the event source gathers records before invoking (required for batches over 10). */
  maxBatchingWindowSeconds: 1,
  timeoutSeconds: 30,
  memoryMiB: 512,
  /**
   * Concurrent invocations from the queue. Statuses of a hot task no longer contend for one item (each writes
   * its own subtask item), so this is sized for many tasks at once, not held low for one.
   */
  maxConcurrency: 50,
} as const;

export const AGGREGATOR = {
  /** Stream records per invocation: every record of one write shard in a batch shares one recount. */
  batchSize: 1_000,
  /** Gathering records for this long lets one recount cover many statuses of a hot shard. */
  maxBatchingWindowSeconds: 1,
  timeoutSeconds: 60,
  memoryMiB: 512,
  /** Concurrent batches per stream shard; safe at any value, since recounts are guarded by version sums. */
  parallelizationFactor: 2,
  /** Kept for the aggregator alone, so that applier bursts cannot starve the fold. */
  reservedConcurrency: 20,
  /** Stream records live 24 hours; an iterator older than this means the fold is falling behind. */
  iteratorAgeAlarmMinutes: 15,
} as const;

export const API = {
  /** Just under the 30 s an HTTP API integration waits for the function. */
  timeoutSeconds: 29,
  memoryMiB: 256,
  /** Kept for the API, and its ceiling: a burst of reads cannot take what the applier and the aggregator need. */
  reservedConcurrency: 10,
} as const;

export const STATUS_QUEUE = {
  /** AWS asks for at least 6× the function timeout, so a batch is not redelivered while still running. */
  visibilityTimeoutSeconds: 6 * APPLIER.timeoutSeconds,
  /** Deliveries before SQS gives up on a message; the applier dead-letters it itself on the last one. */
  receiveLimit: 5,
  /** SQS's maximum: a long outage of the applier loses no status. */
  retentionDays: 14,
  deadLetterRetentionDays: 14,
} as const;

/** Environment variables the handlers read; set by the stack and by the local stack alike. */
export const ENVIRONMENT = {
  tableName: 'TABLE_NAME',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  receiveLimit: 'RECEIVE_LIMIT',
  /** Where `Task Ended` and `Subtask Timed Out` events go; `default` is the account's default bus. */
  eventBusName: 'EVENT_BUS_NAME',
  /** Subtasks one sweeper run ends at most (`SWEEPER.subtasksPerRun` unless set). */
  sweepSubtasksPerRun: 'SWEEP_SUBTASKS_PER_RUN',
} as const;

/** What the service puts on EventBridge. */
export const EVENTS = {
  source: 'subtask-progress',
  taskEnded: 'Task Ended',
  subtaskTimedOut: 'Subtask Timed Out',
} as const;

/**
 * A sparse index of the task items that need the sweeper's attention (a deadline, a subtask timeout, a cancel
 * in progress, an initialization not finished, an event not yet published, or a recount after idling), by
 * when: the sweeper reads only what is due, never the table. Two partitions: urgent work, and the routine idle
 * recounts the sweeper itself reschedules, so those never stand before a cancel.
 */
export const DUE_INDEX = {
  indexName: 'due',
  partitionKey: 'due_pk',
  /** Epoch seconds at which the task is next due. */
  sortKey: 'due_at',
} as const;

/**
 * The task listing's sparse indexes (only task items carry their partition keys), newest first on `created_at`.
 * Every key and projected attribute is written at initialize and, for `task_state`, once more by the write that
 * ends the task, never by another fold: a fold's write of the task item leaves every index alone, so listing
 * costs nothing per status.
 */
export const LIST_INDEXES = {
  /** Every task: one constant partition; the state projected, so "ended" filters in the index. */
  all: { indexName: 'tasks', partitionKey: 'list_pk', sortKey: 'created_at', projected: ['task_state'] },
  /** Tasks in one state: `PROGRESS` until the task ends, then its final state. Keys only. */
  byState: { indexName: 'tasks_by_state', partitionKey: 'task_state', sortKey: 'created_at', projected: [] },
  /** Tasks of one group (a task initialized without a group is not in it), states filtered in the index. */
  byGroup: {
    indexName: 'tasks_by_group',
    partitionKey: 'group',
    sortKey: 'created_at',
    projected: ['task_state'],
  },
  /** What a state filter reads from `all` and `byGroup`. */
  stateAttribute: 'task_state',
} as const;

/** The listing indexes, for the table definitions (CDK and local) and the grants. */
export const LIST_INDEX_LIST = [LIST_INDEXES.all, LIST_INDEXES.byState, LIST_INDEXES.byGroup] as const;

export const SWEEPER = {
  /** How often the schedule runs it: every sweep reads what is due now, and DESIGN §4 needs minute deadlines. */
  rateMinutes: 1,
  /** It reads only what is due; a minute covers a sweep and matches the schedule. */
  timeoutSeconds: 60,
  memoryMiB: 512,
  /** A task in progress with no change for this long is recounted, in case a stream record was lost. */
  idleRecountMinutes: 15,
  /** A task still not ready this long after it was created ends `FAILURE` (`INITIALIZE_INCOMPLETE`). */
  initializeGraceMinutes: 15,
  /** Due tasks one run takes on from each lane (urgent, then routine); the rest wait for the next run. */
  tasksPerRun: 50,
  /**
   * Subtasks one run ends at most, over all its tasks (timeouts, cancel): the rest in the next run, from the
   * cursor the run leaves on the task. The construct's `sweeperSubtasksPerRun` sets it.
   */
  subtasksPerRun: 20_000,
  /** Subtask items one query page reads while looking for subtasks to end (a filtered page may be short). */
  readPageItems: 1_000,
  /** A run takes on no further task or shard with less of its time left than this. */
  timeMarginSeconds: 10,
  /**
   * A `Task Ended` is left to the aggregator for this long after the ending; then the sweeper publishes it if
   * it is still not, and again after each failure.
   */
  eventGraceSeconds: 120,
  /** Delay before an event that failed for good (no permission, invalid entry) is tried again. */
  permanentEventRetryMinutes: 15,
  /** Deferred events one run publishes per task at most. */
  eventsPerTaskRun: 500,
  /**
   * A subtask change this old that its shard's counter does not show was never folded: the stream or the
   * aggregator has stopped (metric `UnfoldedShards`). Well above the fold's normal lag of seconds.
   */
  unfoldedAfterMinutes: 5,
} as const;

/**
 * Where the handlers' Powertools metrics land, and the names the stack's alarms watch: both sides read them
 * here, so a rename cannot leave an alarm waiting for data that never comes.
 */
export const METRICS = {
  namespace: 'SubtaskProgress',
  /** Powertools adds the service name as this dimension. */
  dimension: 'service',
  services: { applier: 'applier', aggregator: 'aggregator', api: 'api', sweeper: 'sweeper' },
  names: {
    statusesDeadLettered: 'StatusesDeadLettered',
    statusesRetried: 'StatusesRetried',
    foldsSkipped: 'FoldsSkipped',
    sweepErrors: 'SweepErrors',
    /** Events that failed for good on this publish: they stay marked on their task, retried now and then. */
    eventsUndeliverable: 'EventsUndeliverable',
    /** Shards whose idle recount found changes older than `SWEEPER.unfoldedAfterMinutes` never folded. */
    unfoldedShards: 'UnfoldedShards',
  },
} as const;

/** One of the service's four functions, as `METRICS.services` names them. */
export type ServiceFunction = keyof typeof METRICS.services;

/** The Logger service name of a function, and its function name in the local stack. */
export function serviceName(fn: ServiceFunction): string {
  return `subtask-progress-${fn}`;
}
