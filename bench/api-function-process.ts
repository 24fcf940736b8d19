/**
 * The API function in a process of its own, for `initialize-large.ts`: the bundled handler, cold-started once,
 * then invoked once per line on stdin (`{"event": …, "timeoutMs": …}`), answering one line on stdout with the
 * result and the process's memory. The context's remaining time counts down from the line's arrival, as Lambda's
 * does from the invocation's start.
 */
import { createInterface } from 'node:readline';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { handler } from '../lambdas/api/handler';

interface Invocation {
  readonly event: APIGatewayProxyEventV2;
  readonly timeoutMs: number;
}

function contextUntil(deadline: number): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:api',
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '256',
    awsRequestId: 'bench',
    logGroupName: '/aws/lambda/api',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function memory() {
  const { rss, heapUsed } = process.memoryUsage();
  // maxRSS is in KiB.
  return {
    rssMiB: rss / 2 ** 20,
    heapUsedMiB: heapUsed / 2 ** 20,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

const lines = createInterface({ input: process.stdin });
process.stdout.write(`${JSON.stringify({ ready: true, ...memory() })}\n`);
for await (const line of lines) {
  const { event, timeoutMs } = JSON.parse(line) as Invocation;
  const result = await handler(event, contextUntil(Date.now() + timeoutMs));
  process.stdout.write(`${JSON.stringify({ result, ...memory() })}\n`);
}
