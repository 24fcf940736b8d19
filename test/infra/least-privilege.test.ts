import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import {
  actionsOf,
  functionRoleId,
  identityStatements,
  logicalId,
  resourcesOf,
  statementsOf,
  synthesize,
} from './synthesize';

const DATA_SERVICES = ['dynamodb:', 'sqs:', 'execute-api:'];

describe('least privilege', () => {
  let worker: iam.Role | undefined;
  let producer: iam.Role | undefined;
  let reader: iam.Role | undefined;
  const { stack, progress, template } = synthesize({}, (stack, progress) => {
    worker = new iam.Role(stack, 'Worker', { assumedBy: new iam.AccountRootPrincipal() });
    producer = new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
    reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    progress.grantSendStatus(worker);
    progress.grantInitialize(producer);
    progress.grantReadProgress(reader);
  });
  const tableArn = { 'Fn::GetAtt': [logicalId(stack, progress.table), 'Arn'] };
  const queueArn = { 'Fn::GetAtt': [logicalId(stack, progress.queue), 'Arn'] };
  const deadLetterQueueArn = { 'Fn::GetAtt': [logicalId(stack, progress.deadLetterQueue), 'Arn'] };
  const roleStatements = (role: iam.Role | undefined) => {
    if (!role) throw new Error('role not created');
    return statementsOf(template, logicalId(stack, role));
  };
  const allStatements = identityStatements(template).map(({ statement }) => statement);

  describe('anywhere in the stack', () => {
    it('no statement grants dynamodb:* or any other service wildcard', () => {
      expect(actionsOf(allStatements).filter((action) => action.includes('*'))).toEqual([]);
    });

    it('no statement allows deleting items', () => {
      expect(
        actionsOf(allStatements).filter((action) => /Delete(Item|Table)|BatchWriteItem/.test(action)),
      ).toEqual([]);
    });

    it('no data action applies to every resource', () => {
      const onEveryResource = allStatements.filter(
        (statement) =>
          resourcesOf([statement]).includes('*') &&
          actionsOf([statement]).some((action) =>
            DATA_SERVICES.some((service) => action.startsWith(service)),
          ),
      );
      expect(onEveryResource).toEqual([]);
    });

    it('the function roles carry no managed policies', () => {
      for (const fn of [progress.applier, progress.apiFunction]) {
        const role = template.toJSON().Resources[functionRoleId(stack, fn)];
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
    });
  });

  describe('applier', () => {
    const statements = statementsOf(template, functionRoleId(stack, progress.applier));

    it('reads and updates items of its own table, and nothing more on DynamoDB', () => {
      const tableStatements = statements.filter(
        (statement) => actionsOf([statement], 'dynamodb:').length > 0,
      );
      expect(actionsOf(tableStatements)).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:ConditionCheckItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ]);
      expect(resourcesOf(tableStatements)).toEqual([tableArn]);
    });

    it('consumes the status queue and may only send to the dead-letter queue', () => {
      const onQueue = statements.filter((statement) => resourcesOf([statement]).some(isEqualTo(queueArn)));
      const onDeadLetterQueue = statements.filter((statement) =>
        resourcesOf([statement]).some(isEqualTo(deadLetterQueueArn)),
      );
      expect(actionsOf(onQueue)).toEqual([
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:ReceiveMessage',
      ]);
      expect(actionsOf(onDeadLetterQueue)).toEqual(['sqs:SendMessage']);
    });
  });

  describe('API function', () => {
    const statements = statementsOf(template, functionRoleId(stack, progress.apiFunction));

    it('only reads the table', () => {
      expect(actionsOf(statements, 'dynamodb:')).toEqual(['dynamodb:GetItem', 'dynamodb:Query']);
      expect(resourcesOf(statements.filter((s) => actionsOf([s], 'dynamodb:').length > 0))).toEqual([
        tableArn,
      ]);
    });

    it('may do nothing besides reading the table and writing its logs', () => {
      expect(actionsOf(statements)).toEqual([
        'dynamodb:GetItem',
        'dynamodb:Query',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
      ]);
    });
  });

  describe('grant methods', () => {
    it('grantSendStatus allows sqs:SendMessage on the status queue only', () => {
      expect(roleStatements(worker)).toEqual([
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn },
      ]);
    });

    it('grantInitialize allows PutItem and GetItem on the table only', () => {
      const statements = roleStatements(producer);
      expect(actionsOf(statements)).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem']);
      expect(resourcesOf(statements)).toEqual([tableArn]);
      expect(statements.every((statement) => statement.Effect === 'Allow')).toBe(true);
    });

    it('grantReadProgress allows execute-api:Invoke on the two GET routes only', () => {
      const statements = roleStatements(reader);
      expect(actionsOf(statements)).toEqual(['execute-api:Invoke']);
      const routes = resourcesOf(statements).map((arn) => JSON.stringify(arn));
      const apiRef = JSON.stringify({ Ref: logicalId(stack, progress.httpApi) });
      expect(routes).toHaveLength(2);
      expect(routes.every((route) => route.includes(apiRef))).toBe(true);
      expect(routes.map((route) => route.match(/"(\/\*\/GET\/[^"]*)"/)?.[1]).sort()).toEqual([
        '/*/GET/tasks/*',
        '/*/GET/tasks/*/subtasks',
      ]);
    });

    it('grantReadProgress refuses when the API does not use IAM authorization', () => {
      const { progress } = synthesize({
        authorizer: new HttpJwtAuthorizer('Jwt', 'https://issuer.example.com', { jwtAudience: ['progress'] }),
      });
      const someone = new iam.Role(progress, 'Someone', { assumedBy: new iam.AccountRootPrincipal() });
      expect(() => progress.grantReadProgress(someone)).toThrow(/IAM authorization/);
    });
  });
});

function isEqualTo(expected: unknown): (value: unknown) => boolean {
  return (value) => JSON.stringify(value) === JSON.stringify(expected);
}
