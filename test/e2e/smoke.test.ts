/**
 * `npm run smoke` against the local stack, as CI runs it: it passes on a healthy stack, and on a broken one it
 * stops at the step that failed with the cause an operator should look at. Timeouts are short: the local stack
 * applies and folds within a few hundred milliseconds.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSmokeCommand } from '../../ops/smoke-command';
import { runSmokeTest, SmokeTestFailure } from '../../ops/smoke-test';
import { newStatusQueues, sqsClient } from '../support/aws';
import { startTestStack, type TestStack } from './stack';

const FAST = {
  applyTimeoutMs: 1_500,
  foldTimeoutMs: 1_500,
  cancelTimeoutMs: 1_500,
  pollIntervalMs: 100,
} as const;

let sqs: SQSClient;

beforeAll(() => {
  sqs = sqsClient();
});

afterAll(() => {
  sqs.destroy();
});

/** The failure `run` rejects with; fails the test if it resolves. */
async function failureOf(run: Promise<void>): Promise<SmokeTestFailure> {
  const error = await run.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof SmokeTestFailure))
    throw new Error(`Expected a SmokeTestFailure, got ${String(error)}`);
  return error;
}

async function listening(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('npm run smoke on a healthy local stack', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // The sweeper runs on its own, as deployed, so that the canceled task ends without the test's help.
    stack = await startTestStack({ sweepIntervalMs: 200 });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('passes every step with the endpoints of the export line, and exits 0', async () => {
    const out: string[] = [];
    const err: string[] = [];

    const code = await runSmokeCommand(['--poll-interval', '0.1', '--cancel-timeout', '20'], {
      env: {
        SUBTASK_PROGRESS_API_URL: stack.httpUrl,
        SUBTASK_PROGRESS_QUEUE_URL: stack.queueUrl,
        SUBTASK_PROGRESS_DEAD_LETTER_QUEUE_URL: stack.deadLetterQueueUrl,
        AWS_REGION: stack.region,
      },
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      sqs,
    });

    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.flatMap((line) => /^ {2}ok {2}(\w+)/.exec(line)?.[1] ?? [])).toEqual([
      'initialize',
      'initialize',
      'cancel',
      'send',
      'apply',
      'fold',
      'send',
      'apply',
      'end',
      'canceled',
    ]);
    expect(out.find((line) => line.includes(' end '))).toContain(
      'ended SUCCESS: "Message smoke-tested for 29 of 30 recipients (skipping 2)"',
    );
    expect(out.at(-1)).toMatch(/^Passed in \d+\.\d s\.$/);
    expect(stack.errorLines()).toEqual([]);
  });

  it("names the applier's event source when nobody consumes the queue the statuses go to", async () => {
    const unconsumed = await newStatusQueues(sqs);

    const failure = await failureOf(
      runSmokeTest({ target: { apiUrl: stack.httpUrl, queueUrl: unconsumed.queueUrl }, sqs, ...FAST }),
    );

    expect(failure.step).toBe('apply');
    expect(failure.message).toMatch(
      /^status messages not consumed within 1\.5 s \(2 still waiting in the queue\): check the applier's SQS event source/,
    );
  });

  it('exits 1 and says which step failed and why', async () => {
    const unconsumed = await newStatusQueues(sqs);
    const err: string[] = [];

    const code = await runSmokeCommand(['--apply-timeout', '1', '--poll-interval', '0.1'], {
      env: { SUBTASK_PROGRESS_API_URL: stack.httpUrl, SUBTASK_PROGRESS_QUEUE_URL: unconsumed.queueUrl },
      out: () => undefined,
      err: (line) => err.push(line),
      sqs,
    });

    expect(code).toBe(1);
    expect(err).toEqual([expect.stringMatching(/^FAILED at apply: status messages not consumed within 1 s/)]);
  });
});

describe('npm run smoke against an API that refuses or is not there', () => {
  it('names grantInitialize when the API answers 403, as API Gateway does to an identity without the grant', async () => {
    const gateway = createServer((_, response) => {
      response.writeHead(403, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Forbidden' }));
    });
    const apiUrl = await listening(gateway);
    try {
      const failure = await failureOf(
        runSmokeTest({ target: { apiUrl, queueUrl: 'http://127.0.0.1:1/000000000000/none' }, sqs, ...FAST }),
      );

      expect(failure.step).toBe('initialize');
      expect(failure.message).toMatch(
        /^API answered 403 to PUT \/tasks\/\{task_id\} \(Forbidden\): the caller needs grantInitialize/,
      );
    } finally {
      gateway.close();
    }
  });

  it("signs for the region in a deployed API's URL, and names the grant IAM refused", async () => {
    const requests: Request[] = [];
    // IAM on API Gateway has no local counterpart: a fetch answers as API Gateway does to an unauthorized caller.
    const apiGateway: typeof fetch = async (input, init) => {
      requests.push(new Request(input, init));
      return new Response(
        JSON.stringify({
          Message:
            'User: arn:aws:iam::123456789012:user/ops is not authorized to perform: execute-api:Invoke',
        }),
        { status: 403, statusText: 'Forbidden', headers: { 'content-type': 'application/json' } },
      );
    };

    const failure = await failureOf(
      runSmokeTest({
        target: {
          apiUrl: 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com',
          queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/statuses',
          region: 'eu-west-1',
        },
        sqs,
        api: { fetch: apiGateway, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } },
        ...FAST,
      }),
    );

    expect(requests.map((request) => `${request.method} ${new URL(request.url).pathname}`)).toEqual([
      expect.stringMatching(/^PUT \/tasks\/smoke-\d{8}T\d{6}-\w+-a$/),
    ]);
    expect(requests[0]?.headers.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
    );
    expect(failure.step).toBe('initialize');
    expect(failure.message).toMatch(
      /^API answered 403 to PUT \/tasks\/\{task_id\} \(.+\): the caller needs grantInitialize/,
    );
  });

  it('names the API URL when nothing listens there', async () => {
    const closed = createServer();
    const apiUrl = await listening(closed);
    await new Promise((done) => closed.close(done));

    const failure = await failureOf(
      runSmokeTest({ target: { apiUrl, queueUrl: 'http://127.0.0.1:1/000000000000/none' }, sqs, ...FAST }),
    );

    expect(failure.step).toBe('initialize');
    expect(failure.message).toContain(`ECONNREFUSED: is ${apiUrl} the stack's ApiUrl output`);
  });
});

describe('npm run smoke on a local stack whose aggregator is never invoked', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // A batching window far longer than the test: the stream's records wait for a batch that never fills.
    stack = await startTestStack({ streamBatchingWindowMs: 600_000 });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("names the aggregator's event source mapping once statuses are applied but never folded", async () => {
    const failure = await failureOf(
      runSmokeTest({ target: { apiUrl: stack.httpUrl, queueUrl: stack.queueUrl }, sqs, ...FAST }),
    );

    expect(failure.step).toBe('fold');
    expect(failure.message).toMatch(
      /^no aggregator invocation within 1\.5 s: .*check the aggregator's event source mapping/,
    );
  });
});
