/** What the local stand-ins for Lambda's event sources and API Gateway share when they invoke a function. */

import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { z } from 'zod';

export const ACCOUNT_ID = '000000000000';

export interface InvocationTarget {
  readonly functionName: string;
  readonly region: string;
  readonly memoryMiB: number;
}

/** The context Lambda hands the function: its remaining time counts down to `deadline` (epoch ms). */
export function lambdaContext(target: InvocationTarget, deadline: number): Context {
  const { functionName, region, memoryMiB } = target;
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(memoryMiB),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // Deprecated callback-style completion; an async handler never calls them.
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** What Lambda reports when a function outlives its timeout. */
export class InvocationTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    this.name = 'InvocationTimeoutError';
  }
}

/**
 * What Lambda accepts back from a batch function (SQS or a stream). An empty or null response, or an empty or null
 * list, means "all succeeded"; an identifier that is empty or missing fails the whole batch.
 */
const batchResponseSchema = z
  .object({
    batchItemFailures: z
      .array(z.object({ itemIdentifier: z.string().min(1) }))
      .nullish()
      .transform((failures) => failures ?? []),
  })
  .nullish()
  .transform((response) => response?.batchItemFailures ?? []);

/** What an event source mapping reports when a batch function's answer fails the whole batch. */
export class InvalidBatchResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBatchResponseError';
  }
}

/**
 * The records a batch function reported failed, read as its event source mapping reads them: `batch` maps each
 * record's identifier to what the caller wants back for it. An answer that is not a batch response, or that
 * names a record not in the batch, fails the whole batch.
 */
export function failedItems<Item>(response: unknown, batch: ReadonlyMap<string, Item>): Item[] {
  const parsed = batchResponseSchema.safeParse(response);
  if (!parsed.success) {
    throw new InvalidBatchResponseError(
      'the response is not a batch response with non-empty itemIdentifiers',
    );
  }
  return parsed.data.map(({ itemIdentifier }) => {
    const item = batch.get(itemIdentifier);
    if (item === undefined) {
      throw new InvalidBatchResponseError(`batchItemFailures names '${itemIdentifier}', not in the batch`);
    }
    return item;
  });
}

/** `value` without its undefined fields, as a JSON event from Lambda has them. */
export function withoutUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}

/**
 * Invocations of one stand-in, each raced against its deadline. One that outlives it fails with the stand-in's
 * own timeout error but runs on, as it would in its own sandbox; `settled()` waits for those too, so nothing
 * writes to an emulator that is being stopped.
 */
export class DeadlineInvocations {
  private readonly overrun = new Set<Promise<unknown>>();

  /** Invokes `handler` as Lambda does `target`: with a context whose remaining time counts down to `deadline`. */
  async invoke<Event>(
    handler: (event: Event, context: Context) => Promise<unknown>,
    event: Event,
    target: InvocationTarget,
    deadline: number,
    timedOut: () => Error,
  ): Promise<unknown> {
    const invocation = handler(event, lambdaContext(target, deadline));
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          expired = true;
          reject(timedOut());
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([invocation, timeout]);
    } catch (error) {
      if (expired) {
        const settled = invocation.catch(() => undefined).finally(() => this.overrun.delete(settled));
        this.overrun.add(settled);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once every invocation that outlived its deadline has ended. */
  async settled(): Promise<void> {
    await Promise.all(this.overrun);
  }
}

/**
 * What the stand-ins for Lambda's event source mappings (SQS, DynamoDB Streams) take besides their source. Each
 * defaults to the settings of the function it feeds (`APPLIER`, `AGGREGATOR` in `lambdas/service-settings.ts`).
 */
export interface EventSourceOptions<Report> {
  readonly batchSize?: number;
  readonly batchingWindowMs?: number;
  /** The function's timeout: `getRemainingTimeInMillis` counts down from it. */
  readonly timeoutMs?: number;
  readonly functionName?: string;
  readonly onBatch?: (report: Report) => void;
  /** Whole-batch failures, and calls to the source that failed; the stand-in backs off and goes on. */
  readonly onError?: (error: unknown) => void;
}
