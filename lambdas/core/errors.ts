/**
 * Every failure the service knows by name. `permanent` decides its fate at the edge: a permanent error sends
 * the message to the dead-letter queue with `code` as its reason, a transient one lets SQS redeliver it.
 */
export abstract class ProgressError extends Error {
  abstract readonly code: string;
  abstract readonly permanent: boolean;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The base of an error whose code and fate are fixed: `class X extends ErrorKind('X_CODE', true) {}` declares
 * both where the class is named.
 */
function ErrorKind(code: string, permanent: boolean) {
  return class extends ProgressError {
    readonly code = code;
    readonly permanent = permanent;
  };
}

/** A message body that is not a valid status message (rule 1). `code` says which check it failed. */
export class InvalidMessageError extends ProgressError {
  readonly permanent = true;
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The task has no record yet; its initialization may still be in flight (rule 2). */
export class TaskNotFoundError extends ErrorKind('UNKNOWN_TASK', false) {
  constructor(readonly taskId: string) {
    super(`Task '${taskId}' is not initialized`);
  }
}

/** The task record exists but its initialization has not finished: its subtask items may not all exist yet. */
export class TaskNotReadyError extends ErrorKind('TASK_NOT_READY', false) {
  constructor(readonly taskId: string) {
    super(`Task '${taskId}' is still being initialized`);
  }
}

/** The message names a generation of the task that has been replaced by a re-initialization. */
export class StaleGenerationError extends ErrorKind('STALE_GENERATION', true) {
  constructor(
    readonly taskId: string,
    readonly generation: string,
  ) {
    super(`Task '${taskId}' is no longer at generation '${generation}'; it was initialized again`);
  }
}

/** The task exists but never had this subtask (rule 3). */
export class UnknownSubtaskError extends ErrorKind('UNKNOWN_SUBTASK', true) {
  constructor(
    readonly taskId: string,
    readonly subtaskId: string,
  ) {
    super(`Unexpected subtask '${subtaskId}': task '${taskId}' has no such subtask`);
  }
}

/** An initialize request that can never succeed as written (empty, duplicate or malformed subtask ids, …). */
export class InvalidInitializeRequestError extends ErrorKind('INVALID_INITIALIZE_REQUEST', true) {}

/** The task was already initialized with another request; `fields` names what differs. */
export class InitializeConflictError extends ErrorKind('INITIALIZE_CONFLICT', true) {
  constructor(
    readonly taskId: string,
    readonly fields: readonly string[],
  ) {
    super(`Task '${taskId}' is already initialized with a different ${fields.join(', ')}`);
  }
}

/** A cancel the task cannot take: it has ended, or it is not ready yet. */
export class CancelConflictError extends ErrorKind('CANCEL_CONFLICT', true) {}

/** The store asked us to slow down (throttling, capacity); retried by SQS redelivery. */
export class StoreUnavailableError extends ErrorKind('STORE_UNAVAILABLE', false) {}

/** Conflicts kept winning until the attempt budget or the Lambda's remaining time ran out. */
export class RetriesExhaustedError extends ErrorKind('RETRIES_EXHAUSTED', false) {}
