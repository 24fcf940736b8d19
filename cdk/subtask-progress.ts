import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ROUTES } from '../lambdas/api/routes';
import { APPLIER, ENVIRONMENT, STATUS_QUEUE, TABLE_KEYS } from '../lambdas/service-settings';
import { createServiceFunction } from './service-function';

/** The read API's routes, shared with the handler and the local server; `grantReadProgress` derives ARNs. */
const API_ROUTES = Object.values(ROUTES).map(parseRouteKey);

/** The API function only reads a few items per request; API Gateway itself gives up after 30 s. */
const API_FUNCTION = { timeoutSeconds: 10, memoryMiB: 256 } as const;

/** Defaults of the default stage's throttling, sized for dashboards and CLIs polling a few tasks each. */
const API_THROTTLING = { rateLimit: 50, burstLimit: 100 } as const;

/** Bounds AWS sets on an SQS event source's maximum concurrency. */
const MAX_CONCURRENCY_RANGE = { min: 2, max: 1000 } as const;

/** The data actions each party needs; anything not listed here is denied. */
const TABLE_ACTIONS = {
  /** Reads the task item, then its subtask items; commits a transaction of checks, updates and puts. */
  applier: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:ConditionCheckItem',
  ],
  api: ['dynamodb:GetItem', 'dynamodb:Query'],
  /** Conditional puts of the task and subtask items, and a read of an existing task on re-initialization. */
  initialize: ['dynamodb:PutItem', 'dynamodb:GetItem'],
} as const;

export interface SubtaskProgressProps {
  /**
   * Most applier invocations the status queue may run at once. More concurrency on one hot task only adds
   * version conflicts, so keep this low unless many tasks run at the same time.
   *
   * @default APPLIER.maxConcurrency from `lambdas/service-settings.ts`
   */
  readonly maxConcurrency?: number;

  /**
   * How long the log groups of both functions and the API access log keep their events.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Authorizer for every API route, e.g. an `HttpJwtAuthorizer` for a Cognito user pool. When set, callers
   * authenticate through it and `grantReadProgress` is not available.
   *
   * @default HttpIamAuthorizer: callers sign requests with SigV4 and need `execute-api:Invoke`
   */
  readonly authorizer?: apigw.IHttpRouteAuthorizer;

  /**
   * Steady-state requests per second the API's default stage accepts before answering 429.
   *
   * @default 50
   */
  readonly throttlingRateLimit?: number;

  /**
   * Requests the API's default stage accepts in a burst above the steady rate.
   *
   * @default 100
   */
  readonly throttlingBurstLimit?: number;

  /**
   * Topic notified when an alarm (dead-letter queue not empty, applier errors) goes off and when it clears.
   *
   * @default - no notification; the alarms are only visible in CloudWatch
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * What happens to the table and the log groups when they leave the stack or the stack is deleted.
   * `DESTROY` also requires `deletionProtection: false`.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Whether DynamoDB refuses to delete the table, whoever asks (CloudFormation included).
   *
   * @default true
   */
  readonly deletionProtection?: boolean;
}

/**
 * Status messages go to an SQS queue; a Lambda applier folds them into a DynamoDB table with optimistic
 * locking; a second Lambda behind an HTTP API serves progress reads. Callers get access through `grant*`.
 */
export class SubtaskProgress extends Construct {
  readonly table: dynamodb.Table;
  /** Queue the workers send subtask statuses to. */
  readonly queue: sqs.Queue;
  /** Messages the applier could not apply, with the reason attached, and those that ran out of deliveries. */
  readonly deadLetterQueue: sqs.Queue;
  readonly applier: NodejsFunction;
  readonly apiFunction: NodejsFunction;
  readonly httpApi: apigw.HttpApi;
  /** Key the API signs its listing cursors with; generated at deployment, never in the template. */
  readonly cursorKey: secretsmanager.Secret;
  /** Base URL of the API, ending in `/`. */
  readonly apiUrl: string;
  readonly deadLetterAlarm: cloudwatch.Alarm;
  readonly applierErrorAlarm: cloudwatch.Alarm;

