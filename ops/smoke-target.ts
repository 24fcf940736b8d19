/**
 * Where the smoke test finds the service: a `cdk deploy --outputs-file` JSON (the stack's `CfnOutput`s), or the
 * environment variables `npm start` prints on its `export` line. Checked here, so a typo fails before any call.
 */

import { z } from 'zod';

export interface SmokeTarget {
  readonly apiUrl: string;
  readonly queueUrl: string;
  /** Lets a failure say whether statuses were dead-lettered. */
  readonly deadLetterQueueUrl?: string;
  /** The region to sign for and send to; read from the URLs when the environment does not say. */
  readonly region?: string;
}

/** The outputs a smoke run reads, by their ids in `cdk/subtask-progress-stack.ts`. */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  queueUrl: 'QueueUrl',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
} as const;

/** The variables `local/start.ts` prints, which our client reads too. */
export const TARGET_VARIABLES = {
  apiUrl: 'SUBTASK_PROGRESS_API_URL',
  queueUrl: 'SUBTASK_PROGRESS_QUEUE_URL',
  deadLetterQueueUrl: 'SUBTASK_PROGRESS_DEAD_LETTER_QUEUE_URL',
  region: 'AWS_REGION',
} as const;

export class SmokeTargetError extends Error {
  override readonly name = 'SmokeTargetError';
}

const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** `cdk deploy --outputs-file` writes `{ "<stack>": { "<output id>": "<value>" } }`. */
const outputsFileSchema = z.record(z.string(), z.record(z.string(), z.string()));

/** `<id>.execute-api.<region>.amazonaws.com`, `sqs.<region>.amazonaws.com`, and the emulator's `sqs.<region>.localhost`. */
const REGION_IN_HOST = /(?:^|\.)(?:execute-api|sqs)\.([a-z]{2}(?:-[a-z]+)+-\d+)\./;

export function regionInUrl(value: string): string | undefined {
  return REGION_IN_HOST.exec(new URL(value).hostname)?.[1];
}

function checkedUrl(value: string | undefined, source: string): string {
  if (value === undefined || value === '') throw new SmokeTargetError(`${source} is missing`);
  const parsed = url.safeParse(value);
  if (!parsed.success) throw new SmokeTargetError(`${source} '${value}' ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function target(
  read: (name: keyof typeof STACK_OUTPUTS) => string | undefined,
  source: (name: keyof typeof STACK_OUTPUTS) => string,
  region: string | undefined,
): SmokeTarget {
  const apiUrl = checkedUrl(read('apiUrl'), source('apiUrl'));
  const queueUrl = checkedUrl(read('queueUrl'), source('queueUrl'));
  const deadLetterQueueUrl = read('deadLetterQueueUrl');
  const where = region || regionInUrl(apiUrl) || regionInUrl(queueUrl);
  return {
    apiUrl,
    queueUrl,
    ...(deadLetterQueueUrl
      ? { deadLetterQueueUrl: checkedUrl(deadLetterQueueUrl, source('deadLetterQueueUrl')) }
      : {}),
    ...(where ? { region: where } : {}),
  };
}

/**
 * The target in an outputs file's text: the stack named `stackName`, or the only stack in it that has an API and a
 * queue output. `region` (e.g. `AWS_REGION`) wins over the one in the URLs.
 */
export function targetFromOutputs(
  text: string,
  file: string,
  stackName?: string,
  region?: string,
): SmokeTarget {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SmokeTargetError(`${file} is not JSON: write it with cdk deploy --outputs-file ${file}`);
  }
  const parsed = outputsFileSchema.safeParse(json);
  if (!parsed.success) throw new SmokeTargetError(`${file} is not a cdk deploy --outputs-file file`);
  const stacks = Object.entries(parsed.data);
  const candidates =
    stackName === undefined
      ? stacks.filter(([, outputs]) => STACK_OUTPUTS.apiUrl in outputs && STACK_OUTPUTS.queueUrl in outputs)
      : stacks.filter(([name]) => name === stackName);
  const [chosen, ...others] = candidates;
  if (chosen === undefined) {
    throw new SmokeTargetError(
      stackName === undefined
        ? `${file} holds no stack with ${STACK_OUTPUTS.apiUrl} and ${STACK_OUTPUTS.queueUrl} outputs`
        : `${file} holds no stack ${stackName} (it holds ${stacks.map(([name]) => name).join(', ') || 'none'})`,
    );
  }
  if (others.length > 0) {
    throw new SmokeTargetError(
      `${file} holds several stacks of this service (${candidates.map(([name]) => name).join(', ')}): name one with --stack`,
    );
  }
  const [name, outputs] = chosen;
  return target(
    (output) => outputs[STACK_OUTPUTS[output]],
    (output) => `${file}: output ${STACK_OUTPUTS[output]} of ${name}`,
    region,
  );
}

/** The target in the environment, as `npm start`'s `export` line (or an operator) sets it. */
export function targetFromEnvironment(env: Readonly<Record<string, string | undefined>>): SmokeTarget {
  return target(
    (name) => env[TARGET_VARIABLES[name]],
    (name) => `${TARGET_VARIABLES[name]} (or --outputs-file)`,
    env[TARGET_VARIABLES.region],
  );
}
