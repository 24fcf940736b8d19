/**
 * What the HTTP API and its client must agree on beyond JSON: the error answers, as the API writes them and the
 * client reads them (every error is `{error, message}`, and a 409 of an initialize also names the conflicting
 * `fields`, so that no caller has to read them out of the message), and the limits of a request. Pure schemas
 * and constants, no AWS: the client imports this rather than the API's modules.
 */
import { z } from 'zod';

/** Subtasks one `PUT /tasks/{task_id}` may create, listed or numbered. */
export const MAX_SUBTASKS = 1_000_000;

/** The `error` of an error answer: what went wrong, by name. */
export const ERROR_CODES = ['BadRequest', 'NotFound', 'Conflict', 'InternalError'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** What the API answers on an error. */
export interface ErrorBody {
  readonly error: ErrorCode;
  readonly message: string;
  /** On a 409 of an initialize: the request's fields that differ from the task already initialized. */
  readonly fields?: readonly string[];
}

/**
 * An error answer as the client reads it. `error` is a string, not one of `ERROR_CODES`, and optional:
 * API Gateway answers its own refusals (403 from IAM, 429 throttling) with only `{message}`.
 */
export const errorBodySchema = z.object({
  error: z.string().optional(),
  message: z.string(),
  fields: z.array(z.string()).optional(),
});
