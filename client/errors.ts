/** What the client throws, by name, so callers (and the CLI) can tell a bad setup from a bad answer. */

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

/** No answer at all: nothing listens at the URL, DNS failed, the connection broke. */
export class ProgressApiUnreachableError extends SubtaskProgressClientError {}

/** An answer that is not what the progress API sends: a proxy page, another service, a newer incompatible API. */
export class UnexpectedResponseError extends SubtaskProgressClientError {}
