/**
 * The four functions of the local stack, made from the synthesized stack: each runs in sandboxes of its own
 * (`lambda-sandbox.ts`) with the environment, memory and timeout its template gives it, and reaches DynamoDB, SQS
 * and EventBridge only through a gateway that enforces its role's statements (`iam-gateway.ts`). A grant the CDK
 * code forgets fails here as it would on AWS.
 */

import type { DynamoDBBatchResponse } from 'aws-lambda';
import { z } from 'zod';
import type { EventPublisher } from '../lambdas/events/event-publisher';
import { serviceName } from '../lambdas/service-settings';
import type { SweepSummary } from '../lambdas/sweeper/sweep';
import { type ResolveContext, resolveValue } from './cloudformation-values';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './emulators';
import { type Denial, type RunningIamGateway, startIamGateway } from './iam-gateway';
import { type PolicyStatement, policyStatementSchema } from './iam-policy';
import { ACCOUNT_ID } from './lambda-invocation';
import { LambdaFunction } from './lambda-sandbox';
import { FUNCTION_NAMES, type FunctionName, type SynthesizedStack } from './synthesized-stack';

/** The entry file of each function, as `cdk/subtask-progress.ts` names it. */
const ENTRIES: Readonly<Record<FunctionName, string>> = {
  applier: 'lambdas/applier/handler.ts',
  aggregator: 'lambdas/aggregator/handler.ts',
  api: 'lambdas/api/handler.ts',
  sweeper: 'lambdas/sweeper/handler.ts',
};

/** The resources the local stack made, named as the template's functions and policies name them. */
export interface LocalResourceNames {
  readonly tableName: string;
  readonly streamArn: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
}

export interface LocalResources {
  readonly context: ResolveContext;
  readonly queueArn: string;
}

const queueName = (url: string) => url.split('/').pop() ?? url;
const queueArn = (url: string) => `arn:aws:sqs:${LOCAL_REGION}:${ACCOUNT_ID}:${queueName(url)}`;

/** The table and queues under the logical ids of the synthesized stack, with the ARNs AWS would give them. */
export function localResources(stack: SynthesizedStack, names: LocalResourceNames): LocalResources {
  const tableArn = `arn:aws:dynamodb:${LOCAL_REGION}:${ACCOUNT_ID}:table/${names.tableName}`;
  // DynamoDB Local names its own region in the stream's ARN; keep its stream label.
  const streamLabel = names.streamArn.split('/stream/')[1] ?? '';
  const queue = (url: string) => ({
    ref: url,
    attributes: { Arn: queueArn(url), QueueName: queueName(url), QueueUrl: url },
  });
  return {
    queueArn: queueArn(names.queueUrl),
    context: {
      region: LOCAL_REGION,
      accountId: ACCOUNT_ID,
      resources: {
        [stack.logicalIds.table]: {
          ref: names.tableName,
          attributes: { Arn: tableArn, StreamArn: `${tableArn}/stream/${streamLabel}` },
        },
        [stack.logicalIds.queue]: queue(names.queueUrl),
        [stack.logicalIds.deadLetterQueue]: queue(names.deadLetterQueueUrl),
      },
    },
  };
}

/** The statements `name`'s role has on these resources, as the synthesized template grants them. */
export function roleStatements(stack: SynthesizedStack, name: FunctionName, resources: LocalResources) {
  return z
    .array(policyStatementSchema)
    .parse(resolveValue(stack.functions[name].statements, resources.context));
}

export interface StartFunctionsOptions {
  readonly resources: LocalResources;
  readonly dynamoEndpoint: string;
  readonly sqsEndpoint: string;
  readonly events: EventPublisher;
  readonly onDenied: (denial: Denial) => void;
  /** Changes a function's statements before they are enforced: a test removes a grant to see the check fail. */
  readonly statementsFor?: (name: FunctionName, statements: PolicyStatement[]) => PolicyStatement[];
}

export interface LocalFunctions {
  readonly byName: Readonly<Record<FunctionName, LambdaFunction>>;
  /** The gateway each function's clients, and its event source's stand-in, call. */
  readonly endpoints: Readonly<Record<FunctionName, string>>;
  stop(): Promise<void>;
}

/** The variables a Lambda sandbox has besides the function's own, pointing every SDK client at `endpoint`. */
function runtimeEnvironment(name: FunctionName, memoryMiB: number, endpoint: string): Record<string, string> {
  return {
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_LAMBDA_FUNCTION_NAME: serviceName(name),
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMiB),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    // Service-specific variables win over the global one: set them all, whatever the shell exported.
    AWS_ENDPOINT_URL: endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS: endpoint,
    AWS_ENDPOINT_URL_SQS: endpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: endpoint,
  };
}

/** What the sandbox keeps of this process's environment: none of its AWS settings, which are the stack's. */
function inheritedEnvironment(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).flatMap(([name, value]) =>
      value === undefined || name.startsWith('AWS_') || name === 'NODE_OPTIONS' ? [] : [[name, value]],
    ),
  );
}

const environmentSchema = z.record(z.string(), z.string());

export async function startFunctions(
  stack: SynthesizedStack,
  options: StartFunctionsOptions,
): Promise<LocalFunctions> {
  const gateways: RunningIamGateway[] = [];
  const functions: LambdaFunction[] = [];
  const stop = async () => {
    await Promise.all(functions.map((fn) => fn.stop()));
    await Promise.all(gateways.map((gateway) => gateway.stop()));
  };
  try {
    const started = await Promise.all(
      FUNCTION_NAMES.map(async (name) => {
        const synthesized = stack.functions[name];
        const resolved = roleStatements(stack, name, options.resources);
        const gateway = await startIamGateway({
          function: name,
          statements: options.statementsFor?.(name, resolved) ?? resolved,
          region: LOCAL_REGION,
          accountId: ACCOUNT_ID,
          dynamoEndpoint: options.dynamoEndpoint,
          sqsEndpoint: options.sqsEndpoint,
          events: options.events,
          onDenied: options.onDenied,
        });
        gateways.push(gateway);
        const fn = await LambdaFunction.create({
          functionName: serviceName(name),
          entry: ENTRIES[name],
          environment: {
            ...inheritedEnvironment(),
            ...environmentSchema.parse(resolveValue(synthesized.environment, options.resources.context)),
            ...runtimeEnvironment(name, synthesized.memoryMiB, gateway.url),
          },
          memoryMiB: synthesized.memoryMiB,
          timeoutSeconds: synthesized.timeoutSeconds,
          region: LOCAL_REGION,
        });
        functions.push(fn);
        return [name, { fn, endpoint: gateway.url }] as const;
      }),
    );
    const byName = Object.fromEntries(started.map(([name, { fn }]) => [name, fn]));
    const endpoints = Object.fromEntries(started.map(([name, { endpoint }]) => [name, endpoint]));
    return {
      byName: byName as Record<FunctionName, LambdaFunction>,
      endpoints: endpoints as Record<FunctionName, string>,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** What the aggregator answers a stream batch with (a reconcile request answers otherwise). */
export const streamBatchResponseSchema = z.object({
  batchItemFailures: z.array(z.object({ itemIdentifier: z.string() })),
}) satisfies z.ZodType<DynamoDBBatchResponse>;

export const sweepSummarySchema = z.custom<SweepSummary>(
  (value) => typeof value === 'object' && value !== null && 'tasksDue' in value,
  'the sweeper answered something other than a sweep summary',
);
