/**
 * What the client throws, by name, so callers (and the CLI) can tell a bad setup from a bad answer. Every error
 * extends `SubtaskProgressClientError`: one `catch` on it sees them all, the API's refusals included.
 */

export class SubtaskProgressClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A required setting is neither passed nor in the environment, or it is malformed. */
export class ClientConfigurationError extends SubtaskProgressClientError {}

/** The progress API answered with an error: `error` and `message` are its `{error, message}` body. */
export class ProgressApiError extends SubtaskProgressClientError {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

/** `PUT /tasks/{task_id}` answered 400: the request can never succeed as written (empty or duplicate ids, …). */
export class InvalidInitializeRequestError extends ProgressApiError {}

/** `PUT /tasks/{task_id}` answered 409: the task was already initialized with another request. */
export class InitializeConflictError extends ProgressApiError {
  constructor(
    readonly taskId: string,
    /** The request's fields that differ from the task's, as the API's answer names them. */
    readonly fields: readonly string[],
    error: string,
    message: string,
  ) {
    super(409, error, message);
  }
}

/** `POST /tasks/{task_id}/cancel` answered 409: the task has already ended, or is still being initialized. */
export class CancelConflictError extends ProgressApiError {}

/** No answer at all: nothing listens at the URL, DNS failed, the connection broke. */
export class ProgressApiUnreachableError extends SubtaskProgressClientError {}

/** An answer that is not what the progress API sends: a proxy page, another service, a newer incompatible API. */
export class UnexpectedResponseError extends SubtaskProgressClientError {}
