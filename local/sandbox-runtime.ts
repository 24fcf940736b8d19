/**
 * The runtime inside a local sandbox (a worker thread): receives invocations from `lambda-sandbox.ts`, hands each
 * to the function's handler with a Lambda context, and answers with its result or its error. One invocation at a
 * time, as in a Lambda execution environment.
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { lambdaContext } from './lambda-invocation';
import { setClockOffset } from './sandbox-clock';

export const invocationSchema = z.object({
  id: z.number(),
  event: z.unknown(),
  deadline: z.number(),
  clockOffsetMs: z.number(),
});

export type Invocation = z.output<typeof invocationSchema>;

export type InvocationAnswer =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export const sandboxDataSchema = z.object({
  functionName: z.string(),
  region: z.string(),
  memoryMiB: z.number(),
});

type Handler = (event: unknown, context: Context) => unknown;

function serialized(error: unknown): SerializedError {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
    };
  }
  return { name: 'Error', message: String(error) };
}

/** Serves invocations on the worker's port until the sandbox is terminated. */
export function serve(handler: Handler): void {
  const port = parentPort;
  if (port === null) throw new Error('The sandbox runtime runs in a worker thread only');
  process.setSourceMapsEnabled(true);
  const target = sandboxDataSchema.parse(workerData);
  port.on('message', async (message: unknown) => {
    const invocation = invocationSchema.parse(message);
    setClockOffset(invocation.clockOffsetMs);
    let answer: InvocationAnswer;
    try {
      const result = await handler(
        invocation.event,
        lambdaContext(target, invocation.deadline + invocation.clockOffsetMs),
      );
      answer = { id: invocation.id, ok: true, result: result ?? null };
    } catch (error) {
      answer = { id: invocation.id, ok: false, error: serialized(error) };
    } finally {
      setClockOffset(0);
    }
    port.postMessage(answer);
  });
}
