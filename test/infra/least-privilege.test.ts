import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import type { SubtaskProgress } from '../../cdk/subtask-progress';
import {
  actionsOf,
  functionRoleId,
  identityStatements,
  logicalId,
  resourcesOf,
  type Statement,
  statementsOf,
  synthesize,
} from './synthesize';

const DATA_SERVICES = ['dynamodb:', 'sqs:', 'execute-api:', 'events:'];
/** What active tracing adds to every function role; X-Ray has no resource to name. */
const TRACING_ACTIONS = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
const LOG_ACTIONS = ['logs:CreateLogStream', 'logs:PutLogEvents'];

describe('least privilege', () => {
  let worker: iam.Role | undefined;
  let producer: iam.Role | undefined;
  let canceler: iam.Role | undefined;
  let reader: iam.Role | undefined;
  const { stack, progress, template } = synthesize({}, (stack, progress) => {
    worker = new iam.Role(stack, 'Worker', { assumedBy: new iam.AccountRootPrincipal() });
    producer = new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
    canceler = new iam.Role(stack, 'Canceler', { assumedBy: new iam.AccountRootPrincipal() });
    reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    progress.grantSendStatus(worker);
    progress.grantInitialize(producer);
    progress.grantCancel(canceler);
    progress.grantReadProgress(reader);
  });
  const tableArn = { 'Fn::GetAtt': [logicalId(stack, progress.table), 'Arn'] };
  const streamArn = { 'Fn::GetAtt': [logicalId(stack, progress.table), 'StreamArn'] };
  const dueIndexArn = { 'Fn::Join': ['', [tableArn, '/index/due']] };
  const listIndexArns = ['tasks', 'tasks_by_state', 'tasks_by_group'].map((name) => ({
    'Fn::Join': ['', [tableArn, `/index/${name}`]],
  }));
  const queueArn = { 'Fn::GetAtt': [logicalId(stack, progress.queue), 'Arn'] };
  const deadLetterQueueArn = { 'Fn::GetAtt': [logicalId(stack, progress.deadLetterQueue), 'Arn'] };
  const failureQueueArn = { 'Fn::GetAtt': [logicalId(stack, progress.aggregatorFailureQueue), 'Arn'] };
  const roleStatements = (role: iam.Role | undefined) => {
    if (!role) throw new Error('role not created');
    return statementsOf(template, logicalId(stack, role));
  };
  const functionStatements = (fn: SubtaskProgress['applier']) =>
    statementsOf(template, functionRoleId(stack, fn));
  const on = (statements: Statement[], arn: unknown) =>
    statements.filter((statement) => resourcesOf([statement]).some(isEqualTo(arn)));
  const allStatements = identityStatements(template).map(({ statement }) => statement);
  const functions = [
    ['applier', progress.applier],
    ['aggregator', progress.aggregator],
    ['API function', progress.apiFunction],
    ['sweeper', progress.sweeper],
  ] as const;

  describe('anywhere in the stack', () => {
    it('no statement grants dynamodb:* or any other service wildcard', () => {
      expect(actionsOf(allStatements).filter((action) => action.includes('*'))).toEqual([]);
    });

    it('no statement allows deleting items, batch writes or transactions', () => {
      expect(
        actionsOf(allStatements).filter((action) =>
          /Delete(Item|Table)|BatchWriteItem|Transact|ConditionCheckItem/.test(action),
        ),
      ).toEqual([]);
    });

    it('the only data action on every resource is dynamodb:ListStreams, which lists stream ARNs', () => {
      const onEveryResource = allStatements.filter((statement) => resourcesOf([statement]).includes('*'));
      expect(
        actionsOf(onEveryResource).filter((action) =>
          DATA_SERVICES.some((service) => action.startsWith(service)),
        ),
      ).toEqual(['dynamodb:ListStreams']);
    });

    it('no statement names the whole index space of the table (<table>/index/*)', () => {
      expect(JSON.stringify(allStatements)).not.toContain('/index/*');
    });

    it.each(functions)('the %s role carries no managed policies', (_name, fn) => {
      const role = template.toJSON().Resources[functionRoleId(stack, fn)];
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    });

    it.each(functions)('the %s may write only to its own log group, and send traces', (_name, fn) => {
      const statements = functionStatements(fn);
      const logGroupId =
        template.toJSON().Resources[logicalId(stack, fn)].Properties.LoggingConfig.LogGroup.Ref;
      expect(resourcesOf(statements.filter((s) => actionsOf([s], 'logs:').length > 0))).toEqual([
        { 'Fn::GetAtt': [logGroupId, 'Arn'] },
      ]);
      expect(actionsOf(statements, 'xray:')).toEqual(TRACING_ACTIONS);
    });
  });

  describe('applier', () => {
    const statements = functionStatements(progress.applier);

    it('reads the task and subtask items and puts subtask items: no update, no condition check', () => {
      expect(actionsOf(statements, 'dynamodb:')).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
      ]);
      expect(resourcesOf(statements.filter((s) => actionsOf([s], 'dynamodb:').length > 0))).toEqual([
        tableArn,
      ]);
    });

    it('consumes the status queue and may only send to the dead-letter queue', () => {
      expect(actionsOf(on(statements, queueArn))).toEqual([
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
      ]);
      expect(actionsOf(on(statements, deadLetterQueueArn))).toEqual(['sqs:SendMessage']);
    });

    it('may do nothing else', () => {
      expect(actionsOf(statements).filter((action) => !action.startsWith('sqs:'))).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        ...LOG_ACTIONS,
        ...TRACING_ACTIONS,
      ]);
    });
  });

  describe('aggregator', () => {
    const statements = functionStatements(progress.aggregator);

    it('reads and queries items of the table, puts shard counters and updates the task item', () => {
      expect(actionsOf(on(statements, tableArn))).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
    });

    it("reads the table's stream", () => {
      expect(actionsOf(on(statements, streamArn))).toEqual([
        'dynamodb:DescribeStream',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
      ]);
    });

    it('puts events on the default event bus of its account and region only', () => {
      const onBus = statements.filter((statement) => actionsOf([statement], 'events:').length > 0);
      expect(actionsOf(onBus)).toEqual(['events:PutEvents']);
      expect(resourcesOf(onBus)).toEqual([
        {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':events:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              ':event-bus/default',
            ],
          ],
        },
      ]);
    });

    it('may send to its on-failure queue (the event source uses its role), and nothing else of SQS', () => {
      expect(actionsOf(statements, 'sqs:')).toEqual([
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ]);
      expect(actionsOf(on(statements, failureQueueArn))).toEqual(actionsOf(statements, 'sqs:'));
    });

    it('has nothing on every resource but the stream listing and tracing', () => {
      expect(actionsOf(on(statements, '*'))).toEqual(['dynamodb:ListStreams', ...TRACING_ACTIONS]);
    });
  });

  describe('API function', () => {
    const statements = functionStatements(progress.apiFunction);

    it('reads, lists, initializes and cancels through the table, and nothing more on DynamoDB', () => {
      expect(actionsOf(statements, 'dynamodb:')).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
      expect(actionsOf(on(statements, tableArn))).toEqual(actionsOf(statements, 'dynamodb:'));
    });

    it('queries the three listing indexes by name, and no other index', () => {
      for (const indexArn of listIndexArns) {
        expect(actionsOf(on(statements, indexArn))).toEqual(['dynamodb:Query']);
      }
      expect(actionsOf(on(statements, dueIndexArn))).toEqual([]);
      const dynamoResources = resourcesOf(statements.filter((s) => actionsOf([s], 'dynamodb:').length > 0));
      expect(dynamoResources).toHaveLength(1 + listIndexArns.length);
    });

    it('may do nothing besides using the table, writing its logs and sending traces', () => {
      expect(actionsOf(statements).filter((action) => !action.startsWith('dynamodb:'))).toEqual([
        ...LOG_ACTIONS,
        ...TRACING_ACTIONS,
      ]);
    });
  });

  describe('sweeper', () => {
    const statements = functionStatements(progress.sweeper);

    it('reads and writes items of the table under conditions', () => {
      expect(actionsOf(on(statements, tableArn))).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
    });

    it('puts events on the same bus as the aggregator, to publish again what is still unpublished', () => {
      const onBus = (of: Statement[]) =>
        of.filter((statement) => actionsOf([statement], 'events:').length > 0);
      expect(actionsOf(onBus(statements))).toEqual(['events:PutEvents']);
      expect(resourcesOf(onBus(statements))).toEqual(
        resourcesOf(onBus(functionStatements(progress.aggregator))),
      );
    });

    it('queries the due index, by its name', () => {
      expect(actionsOf(on(statements, dueIndexArn))).toEqual(['dynamodb:Query']);
    });

    it('may do nothing else', () => {
      expect(
        actionsOf(statements).filter(
          (action) => !action.startsWith('dynamodb:') && action !== 'events:PutEvents',
        ),
      ).toEqual([...LOG_ACTIONS, ...TRACING_ACTIONS]);
    });
  });

  describe('grant methods', () => {
    const routesOf = (statements: Statement[]) => {
      const apiRef = JSON.stringify({ Ref: logicalId(stack, progress.httpApi) });
      const routes = resourcesOf(statements).map((arn) => JSON.stringify(arn));
      expect(routes.every((route) => route.includes(apiRef))).toBe(true);
      return routes.map((route) => route.match(/"(\/\*\/[A-Z]+\/[^"]*)"/)?.[1]).sort();
    };

    it('grantSendStatus allows sqs:SendMessage on the status queue only', () => {
      expect(roleStatements(worker)).toEqual([
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
      ]);
    });

    it('grantInitialize allows execute-api:Invoke on the PUT route only, and no table rights', () => {
      const statements = roleStatements(producer);
      expect(actionsOf(statements)).toEqual(['execute-api:Invoke']);
      expect(routesOf(statements)).toEqual(['/*/PUT/tasks/*']);
    });

    it('grantCancel allows execute-api:Invoke on the cancel route only', () => {
      const statements = roleStatements(canceler);
      expect(actionsOf(statements)).toEqual(['execute-api:Invoke']);
      expect(routesOf(statements)).toEqual(['/*/POST/tasks/*/cancel']);
    });

    it('grantReadProgress allows execute-api:Invoke on the three GET routes only', () => {
      const statements = roleStatements(reader);
      expect(actionsOf(statements)).toEqual(['execute-api:Invoke']);
      expect(routesOf(statements)).toEqual(['/*/GET/tasks', '/*/GET/tasks/*', '/*/GET/tasks/*/subtasks']);
    });

    it('every grant is an Allow', () => {
      for (const role of [worker, producer, canceler, reader]) {
        expect(roleStatements(role).every((statement) => statement.Effect === 'Allow')).toBe(true);
      }
    });

    describe('with a custom authorizer', () => {
      const { progress } = synthesize({
        authorizer: new HttpJwtAuthorizer('Jwt', 'https://issuer.example.com', { jwtAudience: ['progress'] }),
      });
      const someone = new iam.Role(progress, 'Someone', { assumedBy: new iam.AccountRootPrincipal() });

      it.each([
        ['grantReadProgress', () => progress.grantReadProgress(someone)],
        ['grantInitialize', () => progress.grantInitialize(someone)],
        ['grantCancel', () => progress.grantCancel(someone)],
      ])('%s refuses, as the API does not use IAM authorization', (method, grant) => {
        expect(grant).toThrow(new RegExp(`${method} needs IAM authorization`));
      });
    });
  });
});

function isEqualTo(expected: unknown): (value: unknown) => boolean {
  return (value) => JSON.stringify(value) === JSON.stringify(expected);
}