  private readonly usesIamAuthorization: boolean;

  constructor(scope: Construct, id: string, props: SubtaskProgressProps = {}) {
    // Before super(): an invalid configuration leaves nothing half-built in the caller's tree.
    validateProps(props);
    super(scope, id);

    const maxConcurrency = props.maxConcurrency ?? APPLIER.maxConcurrency;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.usesIamAuthorization =
      props.authorizer === undefined || props.authorizer instanceof HttpIamAuthorizer;

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_KEYS.timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // A KMS key in the account (aws/dynamodb): key use shows in CloudTrail, and no key grants to manage.
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy,
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(STATUS_QUEUE.deadLetterRetentionDays),
    });

    this.queue = new sqs.Queue(this, 'StatusQueue', {
      // SQS-managed keys: producers need no KMS permissions, only sqs:SendMessage.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(STATUS_QUEUE.visibilityTimeoutSeconds),
      retentionPeriod: Duration.days(STATUS_QUEUE.retentionDays),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: STATUS_QUEUE.receiveLimit },
    });

    this.applier = createServiceFunction(this, 'Applier', {
      entry: 'lambdas/applier/handler.ts',
      description: 'Subtask status applier: status queue to table',
      timeout: Duration.seconds(APPLIER.timeoutSeconds),
      memorySize: APPLIER.memoryMiB,
      environment: {
        [ENVIRONMENT.tableName]: this.table.tableName,
        [ENVIRONMENT.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
        [ENVIRONMENT.receiveLimit]: String(STATUS_QUEUE.receiveLimit),
      },
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    this.table.grant(this.applier, ...TABLE_ACTIONS.applier);
    // The applier dead-letters permanent failures itself, with the reason attached.
    this.deadLetterQueue.grant(this.applier, 'sqs:SendMessage');
    this.applier.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: APPLIER.batchSize,
        maxBatchingWindow: Duration.seconds(APPLIER.maxBatchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency,
      }),
    );

    this.cursorKey = new secretsmanager.Secret(this, 'CursorKey', {
      description: 'Signs the listing cursors of the subtask progress API',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      // Disposable: losing the key only invalidates cursors that clients still hold.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // A rotated key would reach the function only on its next deployment (CloudFormation resolves the value
    // then) and would invalidate every cursor in flight; the key guards cursor integrity, not data.
    Validations.of(this.cursorKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Cursor-signing key, not a credential: the function receives it at deployment, so rotation means ' +
        'putting a new value and redeploying, which also invalidates outstanding listing cursors.',
    });

    this.apiFunction = createServiceFunction(this, 'ApiFunction', {
      entry: 'lambdas/api/handler.ts',
      description: 'Progress read API: table to HTTP responses',
      timeout: Duration.seconds(API_FUNCTION.timeoutSeconds),
      memorySize: API_FUNCTION.memoryMiB,
      environment: {
        [ENVIRONMENT.tableName]: this.table.tableName,
        // A dynamic reference CloudFormation resolves at deployment: the key never appears in the template.
        [ENVIRONMENT.cursorKey]: this.cursorKey.secretValue.unsafeUnwrap(),
      },
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    this.table.grant(this.apiFunction, ...TABLE_ACTIONS.api);

    const authorizer = props.authorizer ?? new HttpIamAuthorizer();
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Progress of tasks fanned out into subtasks',
      defaultAuthorizer: authorizer,
      // The default stage is added below, with throttling and access logs the built-in one cannot take.
      createDefaultStage: false,
    });
    const integration = new HttpLambdaIntegration('ApiIntegration', this.apiFunction);
    for (const { method, path } of API_ROUTES) {
      this.httpApi.addRoutes({ path, methods: [method], integration });
    }
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    const stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttlingRateLimit ?? API_THROTTLING.rateLimit,
        burstLimit: props.throttlingBurstLimit ?? API_THROTTLING.burstLimit,
      },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            caller: '$context.identity.userArn',
            sourceIp: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            responseLatency: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });
    this.apiUrl = stage.url;

    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription:
        'Status messages reached the dead-letter queue: rejected as invalid, or not applied within the ' +
        'receive limit.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.applierErrorAlarm = new cloudwatch.Alarm(this, 'ApplierErrorAlarm', {
      alarmDescription:
        'The status applier failed whole invocations (not single records): statuses are delayed.',
      metric: this.applier.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of [this.deadLetterAlarm, this.applierErrorAlarm]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Lets a worker send subtask status messages to the status queue, and nothing else. */
  grantSendStatus(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grant(grantee, 'sqs:SendMessage');
  }

  /** Lets a producer initialize tasks: conditional puts of task and subtask items, reads of a task. */
  grantInitialize(grantee: iam.IGrantable): iam.Grant {
    return this.table.grant(grantee, ...TABLE_ACTIONS.initialize);
  }

  /**
   * Lets a reader call the GET routes of the API. Only meaningful with IAM authorization: with a custom
   * authorizer, readers authenticate through that authorizer instead.
   *
   * The route ARNs end in wildcards (any stage, any task id), so cdk-nag reports AwsSolutions-IAM5 on the
   * grantee's policy; acknowledge it there, where the grantee is defined.
   */
  grantReadProgress(grantee: iam.IGrantable): iam.Grant {
    if (!this.usesIamAuthorization) {
      throw new Error(
        'grantReadProgress needs IAM authorization on the API; ' +
          'with a custom authorizer, grant access through that authorizer.',
      );
    }
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: API_ROUTES.filter(({ method }) => method === apigw.HttpMethod.GET).map((route) =>
        this.routeArn(route),
      ),
    });
  }

  /** ARN of a route in any stage; path parameters become wildcards, as IAM matches the request path. */
  private routeArn({ method, path }: ApiRoute): string {
    return this.httpApi.arnForExecuteApi(method, path.replace(/\{[^}]+\}/g, '*'));
  }
}

