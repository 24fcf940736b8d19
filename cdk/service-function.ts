import { fileURLToPath } from 'node:url';
import { type Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The project root: entry files and the lock file are found from here, whatever the working directory. */
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What active tracing adds to every execution role; X-Ray defines no resource these actions could name. */
const TRACING_REASON =
  'Resource "*" is required by the actions active tracing adds, xray:PutTraceSegments and ' +
  'xray:PutTelemetryRecords, which support no resource-level permissions';

export interface FunctionSizing {
  readonly timeout: Duration;
  readonly memorySize: number;
  /**
   * Concurrency kept for this function alone (and its ceiling).
   *
   * @default - none: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
}

export interface FunctionLogs {
  readonly retention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export interface ServiceFunctionOptions {
  /** Entry file relative to the project root, e.g. `lambdas/applier/handler.ts`. */
  readonly entry: string;
  readonly description: string;
  /** How long it may run, its memory and its reserved concurrency: the function's part of the resolved settings. */
  readonly sizing: FunctionSizing;
  readonly environment: Readonly<Record<string, string>>;
  /** The same for every function of the service. */
  readonly logs: FunctionLogs;
  /**
   * Why, besides tracing, the caller grants this function's role an action on every resource; completes the
   * AwsSolutions-IAM5 acknowledgement of its policy. Name the action and why it takes no resource.
   *
   * @default - tracing is the only reason
   */
  readonly otherActionsOnEveryResource?: string;
}

/**
 * Builds a Lambda function with the settings every function of this service shares, so the functions differ
 * only in what they run, how long and with which environment.
 */
export function createServiceFunction(
  scope: Construct,
  id: string,
  options: ServiceFunctionOptions,
): NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: options.logs.retention,
    removalPolicy: options.logs.removalPolicy,
  });

  // An own role instead of the default one: the default attaches AWSLambdaBasicExecutionRole, which may write
  // to every log group of the account; this one may write to its own log group only.
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role: ${options.description}`,
  });
  logGroup.grantWrite(role);

  const fn = new NodejsFunction(scope, id, {
    entry: `${PROJECT_ROOT}${options.entry}`,
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
    description: options.description,
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    timeout: options.sizing.timeout,
    memorySize: options.sizing.memorySize,
    reservedConcurrentExecutions: options.sizing.reservedConcurrency,
    // Active tracing, as Solutions Constructs enable it: one trace follows a status from the queue through the
    // applier's table calls, and a fold through its reads, writes and events (Powertools Tracer adds segments).
    tracing: lambda.Tracing.ACTIVE,
    role,
    logGroup,
    environment: {
      ...options.environment,
      // Stack traces in the logs point at the TypeScript sources instead of minified bundle lines.
      NODE_OPTIONS: '--enable-source-maps',
    },
    bundling: {
      // Bundle with the esbuild in node_modules: no Docker on build machines, the same esbuild everywhere.
      forceDockerBundling: false,
      format: OutputFormat.ESM,
      target: 'node22',
      // Prefer the ES module builds of dependencies so esbuild can drop what the handler never imports.
      mainFields: ['module', 'main'],
      // Dependencies still written as CommonJS call `require` for Node built-ins, which an ES module lacks.
      banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      // Ship the SDK versions pinned by the lock file (the ones the tests ran against) instead of whatever
      // SDK the Lambda runtime happens to carry.
      bundleAwsSDK: true,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
    },
  });

  // AwsSolutions-L1 wants the newest runtime. The runtime is pinned instead, so that a runtime change is a
  // reviewed edit that also moves the bundle target, never a side effect of a cdk-nag upgrade.
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Runtime pinned to Node.js 22, a supported Lambda LTS runtime that the esbuild target (node22) ' +
      'matches; moving to a newer runtime is a deliberate, reviewed change.',
  });
  // On the role, so that it covers the role's default policy, where CDK puts the tracing statement.
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      options.otherActionsOnEveryResource === undefined
        ? `${TRACING_REASON}.`
        : `${TRACING_REASON}; ${options.otherActionsOnEveryResource}.`,
  });

  return fn;
}
