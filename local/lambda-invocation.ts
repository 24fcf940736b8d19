import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/** What the local stand-ins for Lambda's event sources and API Gateway share when they invoke a function. */

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
