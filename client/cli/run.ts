/** Runs one command line and returns the exit code: 0 done, 1 failed, 2 bad arguments. */

import {
  CancelConflictError,
  InitializeConflictError,
  InvalidInitializeRequestError,
  ProgressApiError,
  SubtaskProgressClientError,
} from '../errors';
import { parseCommandLine, UsageError, usage } from './arguments';
import { EXIT } from './exit-codes';

/** What went wrong, in words for an operator: no stack traces for failures we can name. */
function explain(error: unknown): { message: string; code: number } {
  if (error instanceof UsageError) {
    return { message: `${error.message}\n\n${usage(error.command)}`, code: EXIT.usage };
  }
  if (error instanceof InvalidInitializeRequestError) return { message: error.message, code: EXIT.usage };
  // A task id taken by another job, a cancel of a task that already ended: the API's words say it all.
  if (error instanceof InitializeConflictError || error instanceof CancelConflictError) {
    return { message: error.message, code: EXIT.failed };
  }
  if (error instanceof ProgressApiError) {
    const message =
      error.status === 404
        ? error.message
        : `The progress API answered ${error.status} ${error.error}: ${error.message}`;
    return { message, code: EXIT.failed };
  }
  // Missing settings, an unreachable API, an answer of the wrong shape.
  if (error instanceof SubtaskProgressClientError) return { message: error.message, code: EXIT.failed };
  // SDK errors (no such table, connection refused, no credentials) carry a useful name and message.
  if (error instanceof Error) return { message: `${error.name}: ${error.message}`, code: EXIT.failed };
  return { message: String(error), code: EXIT.failed };
}

export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const command = parseCommandLine(argv);
    if (command.kind === 'help') {
      console.log(usage(command.topic));
      return EXIT.ok;
    }
    // Imported late so that help and argument errors answer at once, without loading the AWS SDK.
    const { execute } = await import('./commands');
    return await execute(command);
  } catch (error) {
    const { message, code } = explain(error);
    console.error(`subtask-progress: ${message}`);
    return code;
  }
}
