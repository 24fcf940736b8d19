/** Where `npm run smoke` finds the service: a `cdk deploy --outputs-file` JSON, or the local stack's variables. */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSmokeCommand } from '../../ops/smoke-command';
import { SmokeTargetError, targetFromEnvironment, targetFromOutputs } from '../../ops/smoke-target';

const API = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/';
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/SubtaskProgress-StatusQueue';
const DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/SubtaskProgress-DeadLetterQueue';

/** As `cdk deploy --outputs-file` writes it: every output of every stack deployed. */
const outputs = (stacks: Record<string, Record<string, string>>) => JSON.stringify(stacks, null, 2);
const deployed = {
  ApiUrl: API,
  QueueUrl: QUEUE,
  DeadLetterQueueUrl: DLQ,
  TableName: 'SubtaskProgress-Table',
  AggregatorFunctionName: 'SubtaskProgress-Aggregator',
};

describe('targetFromOutputs', () => {
  it("reads the stack's API and queue outputs, and the region from the API's host", () => {
    const target = targetFromOutputs(outputs({ SubtaskProgress: deployed }), 'out.json');

    expect(target).toEqual({ apiUrl: API, queueUrl: QUEUE, deadLetterQueueUrl: DLQ, region: 'eu-west-1' });
  });

  it('takes the region given over the one in the URLs', () => {
    const target = targetFromOutputs(
      outputs({ SubtaskProgress: deployed }),
      'out.json',
      undefined,
      'us-east-2',
    );

    expect(target.region).toBe('us-east-2');
  });

  it("picks this service's stack among others, or the one named", () => {
    const file = outputs({ Network: { VpcId: 'vpc-1' }, SubtaskProgress: deployed, Other: deployed });

    expect(() => targetFromOutputs(file, 'out.json')).toThrow(
      'out.json holds several stacks of this service (SubtaskProgress, Other): name one with --stack',
    );
    expect(targetFromOutputs(file, 'out.json', 'Other').apiUrl).toBe(API);
    expect(() => targetFromOutputs(file, 'out.json', 'Missing')).toThrow(
      'out.json holds no stack Missing (it holds Network, SubtaskProgress, Other)',
    );
  });

  it('names the output that is missing or malformed', () => {
    const { QueueUrl: _queue, ...withoutQueue } = deployed;

    expect(() =>
      targetFromOutputs(outputs({ SubtaskProgress: withoutQueue }), 'out.json', 'SubtaskProgress'),
    ).toThrow('out.json: output QueueUrl of SubtaskProgress is missing');
    expect(() =>
      targetFromOutputs(outputs({ SubtaskProgress: { ...deployed, ApiUrl: 'ftp://x' } }), 'out.json'),
    ).toThrow("out.json: output ApiUrl of SubtaskProgress 'ftp://x' must be an http(s) URL");
  });

  it('refuses a file that is not an outputs file', () => {
    expect(() => targetFromOutputs('{"SubtaskProgress": ', 'out.json')).toThrow(SmokeTargetError);
    expect(() => targetFromOutputs('["ApiUrl"]', 'out.json')).toThrow(
      'out.json is not a cdk deploy --outputs-file file',
    );
  });
});

describe('targetFromEnvironment', () => {
  it("reads the variables of the local stack's export line, the region from the emulator's queue URL", () => {
    const target = targetFromEnvironment({
      SUBTASK_PROGRESS_API_URL: 'http://127.0.0.1:3000',
      SUBTASK_PROGRESS_QUEUE_URL:
        'http://sqs.us-east-1.localhost:9324/000000000000/subtask-progress-statuses',
    });

    expect(target).toEqual({
      apiUrl: 'http://127.0.0.1:3000',
      queueUrl: 'http://sqs.us-east-1.localhost:9324/000000000000/subtask-progress-statuses',
      region: 'us-east-1',
    });
  });

  it('names the variable that is not set', () => {
    expect(() => targetFromEnvironment({ SUBTASK_PROGRESS_QUEUE_URL: QUEUE })).toThrow(
      'SUBTASK_PROGRESS_API_URL (or --outputs-file) is missing',
    );
  });
});

describe('runSmokeCommand before any call', () => {
  async function run(argv: readonly string[]) {
    const err: string[] = [];
    const code = await runSmokeCommand(argv, {
      env: {},
      out: () => undefined,
      err: (line) => err.push(line),
    });
    return { code, err: err.join('\n') };
  }

  it('exits 2 on a bad timeout, an unknown option or --stack without a file', async () => {
    expect(await run(['--fold-timeout', 'soon'])).toMatchObject({
      code: 2,
      err: expect.stringContaining("--fold-timeout takes a positive number of seconds, not 'soon'"),
    });
    expect((await run(['--region', 'x'])).code).toBe(2);
    expect(await run(['--stack', 'SubtaskProgress'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('--stack names a stack of --outputs-file'),
    });
  });

  it('exits 2 naming the outputs file it cannot read, or the variables it lacks', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'smoke-'));
    try {
      const file = join(directory, 'outputs.json');
      await writeFile(file, outputs({ SubtaskProgress: { ApiUrl: API } }));

      expect(await run(['--outputs-file', join(directory, 'missing.json')])).toEqual({
        code: 2,
        err: `smoke: cannot read ${join(directory, 'missing.json')} (ENOENT)`,
      });
      expect(await run(['--outputs-file', file])).toEqual({
        code: 2,
        err: `smoke: ${file} holds no stack with ApiUrl and QueueUrl outputs`,
      });
      expect(await run([])).toEqual({
        code: 2,
        err: 'smoke: SUBTASK_PROGRESS_API_URL (or --outputs-file) is missing',
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
