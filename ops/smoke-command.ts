/**
 * `npm run smoke [-- --outputs-file FILE]`: the smoke test as an operator runs it after `cdk deploy` (or against
 * `npm start`), with its endpoints from the outputs file or the environment and one line per step passed.
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EXIT } from '../client/cli/exit-codes';
import { type SmokeTarget, SmokeTargetError, targetFromEnvironment, targetFromOutputs } from './smoke-target';
import { runSmokeTest, SMOKE_DEFAULTS, SmokeTestFailure, type StepReport } from './smoke-test';

const USAGE = `Usage: npm run smoke -- [--outputs-file FILE [--stack NAME]] [--apply-timeout S] [--fold-timeout S]
                        [--cancel-timeout S] [--poll-interval S]

Takes a small task through the deployed service (initialize over the API, statuses through SQS, the applier,
the aggregator's fold and ending) and cancels a second one; stops at the first step that fails and names its
likely cause.

  --outputs-file FILE   the JSON \`cdk deploy --outputs-file FILE\` wrote; without it, the endpoints come from
                        SUBTASK_PROGRESS_API_URL and SUBTASK_PROGRESS_QUEUE_URL (the line \`npm start\` prints)
  --stack NAME          the stack in FILE, when it holds several
  --apply-timeout S     seconds statuses may take to be applied (default ${SMOKE_DEFAULTS.applyTimeoutMs / 1000})
  --fold-timeout S      seconds applied statuses may take to be folded, and the task to end (default ${SMOKE_DEFAULTS.foldTimeoutMs / 1000})
  --cancel-timeout S    seconds a cancel may take to end its task; the sweeper runs every minute (default ${SMOKE_DEFAULTS.cancelTimeoutMs / 1000})
  --poll-interval S     seconds between two reads while waiting (default ${SMOKE_DEFAULTS.pollIntervalMs / 1000})

Calls to an API that is not on loopback are SigV4-signed with the AWS SDK's credentials (AWS_PROFILE, …) for
AWS_REGION, or the region in the API's URL. Exit codes: 0 passed, 1 a step failed, 2 bad arguments.`;

class UsageError extends Error {}

export interface SmokeCommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** @default a client for the target's region, configured by the SDK's environment */
  readonly sqs?: SQSClient;
}

const TIMEOUTS = {
  'apply-timeout': 'applyTimeoutMs',
  'fold-timeout': 'foldTimeoutMs',
  'cancel-timeout': 'cancelTimeoutMs',
  'poll-interval': 'pollIntervalMs',
} as const;

type Timeouts = Partial<Record<(typeof TIMEOUTS)[keyof typeof TIMEOUTS], number>>;

interface SmokeCommand {
  readonly help: boolean;
  readonly outputsFile?: string;
  readonly stack?: string;
  readonly timeouts: Timeouts;
}

function parseCommandLine(argv: readonly string[]): SmokeCommand {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'outputs-file': { type: 'string' },
        stack: { type: 'string' },
        ...Object.fromEntries(Object.keys(TIMEOUTS).map((name) => [name, { type: 'string' } as const])),
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const timeouts: Timeouts = {};
  for (const [option, key] of Object.entries(TIMEOUTS)) {
    const value = values[option];
    if (typeof value !== 'string') continue;
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) {
      throw new UsageError(`--${option} takes a positive number of seconds, not '${value}'`);
    }
    timeouts[key] = Math.round(Number(value) * 1000);
  }
  const outputsFile = values['outputs-file'];
  const stack = values.stack;
  if (typeof stack === 'string' && typeof outputsFile !== 'string') {
    throw new UsageError('--stack names a stack of --outputs-file');
  }
  return {
    help: values.help === true,
    timeouts,
    ...(typeof outputsFile === 'string' ? { outputsFile } : {}),
    ...(typeof stack === 'string' ? { stack } : {}),
  };
}

async function readTarget(command: SmokeCommand, env: SmokeCommandIo['env']): Promise<SmokeTarget> {
  if (command.outputsFile === undefined) return targetFromEnvironment(env);
  let text: string;
  try {
    text = await readFile(command.outputsFile, 'utf8');
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new SmokeTargetError(`cannot read ${command.outputsFile} (${reason})`);
  }
  return targetFromOutputs(text, command.outputsFile, command.stack, env.AWS_REGION);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs the command line; returns the exit code. */
export async function runSmokeCommand(argv: readonly string[], io: SmokeCommandIo): Promise<number> {
  let command: SmokeCommand;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`smoke: ${error.message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (command.help) {
    io.out(USAGE);
    return EXIT.ok;
  }
  let target: SmokeTarget;
  try {
    target = await readTarget(command, io.env);
  } catch (error) {
    if (!(error instanceof SmokeTargetError)) throw error;
    io.err(`smoke: ${error.message}`);
    return EXIT.usage;
  }
  const sqs =
    io.sqs ??
    new SQSClient({
      useQueueUrlAsEndpoint: false,
      ...(target.region === undefined ? {} : { region: target.region }),
    });
  const started = Date.now();
  io.out(`Smoke test of ${target.apiUrl} and ${target.queueUrl}`);
  try {
    await runSmokeTest({
      target,
      sqs,
      ...command.timeouts,
      onStep: (report: StepReport) =>
        io.out(`  ok  ${report.step.padEnd(10)} ${report.detail} (${seconds(report.ms)})`),
    });
    io.out(`Passed in ${seconds(Date.now() - started)}.`);
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof SmokeTestFailure)) {
      io.err(
        `smoke: failed unexpectedly: ${error instanceof Error ? `${error.name}: ${error.message}` : error}`,
      );
      return EXIT.failed;
    }
    io.err(`FAILED at ${error.step}: ${error.message}`);
    return EXIT.failed;
  } finally {
    if (io.sqs === undefined) sqs.destroy();
  }
}