interface ApiRoute {
  readonly method: apigw.HttpMethod;
  readonly path: string;
}

/** Splits an API Gateway route key such as `GET /tasks/{task_id}`. */
function parseRouteKey(routeKey: string): ApiRoute {
  const [method, path] = routeKey.split(' ');
  const httpMethod = Object.values(apigw.HttpMethod).find((known) => known === method);
  if (httpMethod === undefined || path === undefined || !path.startsWith('/')) {
    throw new Error(`Route key must look like "GET /path", got "${routeKey}"`);
  }
  return { method: httpMethod, path };
}

function validateProps(props: SubtaskProgressProps): void {
  const { maxConcurrency, throttlingRateLimit, throttlingBurstLimit } = props;
  if (
    maxConcurrency !== undefined &&
    (!Number.isInteger(maxConcurrency) ||
      maxConcurrency < MAX_CONCURRENCY_RANGE.min ||
      maxConcurrency > MAX_CONCURRENCY_RANGE.max)
  ) {
    throw new Error(
      `maxConcurrency must be an integer from ${MAX_CONCURRENCY_RANGE.min} to ${MAX_CONCURRENCY_RANGE.max} ` +
        `(limits of an SQS event source), got ${maxConcurrency}`,
    );
  }
  if (
    throttlingRateLimit !== undefined &&
    !(Number.isFinite(throttlingRateLimit) && throttlingRateLimit > 0)
  ) {
    throw new Error(
      `throttlingRateLimit must be a positive number of requests per second, got ${throttlingRateLimit}`,
    );
  }
  if (
    throttlingBurstLimit !== undefined &&
    !(Number.isInteger(throttlingBurstLimit) && throttlingBurstLimit > 0)
  ) {
    throw new Error(`throttlingBurstLimit must be a positive integer, got ${throttlingBurstLimit}`);
  }
  if (props.removalPolicy === RemovalPolicy.DESTROY && (props.deletionProtection ?? true)) {
    throw new Error(
      'removalPolicy DESTROY cannot delete a table with deletion protection: ' +
        'set deletionProtection: false as well',
    );
  }
}
