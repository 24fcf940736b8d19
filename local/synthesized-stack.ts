/**
 * What the local stack takes from the synthesized CDK app, so that the CDK code stays the single source of what a
 * function may do and how much it gets: for each function its role's statements, its environment, memory and
 * timeout, still as CloudFormation values (resolved later, against the local resources, by
 * `cloudformation-values.ts`), and the logical ids of the table and queues they name.
 *
 * Synthesizing takes seconds, so the description is cached under `node_modules/.cache`, keyed by a digest of
 * every file that can change the template; the CDK app is loaded only when the cache misses.
 */

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CfnElement } from 'aws-cdk-lib';
import { z } from 'zod';
import type { ServiceFunction } from '../lambdas/service-settings';

export type FunctionName = ServiceFunction;
export const FUNCTION_NAMES: readonly FunctionName[] = ['applier', 'aggregator', 'api', 'sweeper'];

const functionSchema = z.object({
  logicalId: z.string(),
  memoryMiB: z.number().int().positive(),
  timeoutSeconds: z.number().int().positive(),
  /** `Environment.Variables` as synthesized. */
  environment: z.record(z.string(), z.unknown()),
  /** Every statement of the role's inline and attached policies, as synthesized. */
  statements: z.array(z.record(z.string(), z.unknown())),
});

const stackSchema = z.object({
  functions: z.object({
    applier: functionSchema,
    aggregator: functionSchema,
    api: functionSchema,
    sweeper: functionSchema,
  }),
  logicalIds: z.object({ table: z.string(), queue: z.string(), deadLetterQueue: z.string() }),
});

export type SynthesizedFunction = z.output<typeof functionSchema>;
export type SynthesizedStack = z.output<typeof stackSchema>;

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE_DIRECTORY = join(PROJECT_ROOT, 'node_modules', '.cache', 'subtask-progress');
/** Everything the template is made from. */
const TEMPLATE_SOURCES = ['cdk', 'lambdas', 'cdk.json', 'package-lock.json'];

async function filesUnder(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (entries === undefined) return [path];
  const nested = await Promise.all(
    entries.map((entry) =>
      entry.isDirectory() ? filesUnder(join(path, entry.name)) : [join(path, entry.name)],
    ),
  );
  return nested.flat().sort();
}

async function sourceDigest(): Promise<string> {
  const hash = createHash('sha256');
  for (const source of TEMPLATE_SOURCES) {
    for (const file of await filesUnder(join(PROJECT_ROOT, source))) {
      hash
        .update(relative(PROJECT_ROOT, file))
        .update('\0')
        .update(await readFile(file))
        .update('\0');
    }
  }
  return hash.digest('hex').slice(0, 16);
}

type Template = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

function roleStatements(template: Template, roleLogicalId: string): Record<string, unknown>[] {
  const statementsOf = (document: unknown) =>
    z.object({ Statement: z.array(z.record(z.string(), z.unknown())) }).parse(document).Statement;
  const role = template.Resources[roleLogicalId];
  const inline = z
    .array(z.object({ PolicyDocument: z.unknown() }))
    .optional()
    .parse(role?.Properties?.Policies);
  const attached = Object.values(template.Resources).filter(
    (resource) =>
      resource.Type === 'AWS::IAM::Policy' &&
      JSON.stringify(resource.Properties?.Roles ?? []).includes(JSON.stringify({ Ref: roleLogicalId })),
  );
  return [
    ...(inline ?? []).flatMap((policy) => statementsOf(policy.PolicyDocument)),
    ...attached.flatMap((policy) => statementsOf(policy.Properties?.PolicyDocument)),
  ];
}

function describeFunction(template: Template, logicalId: string): SynthesizedFunction {
  const properties = z
    .object({
      MemorySize: z.number(),
      Timeout: z.number(),
      Role: z.object({ 'Fn::GetAtt': z.tuple([z.string(), z.literal('Arn')]) }),
      Environment: z.object({ Variables: z.record(z.string(), z.unknown()) }).optional(),
    })
    .parse(template.Resources[logicalId]?.Properties);
  return {
    logicalId,
    memoryMiB: properties.MemorySize,
    timeoutSeconds: properties.Timeout,
    environment: properties.Environment?.Variables ?? {},
    statements: roleStatements(template, properties.Role['Fn::GetAtt'][0]),
  };
}

/** Synthesizes the stack `cdk deploy` deploys by default (no bundling: only the template is wanted). */
async function synthesize(outdir: string): Promise<SynthesizedStack> {
  const [{ App, Stack }, { SubtaskProgressStack }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../cdk/subtask-progress-stack'),
  ]);
  const cdkJson = z
    .object({ context: z.record(z.string(), z.unknown()) })
    .parse(JSON.parse(await readFile(join(PROJECT_ROOT, 'cdk.json'), 'utf8')));
  const app = new App({ outdir, context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new SubtaskProgressStack(app, 'SubtaskProgressLocal');
  const template = app.synth().getStackByName(stack.stackName).template as Template;
  const { progress } = stack;
  const logicalId = (construct: { node: { defaultChild?: unknown } }) => {
    const child = construct.node.defaultChild;
    if (child === undefined) throw new Error('A construct without a CloudFormation resource');
    return Stack.of(stack).getLogicalId(child as CfnElement);
  };
  return stackSchema.parse({
    functions: {
      applier: describeFunction(template, logicalId(progress.applier)),
      aggregator: describeFunction(template, logicalId(progress.aggregator)),
      api: describeFunction(template, logicalId(progress.apiFunction)),
      sweeper: describeFunction(template, logicalId(progress.sweeper)),
    },
    logicalIds: {
      table: logicalId(progress.table),
      queue: logicalId(progress.queue),
      deadLetterQueue: logicalId(progress.deadLetterQueue),
    },
  });
}

let cached: Promise<SynthesizedStack> | undefined;

/** The synthesized stack's functions, from the cache when the sources have not changed since. */
export function synthesizedStack(): Promise<SynthesizedStack> {
  cached ??= (async () => {
    const path = join(CACHE_DIRECTORY, `stack-${await sourceDigest()}.json`);
    const hit = await readFile(path, 'utf8').catch(() => undefined);
    if (hit !== undefined) return stackSchema.parse(JSON.parse(hit));
    await mkdir(CACHE_DIRECTORY, { recursive: true });
    const outdir = join(CACHE_DIRECTORY, `cdk.out-${process.pid}`);
    const stack = await synthesize(outdir);
    // Written whole, then renamed: two processes missing the cache at once never read half a file.
    const partial = `${path}.${process.pid}`;
    await writeFile(partial, JSON.stringify(stack));
    await rename(partial, path);
    await rm(outdir, { recursive: true, force: true });
    return stack;
  })();
  return cached;
}
