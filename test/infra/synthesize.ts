import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnElement, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { afterAll } from 'vitest';
import { z } from 'zod';
import type { SubtaskProgress, SubtaskProgressProps } from '../../cdk/subtask-progress';
import { SubtaskProgressStack, type SubtaskProgressStackProps } from '../../cdk/subtask-progress-stack';

const CDK_JSON = z
  .object({ context: z.record(z.string(), z.unknown()), versionReporting: z.boolean().optional() })
  .parse(JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')));

/** The feature flags `cdk synth` runs with, so the tests see the template the CLI produces. */
const FEATURE_FLAGS = CDK_JSON.context;

/**
 * Whether `cdk synth` adds its CDKMetadata resource, whose condition lists every region it exists in (the CLI
 * reports versions unless cdk.json says otherwise).
 */
const VERSION_REPORTING = CDK_JSON.versionReporting ?? true;

export interface TestAppOptions {
  /**
   * Bundle the Lambda code with esbuild and run CDK's built-in template validation, as `cdk synth` does.
   * Both cost seconds; only the test about the deployable assembly needs them.
   */
  readonly bundle?: boolean;
  /** More context, as `cdk deploy -c key=value` gives it. */
  readonly context?: Record<string, unknown>;
}

/**
 * Where this test file's apps write their cloud assemblies; removed when the file is done. Without an outdir
 * every synthesis leaves a `cdk.out…` directory in the system's temporary directory, up to 9 MB when bundled.
 */
const ASSEMBLIES = mkdtempSync(join(tmpdir(), 'subtask-progress-cdk-'));
afterAll(() => rmSync(ASSEMBLIES, { recursive: true, force: true }));

export function testApp({ bundle = false, context = {} }: TestAppOptions = {}): App {
  return new App({
    outdir: mkdtempSync(join(ASSEMBLIES, 'app-')),
    context: bundle
      ? { ...FEATURE_FLAGS, ...context }
      : { ...FEATURE_FLAGS, ...context, 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: bundle,
    analyticsReporting: VERSION_REPORTING,
  });
}

export interface Synthesized {
  readonly app: App;
  readonly stack: SubtaskProgressStack;
  readonly progress: SubtaskProgress;
  readonly template: Template;
}

/**
 * Builds the stack with the given props; `extend` may add callers (roles, topics) to the same stack before
 * the template is synthesized.
 */
export function synthesize(
  props: SubtaskProgressProps = {},
  extend?: (stack: SubtaskProgressStack, progress: SubtaskProgress) => void,
): Synthesized {
  return synthesizeStack({ progress: props }, extend);
}

/** As `synthesize`, with props of the stack itself (alarm e-mail, alarm topic ARN). */
export function synthesizeStack(
  props: SubtaskProgressStackProps,
  extend?: (stack: SubtaskProgressStack, progress: SubtaskProgress) => void,
): Synthesized {
  const app = testApp();
  const stack = new SubtaskProgressStack(app, 'Test', props);
  extend?.(stack, stack.progress);
  return { app, stack, progress: stack.progress, template: Template.fromStack(stack) };
}

/** The filter patterns of an event source mapping resource, parsed. */
export function filterPatterns(mapping: unknown): unknown[] {
  return z
    .object({
      Properties: z.looseObject({
        FilterCriteria: z.object({ Filters: z.array(z.object({ Pattern: z.string() })) }),
      }),
    })
    .parse(mapping)
    .Properties.FilterCriteria.Filters.map(({ Pattern }) => JSON.parse(Pattern));
}

/** Logical ID of a construct's CloudFormation resource, e.g. to match a `Ref` or `Fn::GetAtt`. */
export function logicalId(stack: Stack, construct: IConstruct): string {
  const resource = construct.node.defaultChild;
  if (!CfnElement.isCfnElement(resource)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  }
  return stack.getLogicalId(resource);
}

/** Logical ID of the execution role of a function. */
export function functionRoleId(stack: Stack, fn: lambda.IFunction): string {
  if (!fn.role) {
    throw new Error(`${fn.node.path} has no execution role`);
  }
  return logicalId(stack, fn.role);
}

const statementSchema = z.looseObject({
  Effect: z.enum(['Allow', 'Deny']),
  Action: z.union([z.string(), z.array(z.string())]),
  Resource: z.unknown(),
});
export type Statement = z.infer<typeof statementSchema>;

const policySchema = z.looseObject({
  Properties: z.looseObject({
    PolicyDocument: z.looseObject({ Statement: z.array(statementSchema) }),
    Roles: z.array(z.unknown()).optional(),
  }),
});

/** Every identity-policy statement in the template, with the roles it is attached to. */
export function identityStatements(template: Template): { roles: unknown[]; statement: Statement }[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap((resource) => {
    const policy = policySchema.parse(resource);
    return policy.Properties.PolicyDocument.Statement.map((statement) => ({
      roles: policy.Properties.Roles ?? [],
      statement,
    }));
  });
}

/** The statements attached to one role, through any of its policies. */
export function statementsOf(template: Template, roleId: string): Statement[] {
  return identityStatements(template)
    .filter(({ roles }) => roles.some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
    .map(({ statement }) => statement);
}

export function actionsOf(statements: Statement[], prefix = ''): string[] {
  const actions = statements.flatMap((statement) =>
    typeof statement.Action === 'string' ? [statement.Action] : statement.Action,
  );
  return [...new Set(actions.filter((action) => action.startsWith(prefix)))].sort();
}

export function resourcesOf(statements: Statement[]): unknown[] {
  return statements.flatMap((statement) =>
    Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource],
  );
}
